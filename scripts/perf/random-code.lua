-- wrk script: every request is a keep-alive GET of a code drawn at random
-- from a codes file (one code a line, as scripts/perf/gen-links.py writes it).
--   wrk -t1 -c64 -d15s --latency -s scripts/perf/random-code.lua \
--       http://127.0.0.1:8080 -- CODES_FILE [HOST]
-- HOST (default localhost) is the Host header. The requests are rendered once
-- at start (about 3 s for 1M codes), so wrk spends no time formatting them.
-- done() prints one `RESULT key=value ...` line for scripts/perf/lib.sh.
-- With DEPTH=N (N > 1), each write is N requests back to back (HTTP/1.1
-- pipelining); wrk counts every response, so requests/s is per request,
-- while its latency is per batch of N.
local requests = {}
local count = 0
local depth = tonumber(os.getenv("DEPTH") or "1")
local batch = {}

-- With WRK_MARK set, touches WRK_MARK.start once the codes are loaded (the
-- load begins right after) and WRK_MARK.end when it is over, so the caller
-- can read the server's CPU time over exactly the load.
local function mark(what)
   local prefix = os.getenv("WRK_MARK")
   if prefix then
      io.open(prefix .. "." .. what, "w"):close()
   end
end

function init(args)
   local path = args[1] or os.getenv("CODES")
   local host = args[2] or "localhost"
   -- USER_AGENT (optional) adds a User-Agent header; wrk sends none.
   local extra = ""
   if os.getenv("USER_AGENT") then
      extra = "User-Agent: " .. os.getenv("USER_AGENT") .. "\r\n"
   end
   if not path then
      error("pass the codes file: wrk ... -- CODES_FILE")
   end
   for code in io.lines(path) do
      count = count + 1
      requests[count] = "GET /" .. code .. " HTTP/1.1\r\nHost: " .. host .. "\r\n" .. extra .. "\r\n"
   end
   -- A fixed seed: every server gets the same sequence of codes.
   math.randomseed(tonumber(os.getenv("SEED") or "20261124"))
   mark("start")
end

function request()
   if depth <= 1 then
      return requests[math.random(count)]
   end
   for i = 1, depth do
      batch[i] = requests[math.random(count)]
   end
   return table.concat(batch)
end

function done(summary, latency, _)
   mark("end")
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%.1f p75_us=%.1f p90_us=%.1f p99_us=%.1f " ..
      "max_us=%.1f connect_errors=%d read_errors=%d write_errors=%d timeouts=%d status_errors=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency.max,
      summary.errors.connect, summary.errors.read, summary.errors.write,
      summary.errors.timeout, summary.errors.status))
end
