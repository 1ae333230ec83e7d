-- wrk script: sends the requests of a file in turn and prints exact figures for the driver.
--   wrk ... -s cycle.lua URL -- METHOD PATH [BODIES]
-- BODIES has one form body per line (POST); without it every request is the same.
-- Requests are formatted once in init: building them in request() would spend the load
-- generator's CPU, which shares the machine with the server under test.

local queue = {}
local next_index = 1
local threads = 0

function setup(thread)
  threads = threads + 1
  -- Threads start at different places so they do not send the same token at once.
  thread:set("start", threads * 7919)
end

function init(args)
  local method, path, bodies = args[1], args[2], args[3]
  if bodies then
    local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    for line in io.lines(bodies) do
      queue[#queue + 1] = wrk.format(method, path, headers, line)
    end
  else
    queue[1] = wrk.format(method, path)
  end
  next_index = (start or 0) % #queue + 1
end

function request()
  local r = queue[next_index]
  next_index = next_index % #queue + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SIGNET-BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
