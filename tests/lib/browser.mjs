//! Debian's headless Chromium driven by playwright-core, for end-to-end tests of the SDK and
//! the demo site.
//!
//! No browser is downloaded: playwright-core drives `/usr/bin/chromium` (installed by
//! `scripts/setup.sh`). Each launch gets a fresh temporary user-data folder, so cookies and
//! localStorage start empty and tests never share them; `close()` closes the browser and
//! removes the folder, and a process that exits without calling it still removes it.
//!
//! Headless Chromium's user agent contains `HeadlessChrome`, which the collector may treat
//! as a bot: tests that expect a visitor in a segment pass `userAgent` (see
//! `REGULAR_USER_AGENT`). Several host names on loopback (for cookie tests) come from
//! `hostRules`, e.g. `"MAP *.shop.test 127.0.0.1"`.
//!
//! Usage:
//!   import { launchBrowser } from "./lib/browser.mjs";
//!   const browser = await launchBrowser({ userAgent: REGULAR_USER_AGENT });
//!   t.after(() => browser.close());
//!   const page = await browser.context.newPage();

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

/** Debian's Chromium, the only browser the tests use. */
export const CHROMIUM = "/usr/bin/chromium";

/** Flags that make Chromium run headless here without reaching the network on its own. */
export const CHROMIUM_FLAGS = Object.freeze([
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
]);

/** A desktop Chrome user agent without `HeadlessChrome`, for tests of human visitors. */
export const REGULAR_USER_AGENT =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " +
  "Chrome/131.0.0.0 Safari/537.36";

/** User-data folders not yet removed, removed when the process exits. */
const userDataDirs = new Set();
let exitHookInstalled = false;

/**
 * Launches headless Chromium with a fresh profile.
 *
 * @param {object} [options]
 * @param {string} [options.userAgent] the user agent pages and requests see
 * @param {string | string[]} [options.hostRules] `--host-resolver-rules` entries, e.g.
 *   `"MAP *.shop.test 127.0.0.1"`; an array is joined with commas
 * @param {string[]} [options.args] more Chromium flags
 * @param {object} [options.contextOptions] more playwright `launchPersistentContext` options
 *   (viewport, locale, extraHTTPHeaders, …)
 * @returns {Promise<{ context: import("playwright-core").BrowserContext, userDataDir: string,
 *   close: () => Promise<void> }>}
 */
export async function launchBrowser(options = {}) {
  const { userAgent, hostRules, args = [], contextOptions = {} } = options;
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} missing: run scripts/setup.sh (Debian's chromium)`);
  }
  installExitHook();

  const userDataDir = mkdtempSync(join(tmpdir(), "weft-chromium-"));
  userDataDirs.add(userDataDir);
  const flags = [...CHROMIUM_FLAGS, ...args];
  if (hostRules) {
    const rules = Array.isArray(hostRules) ? hostRules.join(",") : hostRules;
    flags.push(`--host-resolver-rules=${rules}`);
  }

  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: flags,
      ...(userAgent ? { userAgent } : {}),
      ...contextOptions,
    });
  } catch (error) {
    removeDir(userDataDir);
    throw error;
  }

  let closing = null;
  const close = () =>
    (closing ??= (async () => {
      try {
        await context.close();
      } finally {
        removeDir(userDataDir);
      }
    })());
  return { context, userDataDir, close };
}

function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  userDataDirs.delete(dir);
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // playwright kills the browsers it launched on exit; the folders are ours to remove.
  process.on("exit", () => {
    for (const dir of userDataDirs) rmSync(dir, { recursive: true, force: true });
  });
}
