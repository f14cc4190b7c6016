//! A small worker that personalises a page with Segment's Edge SDK, the peer `make bench`
//! measures weft's decide route against, plus the routes the bench needs around it.
//!
//! Routes:
//! - `GET /` (and any other page): the SDK as a full proxy of the origin with one edge
//!   variation: a visitor whose profile in KV (`user_id:<ajs_user_id cookie>`) has the
//!   `vip` audience gets the origin's `/vip` page instead of `/`, with the SDK's HTTP-only id
//!   cookies and its analytics.js snippet injected, as its README sets it up.
//! - `GET /__bench/bare`: the least such a route can do: read the same KV key and return it.
//! - `POST /__bench/seed`: `{ "<user id>": { audiences… }, … }` written to KV, so every user
//!   the load uses has a profile (on a KV miss the SDK would ask Segment's Profiles API).
//! - `GET /__bench/escapes`: the URLs the SDK tried to fetch off loopback (see below).
//!
//! Everything stays on loopback: the Profiles API is off (`useProfilesAPI: false`, and no
//! Personas space or token), the CDN and tracking hosts point at `ORIGIN_URL`, and
//! `globalThis.fetch` is wrapped so that any other host is refused (answered 599, never
//! sent) and recorded; the bench fails when that list is not empty.

import { Segment } from "@segment/edge-sdk";

const WRITE_KEY = "bench-write-key";
const escapes = [];
const loopbackFetch = globalThis.fetch;

globalThis.fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== "127.0.0.1") {
    if (escapes.length < 100) escapes.push(url.href);
    return Promise.resolve(new Response("refused by the bench: not loopback", { status: 599 }));
  }
  return loopbackFetch(input, init);
};

/** The value of one cookie of a request, or null. */
function cookie(request, name) {
  const header = request.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);

    if (url.pathname === "/__bench/bare") {
      const user = cookie(request, "ajs_user_id");
      const profile = user ? await env.PROFILES.get(`user_id:${user}`) : null;
      return new Response(profile ?? "{}", { headers: { "content-type": "application/json" } });
    }
    if (url.pathname === "/__bench/seed" && request.method === "POST") {
      const profiles = await request.json();
      await Promise.all(
        Object.entries(profiles).map(([user, audiences]) =>
          env.PROFILES.put(`user_id:${user}`, JSON.stringify(audiences)),
        ),
      );
      return Response.json({ seeded: Object.keys(profiles).length });
    }
    if (url.pathname === "/__bench/escapes") {
      return Response.json({ escapes });
    }

    // The SDK keeps its handlers on the instance and adds them again on every handleEvent,
    // so its README builds one per request; so does this worker.
    const segment = new Segment(
      {
        writeKey: WRITE_KEY,
        routePrefix: "seg",
        baseSegmentCDN: env.ORIGIN_URL,
        trackingApiEndpoint: `${env.ORIGIN_URL}/v1`,
        profilesStorage: env.PROFILES,
        logLevels: ["error"],
      },
      { useProfilesAPI: false, engageIncomingWebhook: false },
    );
    segment.registerVariation("/", (audiences) => (audiences?.vip ? "/vip" : undefined));

    // A full proxy: the page's own URL, fetched from the origin (here the loopback server).
    const origin = new URL(`${url.pathname}${url.search}`, env.ORIGIN_URL);
    return segment.handleEvent(new Request(origin, request));
  },
};
