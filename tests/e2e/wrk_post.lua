-- wrk script: POSTs JSON bodies read from a file, used in turn, and counts response statuses.
-- Usage: wrk -s wrk_post.lua http://HOST:PORT -- BODIES_FILE
-- Each line of BODIES_FILE is "PATH JSON", e.g. "/v1/embeddings {"model": ..., "input": "hi"}".
-- Prints one line "WRK_RESULT {json}" at the end so callers need not parse wrk's human summary.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    local path, body = line:match("^(/%S*) (.+)$")
    if path then table.insert(bodies, {path, body}) end
  end
  assert(#bodies > 0, "no request bodies in " .. tostring(args[1]))
  -- Threads start at different bodies so every body is in flight from the start.
  next_body = math.random(#bodies)
  ok, non2xx, statuses = 0, 0, {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  next_body = next_body % #bodies + 1
  local b = bodies[next_body]
  return wrk.format(nil, b[1], nil, b[2])
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, seen = 0, 0, {}
  for _, t in ipairs(threads) do
    total_ok = total_ok + t:get("ok")
    total_bad = total_bad + t:get("non2xx")
    for code, n in pairs(t:get("statuses")) do seen[#seen + 1] = string.format('"%d": %d', code, n) end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "ok": %d, "non2xx": %d, "non2xx_statuses": {%s}, "duration_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, total_ok, total_bad, table.concat(seen, ", "), summary.duration,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
