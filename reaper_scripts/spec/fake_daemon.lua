-- A stand-in `tad-daemon` command for the unit tests: an executable Lua script that answers
-- `tad-daemon send ADDRESS ARGS... --json` the way the real client does (one JSON object per reply,
-- exit 0 / 1 on /tad/fail / 3 when "the daemon is not running"), logs every call, and writes real
-- WAV files for generate and vary. Its behaviour per address comes from a config file next to it.

local F = require("fake_reaper")

local D = {}

local SCRIPT = [=[
local here = arg[0]:match("^(.*)/[^/]*$")
local cfg = dofile(here .. "/config.lua")
local log = assert(io.open(here .. "/calls.log", "a"))
for _, a in ipairs(arg) do log:write(a, "\n") end
log:write("--END--\n")
log:close()

local function json(v)
  if type(v) == "number" then return tostring(v) end
  return '"' .. tostring(v):gsub('[%c"\\]', function(c)
    return ({ ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" })[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end
local function reply(address, args)
  local parts = {}
  for i, v in ipairs(args) do parts[i] = json(v) end
  io.write('{"address": ', json(address), ', "args": [', table.concat(parts, ", "), "]}\n")
end

-- Arguments come typed as `tad-daemon send` reads them: s:text, i:42, f:0.5.
local a = {}
for i, v in ipairs(arg) do
  local kind, rest = v:match("^([ifs]):(.*)$")
  local option_value = arg[i - 1] == "--timeout" or arg[i - 1] == "--port"
  if i > 2 and not kind and not v:match("^%-%-") and not option_value then
    io.stderr:write("untyped argument: " .. v .. "\n")
    os.exit(2)
  end
  a[i] = kind and rest or v
end
local address = a[2]
local rule = cfg[address] or {}
if cfg.down or rule.exit == 3 then
  io.stderr:write("no answer from 127.0.0.1:9310 within 5 s: is the daemon running? (tad-daemon serve)\n")
  os.exit(3)
end
if rule.fail then
  reply("/tad/fail", { address, rule.fail })
  os.exit(1)
end

local counter = here .. "/counter"
local function next_n()
  local f = io.open(counter)
  local n = f and tonumber(f:read("a")) or 0
  if f then f:close() end
  n = n + 1
  f = io.open(counter, "w") f:write(n) f:close()
  return n
end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function new_file(model, what)
  local path = string.format("%s/samples/%s/%04d_%s.wav", here, model, next_n(), what)
  os.execute("mkdir -p " .. q(here .. "/samples/" .. model) .. " && cp " .. q(cfg.wav) .. " " .. q(path))
  return path
end

if address == "/tad/models" then
  for i, name in ipairs(cfg.models) do reply("/tad/model", { i - 1, #cfg.models, name, name, "cpu-small", "bundled", "CC0" }) end
  reply("/tad/done", { "/tad/models", #cfg.models })
elseif address == "/tad/vary" then
  local model, source, strength, count = a[3], a[4], tonumber(a[5]), tonumber(a[6]) or 1
  for i = 1, count do reply("/tad/done", { "/tad/vary", new_file(model, "var"), model, 100 + i, strength, source }) end
elseif address == "/tad/generate" then
  local model, count = a[3], tonumber(a[4]) or 1
  for i = 1, count do reply("/tad/done", { "/tad/generate", new_file(model, "new"), model, 200 + i, 12, "dpmpp-2m", 0 }) end
elseif address == "/tad/tweak" then
  local model, seed, amount, count = a[3], tonumber(a[4]), tonumber(a[5]), tonumber(a[6]) or 1
  for i = 1, count do reply("/tad/done", { "/tad/tweak", new_file(model, "tweak"), model, seed, amount, i - 1, "" }) end
elseif address == "/tad/repaint" then
  local model, source, start, finish = a[3], a[4], tonumber(a[5]), tonumber(a[6])
  reply("/tad/done", { "/tad/repaint", new_file(model, "repaint"), model, 300, start, finish, source })
elseif address == "/tad/morph" then
  local model, count = a[3], tonumber(a[7]) or 1
  for i = 1, count do reply("/tad/done", { "/tad/morph", new_file(model, "morph"), model, i / (count + 1), a[4], a[5] }) end
elseif address == "/tad/kit" then
  for name in a[3]:gmatch("[^,]+") do reply("/tad/done", { "/tad/kit", new_file("kits", name), name, 400, "" }) end
elseif address == "/tad/layers" then
  local model, v, rr = a[3], tonumber(a[4]), tonumber(a[5])
  for i = 1, v do
    for k = 1, rr do
      local name = string.format("%s_v%03d_rr%d", model, math.floor(127 * i / v + 0.5), k)
      reply("/tad/done", { "/tad/layers", new_file("layers", name), model, 500, i / v, k - 1, "" })
    end
  end
elseif address == "/tad/train" then
  reply("/tad/done", { "/tad/train", "job-7", a[3], (a[7] == "1") and "running" or "queued" })
else
  reply("/tad/done", { address })
end
os.exit(0)
]=]

-- Make a fake daemon in a new folder; cfg: {models = {...}, down = bool, ["/tad/vary"] = {fail = "..."}}.
function D.new(cfg)
  local dir = F.temp_dir("fake daemon's bin") -- a space and a quote in the command's own path
  local wav = dir .. "/one-shot.wav"
  F.write_wav(wav, 32768)
  local fake = { dir = dir, command = dir .. "/tad-daemon", samples = dir .. "/samples", wav = wav }
  function fake.configure(c)
    c.models = c.models or { "kick", "snare", "hat", "perc" }
    c.wav = wav
    local lines = { "return {" }
    for k, v in pairs(c) do
      local key = string.format("[%q]", k)
      if type(v) == "table" and k == "models" then
        local names = {}
        for i, n in ipairs(v) do names[i] = string.format("%q", n) end
        lines[#lines + 1] = key .. " = {" .. table.concat(names, ", ") .. "},"
      elseif type(v) == "table" then
        lines[#lines + 1] = key .. " = {" .. (v.fail and ("fail = " .. string.format("%q", v.fail)) or "") ..
          (v.exit and ("exit = " .. v.exit) or "") .. "},"
      else
        lines[#lines + 1] = key .. " = " .. string.format("%q", v) .. ","
      end
    end
    lines[#lines + 1] = "}"
    F.write(dir .. "/config.lua", table.concat(lines, "\n"))
  end
  -- The calls made so far: a list of argument lists (the command's own path excluded).
  function fake.calls()
    local text = F.read(dir .. "/calls.log") or ""
    local calls, current = {}, {}
    for line in text:gmatch("([^\n]*)\n") do
      if line == "--END--" then
        calls[#calls + 1] = current
        current = {}
      else
        current[#current + 1] = line
      end
    end
    return calls
  end
  fake.configure(cfg or {})
  F.write(fake.command, "#!/usr/bin/env lua5.4\n" .. SCRIPT)
  os.execute("chmod +x " .. F.shell_quote(fake.command))
  return fake
end

return D
