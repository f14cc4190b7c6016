-- POST /v1/batch with 100 events per request, every messageId unique: 10 fresh visitors per
-- batch, each with 7 page views (a paid-search landing, pricing, docs), 2 tracks and an
-- identify, the mix a site's SDK sends. Arguments after `--`: a run tag (keeps ids unique
-- across runs against one worker) and the write key.

dofile(os.getenv("WEFT_WRK_DIR") .. "/report.lua")

local UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " ..
  "Chrome/131.0.0.0 Safari/537.36"
local PAGES = {
  "/?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc123",
  "/pricing", "/docs/guide/start", "/docs/guide/install", "/blog/launch", "/pricing",
  "/product/7",
}
local prefix, key = "run", "demo-write-key"
local counter = 0

function init(args)
  prefix = (args[1] or "run") .. "-" .. tostring(tid)
  key = args[2] or key
end

local function page(id, vis, path)
  local bare, search = path:match("^([^?]*)(.*)$")
  return string.format(
    '{"type":"page","messageId":"%s","anonymousId":"%s","properties":{"path":"%s",' ..
    '"url":"http://127.0.0.1%s","title":"Page"},"context":{"page":{"path":"%s",' ..
    '"url":"http://127.0.0.1%s","search":"%s","referrer":"https://www.google.com/"},' ..
    '"userAgent":"%s","library":{"name":"weft-bench","version":"0"}}}',
    id, vis, bare, path, bare, path, search, UA)
end

local function track(id, vis, name)
  return string.format(
    '{"type":"track","messageId":"%s","anonymousId":"%s","event":"%s",' ..
    '"properties":{"sku":"sku-7","price":49.5,"currency":"EUR"},' ..
    '"context":{"userAgent":"%s","library":{"name":"weft-bench","version":"0"}}}',
    id, vis, name, UA)
end

local function identify(id, vis, user)
  return string.format(
    '{"type":"identify","messageId":"%s","anonymousId":"%s","userId":"%s",' ..
    '"traits":{"email":"%s@example.com","plan":"pro","seats":12},' ..
    '"context":{"userAgent":"%s","library":{"name":"weft-bench","version":"0"}}}',
    id, vis, user, user, UA)
end

request = function()
  counter = counter + 1
  local events = {}
  for v = 1, 10 do
    local vis = string.format("a-%s-%d-%d", prefix, counter, v)
    local base = string.format("m-%s-%d-%d-", prefix, counter, v)
    for p = 1, #PAGES do
      events[#events + 1] = page(base .. p, vis, PAGES[p])
    end
    events[#events + 1] = track(base .. "t1", vis, "Product Viewed")
    events[#events + 1] = track(base .. "t2", vis, "Product Added")
    local user = string.format("u-%s-%d-%d", prefix, counter, v)
    events[#events + 1] = identify(base .. "i", vis, user)
  end
  local body = '{"writeKey":"' .. key .. '","batch":[' .. table.concat(events, ",") .. ']}'
  -- The URL's path: /v1/batch, or the bench's /v1/bench/hop for the same body.
  return wrk.format("POST", nil, { ["Content-Type"] = "text/plain" }, body)
end
