-- wrk script of bench/load.py: each wrk thread holds one connection (wrk -t C -c C), so that each
-- connection's calls run strictly in order.
--
--   wrk -t C -c C -d 600s --timeout 60s -s bench/load.lua URL -- MODE DATA OUT C
--
-- DATA: one line per commune, "token delivery-id"; thread n takes lines n, n + C, n + 2C, …
-- MODE "morning": each of the thread's communes in turn: GET /api/v1/inbox, GET
--   /api/v1/deliveries/{id} (opening it), POST /api/v1/deliveries/{id}/ack. A non-2xx answer is an
--   error; after a 503 the connection waits its Retry-After (2 s), and a step is tried at most
--   MAX_TRIES times before the commune is given up. A thread with no commune left stops.
-- MODE "me": GET /api/v1/me, cycling through the thread's tokens until wrk's duration ends.
-- OUT: written by done(), one line per request: "call status start_us end_us" (CLOCK_MONOTONIC, the
--   clock of Python's time.monotonic()), then "given-up N".

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clk_id, load_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("load_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + math.floor(tonumber(timespec.tv_nsec) / 1000)
end

local MAX_TRIES = 3
local RETRY_AFTER_MS = 2000
local CALLS = { "inbox", "open", "ack" }

-- The main thread's state: the wrk threads, numbered as setup() sees them.
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

-- Each wrk thread's own state (globals of its own Lua state).
local mode, communes
local current, step, tries, wait_ms, finished = 1, 1, 0, 0, false
local started = 0
-- Globals, for done() to read through thread:get().
calls, statuses, starts, ends, given_up, out_path = {}, {}, {}, {}, 0, nil

function init(args)
  mode, out_path = args[1], args[3]
  local every = tonumber(args[4])
  communes = {}
  local n = 0
  for line in io.lines(args[2]) do
    if n % every == thread_number then
      local token, delivery = line:match("^(%S+)%s+(%S+)")
      communes[#communes + 1] = { "Bearer " .. token, delivery }
    end
    n = n + 1
  end
  if #communes == 0 then
    finished = true
  end
end

function delay()
  local wait = wait_ms
  wait_ms = 0
  return wait
end

function request()
  started = now_us()
  if finished then
    return wrk.format("GET", "/api/v1/health")
  end
  local commune = communes[current]
  local headers = { ["Authorization"] = commune[1] }
  if mode == "me" then
    return wrk.format("GET", "/api/v1/me", headers)
  end
  if step == 1 then
    return wrk.format("GET", "/api/v1/inbox", headers)
  elseif step == 2 then
    return wrk.format("GET", "/api/v1/deliveries/" .. commune[2], headers)
  end
  headers["Content-Length"] = "0"
  return wrk.format("POST", "/api/v1/deliveries/" .. commune[2] .. "/ack", headers)
end

local function next_commune()
  current, step, tries = current + 1, 1, 0
  if current > #communes then
    if mode == "me" then
      current = 1
    else
      finished = true
      wrk.thread:stop()
    end
  end
end

function response(status, headers, body)
  if finished then
    wrk.thread:stop() -- a thread without communes (more connections than communes) stops here
    return
  end
  local i = #calls + 1
  calls[i], statuses[i], starts[i], ends[i] = (mode == "me") and "me" or CALLS[step], status, started, now_us()
  if mode == "me" then
    next_commune()
    return
  end
  if status >= 200 and status < 300 then
    if step == 3 then
      next_commune()
    else
      step, tries = step + 1, 0
    end
    return
  end
  tries = tries + 1
  if status == 503 then
    wait_ms = RETRY_AFTER_MS
  end
  if tries >= MAX_TRIES then
    given_up = given_up + 1
    next_commune()
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(threads[1]:get("out_path"), "w"))
  local lost = 0
  for _, thread in ipairs(threads) do
    local c, s, b, e = thread:get("calls"), thread:get("statuses"), thread:get("starts"), thread:get("ends")
    for i = 1, #c do
      out:write(c[i], " ", s[i], " ", string.format("%d %d", b[i], e[i]), "\n")
    end
    lost = lost + thread:get("given_up")
  end
  out:write("given-up ", lost, "\n")
  out:write(
    string.format(
      "wrk %d %d %d %d %d %d %d\n",
      summary.requests,
      summary.duration,
      summary.errors.connect,
      summary.errors.read,
      summary.errors.write,
      summary.errors.status,
      summary.errors.timeout
    )
  )
  out:close()
end
