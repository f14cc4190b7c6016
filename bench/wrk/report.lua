-- Shared by every wrk script of `make bench`: numbers the threads (`tid`), remembers the
-- first non-2xx answer each thread saw, and prints one machine-readable line when wrk is
-- done (bench/lib.mjs reads it).

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function response(status, headers, body)
  if (status < 200 or status > 299) and not bad_status then
    bad_status = status
    bad_body = string.sub(body or "", 1, 300)
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local first_bad = "null"
  for _, thread in ipairs(threads) do
    local status = thread:get("bad_status")
    if status and first_bad == "null" then
      first_bad = string.format('{"status":%d,"body":%s}', status,
        json_string(thread:get("bad_body") or ""))
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WEFT_WRK {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d},"first_bad":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, first_bad))
end
