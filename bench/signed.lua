-- wrk script for bench/_harness.py: every request a new signed delivery, read from a file per wrk thread (one
-- line: webhook-id, webhook-timestamp, webhook-signature), so that each is a new event and none is a repeat.
-- wrk is run as: wrk ... -s bench/signed.lua URL -- BODY_FILE PREFIX ; thread n reads PREFIX.n
local count = 0
local threads = {}

function setup(thread)
  thread:set("n", count)
  count = count + 1
  table.insert(threads, thread)
end

local lines, body, wrapped

function init(args)
  local f = assert(io.open(args[1], "rb"))
  body = f:read("*a")
  f:close()
  lines = assert(io.open(args[2] .. "." .. n, "r"))
  wrapped = 0
end

function request()
  local line = lines:read("*l")
  if not line then  -- more requests than lines: repeats from here (the harness refuses such a round)
    wrapped = 1
    lines:seek("set", 0)
    line = lines:read("*l")
  end
  local id, stamp, signature = line:match("(%S+) (%S+) (%S+)")
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["webhook-id"] = id,
    ["webhook-timestamp"] = stamp, ["webhook-signature"] = signature}, body)
end

function done(summary, latency, requests)
  local repeated = 0
  for _, thread in ipairs(threads) do
    repeated = repeated + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format('{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "socket_errors": %d, ' ..
    '"non_2xx": %d, "repeated": %d}\n', summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status, repeated))
end
