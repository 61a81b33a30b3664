-- @noindex
-- tad_common.lua: what the tad-daemon ReaScripts share.
--
-- Lua in REAPER has no sockets, so the scripts talk to the daemon through its own small client,
-- `tad-daemon send ADDRESS ARGS... --json`, which prints one JSON object per reply
-- ({"address": "/tad/done", "args": [...]}) and exits 0 (all done), 1 (a /tad/fail), 2 (usage) or
-- 3 (no answer: the daemon is not running). JSON lines rather than the plain output because paths
-- may contain spaces.
--
-- The client runs in the background and never blocks REAPER's UI: reaper.ExecProcess(cmd, -1)
-- returns at once without output, so a small job script writes the output to a file and, last, an
-- exit-code marker; reaper.defer polls for the marker (with a timeout) and then reads the output.

local M = {}

M.SECTION = "tad-daemon" -- ExtState section
M.BUNDLED = { "kick", "snare", "hat", "perc" }
M.DEFAULT_STRENGTH = 0.5
M.DEFAULT_AMOUNT = 0.15 -- "close relative": how far from the seed's own sound
M.DEFAULT_INBETWEENS = 3
-- What a beat needs: each piece the first of its names the daemon has (a model of several kinds makes
-- closed-hat, open-hat, clap, tom...; the first bundled models are kick, snare, hat and perc).
M.KIT = { { "kick" }, { "snare" }, { "closed-hat", "hat" }, { "open-hat" }, { "clap" }, { "tom", "perc" } }
M.LAYERS = { velocities = 4, round_robins = 3 } -- a layer set's defaults ("Insert velocity layers")
M.REMAKES = { generate = true, tweak = true, kit = true } -- kinds whose seed makes the sound again
M.POLL_TIMEOUT = 600 -- seconds before a job is given up (the client has its own, shorter, timeouts)
M.START_GRACE = 5 -- seconds a job ExecProcess said it could not start still has to show up
M.SAMPLE_LENGTH = 32768 / 44100 -- what the models make, in seconds

-- ---- platform, paths, quoting -------------------------------------------------------------------

function M.platform()
  local os_name = reaper.GetOS()
  if os_name:match("^Win") then return "windows" end
  if os_name:match("^OSX") or os_name:match("^macOS") then return "mac" end
  return "linux"
end

function M.sep()
  return M.platform() == "windows" and "\\" or "/"
end

function M.join(...)
  return table.concat({ ... }, M.sep())
end

function M.basename(path)
  return (tostring(path):gsub("[/\\]+$", ""):match("([^/\\]+)$")) or tostring(path)
end

function M.dirname(path)
  return tostring(path):match("^(.*)[/\\][^/\\]*$") or "."
end

-- One argument, quoted for the job script's shell: POSIX sh on macOS and Linux, a .bat file on Windows.
function M.quote(arg, platform)
  arg = tostring(arg)
  platform = platform or M.platform()
  if arg:find("[\r\n%z]") then
    error("a line break or NUL character cannot be passed on a command line: " .. arg, 0)
  end
  if platform == "windows" then
    -- Windows file names cannot contain '"', and cmd.exe offers no way to escape one inside quotes.
    if arg:find('"', 1, true) then
      error('a double quote (") cannot be passed on a Windows command line: ' .. arg, 0)
    end
    arg = arg:gsub("%%", "%%%%") -- batch files expand %NAME%
    -- Backslashes right before the closing quote would escape it for the program's own parser.
    local trailing = arg:match("(\\*)$")
    return '"' .. arg .. trailing .. '"'
  end
  return "'" .. arg:gsub("'", "'\\''") .. "'"
end

function M.command_line(argv, platform)
  local parts = {}
  for i, a in ipairs(argv) do parts[i] = M.quote(a, platform) end
  return table.concat(parts, " ")
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local data = f:read("a")
  f:close()
  return data
end
M.read_file = read_file

local function write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

-- ---- finding the tad-daemon command -------------------------------------------------------------

-- Where to look, in order (after the ExtState setting and TAD_DAEMON_COMMAND): a checkout or venv in
-- REAPER's resource folder, ~/.local/bin (pipx, pip --user), the .venv the README creates in a
-- checkout at ~/tad-daemon, common install folders, then every folder on PATH.
-- Install folders outside PATH when REAPER is started from the Finder or a desktop menu.
M.SYSTEM_DIRS = { mac = { "/opt/homebrew/bin", "/usr/local/bin" }, linux = { "/usr/local/bin" } }

function M.candidates()
  local platform = M.platform()
  local exe = platform == "windows" and "tad-daemon.exe" or "tad-daemon"
  local home = os.getenv(platform == "windows" and "USERPROFILE" or "HOME") or ""
  local resource = reaper.GetResourcePath()
  local list = {}
  local function add(...) list[#list + 1] = M.join(...) end
  if platform == "windows" then
    add(resource, "tad-daemon", ".venv", "Scripts", exe)
    add(home, "tad-daemon", ".venv", "Scripts", exe)
    add(home, ".local", "bin", exe)
    for _, base in ipairs({ os.getenv("APPDATA") or "", (os.getenv("LOCALAPPDATA") or "") .. "\\Programs" }) do
      for minor = 10, 14 do
        add(base, "Python", "Python3" .. minor, "Scripts", exe)
        add(base, "Python3" .. minor, "Scripts", exe)
      end
    end
  else
    add(resource, "tad-daemon", ".venv", "bin", exe)
    add(home, ".local", "bin", exe)
    add(home, "tad-daemon", ".venv", "bin", exe)
    for _, dir in ipairs(M.SYSTEM_DIRS[platform]) do add(dir, exe) end
  end
  for dir in (os.getenv("PATH") or ""):gmatch(platform == "windows" and "[^;]+" or "[^:]+") do
    add(dir, exe)
  end
  return list
end

function M.find_command()
  local configured = reaper.GetExtState(M.SECTION, "command")
  if configured ~= "" then
    if reaper.file_exists(configured) then return configured end
    return nil, "The tad-daemon command set for these scripts does not exist:\n" .. configured ..
      "\n\nRun the action \"tad-daemon: Set command path\" to change it."
  end
  local env = os.getenv("TAD_DAEMON_COMMAND")
  if env and env ~= "" and reaper.file_exists(env) then return env end
  local list = M.candidates()
  for _, path in ipairs(list) do
    if reaper.file_exists(path) then return path end
  end
  return nil, "Could not find the tad-daemon command. Looked in:\n" .. table.concat(list, "\n", 1, math.min(#list, 8)) ..
    (#list > 8 and "\n..." or "") ..
    "\n\nInstall tad-daemon (see its README), or run the action \"tad-daemon: Set command path\"."
end

-- ---- running the client in the background --------------------------------------------------------

local job_seq = 0

-- Where job scripts and their output go: in REAPER's resource folder, which only its user can write. A
-- fixed folder in a shared /tmp would let another user of the machine make it first and swap a script (it
-- runs as this user) or plant a link the output redirect follows.
function M.temp_dir()
  local dir = M.join(reaper.GetResourcePath(), "Data", "tad-daemon", "jobs")
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir
end

-- The job script: run the command with its output in files, then write the exit code to a temporary
-- name and rename it, so the marker appears complete or not at all.
function M.job_script(argv, files, platform)
  platform = platform or M.platform()
  local q = function(s) return M.quote(s, platform) end
  if platform == "windows" then
    return table.concat({
      "@echo off",
      "chcp 65001 > NUL",
      "set PYTHONIOENCODING=utf-8",
      M.command_line(argv, platform) .. " > " .. q(files.out) .. " 2> " .. q(files.err),
      "echo %ERRORLEVEL% > " .. q(files.code .. ".tmp"),
      "move /Y " .. q(files.code .. ".tmp") .. " " .. q(files.code) .. " > NUL",
    }, "\r\n") .. "\r\n"
  end
  return table.concat({
    "#!/bin/sh",
    "PYTHONIOENCODING=utf-8; export PYTHONIOENCODING",
    M.command_line(argv, platform) .. " > " .. q(files.out) .. " 2> " .. q(files.err),
    "echo $? > " .. q(files.code .. ".tmp"),
    "mv -f " .. q(files.code .. ".tmp") .. " " .. q(files.code),
  }, "\n") .. "\n"
end

-- Start `tad-daemon ARGS...` in the background; on_done(result) runs from a deferred call when it ends:
-- result = {code = exit code or nil, replies = {{address=, args=}...}, stdout =, stderr =, timed_out =,
-- error = message when it could not start}.
function M.run(args, on_done, opts)
  opts = opts or {}
  local command, why = M.find_command()
  if not command then
    on_done({ error = why, replies = {} })
    return
  end
  local argv = { command }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local port = reaper.GetExtState(M.SECTION, "port")
  if port ~= "" and args[1] == "send" then
    argv[#argv + 1] = "--port"
    argv[#argv + 1] = port
  end

  job_seq = job_seq + 1
  local stem = M.join(M.temp_dir(), string.format("job-%d-%d", math.floor(reaper.time_precise() * 1000), job_seq))
  local windows = M.platform() == "windows"
  local files = { out = stem .. ".out", err = stem .. ".err", code = stem .. ".code",
                  script = stem .. (windows and ".bat" or ".sh") }
  local ok, script = pcall(M.job_script, argv, files)
  if not ok then
    on_done({ error = script, replies = {} })
    return
  end
  local wrote, err = write_file(files.script, script)
  if not wrote then
    on_done({ error = "Could not write a temporary file: " .. tostring(err), replies = {} })
    return
  end
  local launch = windows and ('cmd.exe /C "' .. files.script .. '"') or ('/bin/sh "' .. files.script .. '"')
  -- -1: do not wait; -2 also keeps the console window minimised on Windows. REAPER's documentation says
  -- ExecProcess returns nil on total failure; what it returns when it does not wait is not written down
  -- for every platform, so nil is not taken as the last word: the job gets START_GRACE seconds to show up
  -- (its marker) before it is called not started.
  local started = reaper.ExecProcess(launch, windows and -2 or -1) ~= nil
  local deadline = reaper.time_precise() + (started and (opts.timeout or M.POLL_TIMEOUT) or M.START_GRACE)
  local function cleanup()
    for _, p in pairs(files) do os.remove(p) end
    os.remove(files.code .. ".tmp")
  end
  local function poll()
    local code = read_file(files.code)
    if code then
      local result = { code = tonumber(code:match("%-?%d+")), stdout = read_file(files.out) or "",
                       stderr = read_file(files.err) or "" }
      result.replies = M.parse_replies(result.stdout)
      cleanup()
      on_done(result)
    elseif reaper.time_precise() > deadline then
      cleanup()
      if not started then return on_done({ error = "REAPER could not start: " .. launch, replies = {} }) end
      on_done({ timed_out = opts.timeout or M.POLL_TIMEOUT, replies = {}, stdout = "", stderr = "" })
    else
      reaper.defer(poll)
    end
  end
  reaper.defer(poll)
end

-- An OSC argument for `tad-daemon send`, its type spelled out (s:, i:, f:) so that a model named "808"
-- stays a string and a path never reads as a number or an option.
function M.typed(value)
  if math.type(value) == "integer" then return "i:" .. value end
  if math.type(value) == "float" then return "f:" .. tostring(value) end
  return "s:" .. tostring(value)
end

-- `tad-daemon send ADDRESS ARGS... --json --timeout SEC`; the client's timeout is per reply.
function M.send(address, args, on_done, timeout, replies)
  local argv = { "send", address }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = M.typed(a) end
  argv[#argv + 1] = "--json"
  argv[#argv + 1] = "--timeout"
  argv[#argv + 1] = tostring(timeout or 5)
  M.run(argv, on_done, { timeout = (timeout or 5) * (replies or 1) + 30 })
end

-- Several jobs at once; on_all(results) once every one has finished, results in the same order.
function M.all(starters, on_all)
  local results, left = {}, #starters
  if left == 0 then on_all(results) return end
  for i, start in ipairs(starters) do
    start(function(result)
      results[i] = result
      left = left - 1
      if left == 0 then on_all(results) end
    end)
  end
end

-- ---- JSON lines ----------------------------------------------------------------------------------

-- A small JSON decoder for the client's output: objects, arrays, strings (with \u escapes, surrogate
-- pairs included), numbers (integers stay integers), true, false, null.
function M.json_decode(text)
  local pos = 1
  local function fail(what) error(string.format("JSON: %s at character %d", what, pos), 0) end
  local function skip() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = text:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1 break end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local simple = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
        if simple[e] then
          out[#out + 1] = simple[e]
          pos = pos + 2
        elseif e == "u" then
          local cp = tonumber(text:sub(pos + 2, pos + 5), 16) or fail("bad \\u escape")
          pos = pos + 6
          if cp >= 0xD800 and cp <= 0xDBFF and text:sub(pos, pos + 1) == "\\u" then
            local low = tonumber(text:sub(pos + 2, pos + 5), 16)
            if low and low >= 0xDC00 and low <= 0xDFFF then
              cp = 0x10000 + (cp - 0xD800) * 0x400 + (low - 0xDC00)
              pos = pos + 6
            end
          end
          out[#out + 1] = utf8.char(cp)
        else
          fail("bad escape")
        end
      else
        local j = text:find('["\\]', pos) or #text + 1
        out[#out + 1] = text:sub(pos, j - 1)
        pos = j
      end
    end
    return table.concat(out)
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1 return obj end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1 return arr end
      while true do
        arr[#arr + 1] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif text:sub(pos, pos + 3) == "true" then
      pos = pos + 4
      return true
    elseif text:sub(pos, pos + 4) == "false" then
      pos = pos + 5
      return false
    elseif text:sub(pos, pos + 3) == "null" then
      pos = pos + 4
      return nil
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" or num == "-" then fail("unexpected character") end
    pos = pos + #num
    return num:find("[.eE]") and tonumber(num) or math.tointeger(tonumber(num))
  end
  local result = value()
  skip()
  if pos <= #text then fail("trailing characters") end
  return result
end

function M.parse_replies(text)
  local replies = {}
  for line in tostring(text):gmatch("[^\r\n]+") do
    local ok, obj = pcall(M.json_decode, line)
    if ok and type(obj) == "table" and type(obj.address) == "string" then
      replies[#replies + 1] = { address = obj.address, args = obj.args or {} }
    end
  end
  return replies
end

-- ---- what went wrong, in words -------------------------------------------------------------------

function M.failures(result)
  local messages = {}
  for _, r in ipairs(result.replies or {}) do
    if r.address == "/tad/fail" then messages[#messages + 1] = tostring(r.args[2]) end
  end
  return messages
end

-- nil when the job went well, else a message for the user.
function M.problem(result)
  if result.error then return result.error end
  if result.timed_out then
    return "tad-daemon did not finish within " .. tostring(result.timed_out) .. " seconds."
  end
  if result.code == 0 then return nil end
  if result.code == 3 then
    return "The tad-daemon daemon is not running (no answer on its port).\n\n" ..
      "Start it in a terminal with:\n    tad-daemon serve\n\nthen run this action again."
  end
  local fails = M.failures(result)
  if result.code == 1 and #fails > 0 then
    return "The daemon could not do it:\n" .. table.concat(fails, "\n")
  end
  local detail = (result.stderr or "") ~= "" and result.stderr or result.stdout or ""
  return string.format("tad-daemon failed (exit code %s):\n%s", tostring(result.code), detail:sub(1, 1500))
end

function M.alert(message, title)
  reaper.ShowMessageBox(message, title or "tad-daemon", 0)
end

-- ---- settings remembered in ExtState -------------------------------------------------------------

function M.parse_strength(text)
  local x = tonumber((tostring(text):gsub(",", ".")))
  if x and x >= 0 and x <= 1 then return x end
  return nil
end

-- The variation strength: asked once, then remembered (persisted in REAPER's ExtState). ask = true
-- asks again with the remembered value as the default. nil when the user cancelled.
function M.strength(ask)
  local saved = M.parse_strength(reaper.GetExtState(M.SECTION, "strength"))
  if saved and not ask then return saved end
  local default = saved or M.DEFAULT_STRENGTH
  while true do
    local ok, text = reaper.GetUserInputs("tad-daemon: variation strength", 1,
      "Strength (0 = same; 1 = new),extrawidth=40", tostring(default))
    if not ok then return nil end
    local x = M.parse_strength(text)
    if x then
      reaper.SetExtState(M.SECTION, "strength", tostring(x), true)
      return x
    end
    M.alert("Please enter a number from 0 to 1 (for example 0.3).")
  end
end

-- A note as the daemon takes it (A1, C#2, Eb1: tad_daemon/audio/tune.py); "" for off; nil when not a note.
function M.parse_note(text)
  local t = tostring(text):match("^%s*(.-)%s*$")
  if t == "" or t:lower() == "off" then return "" end
  local octave = t:match("^[A-Ga-g][#b]?(%-?%d)$")
  if octave and tonumber(octave) >= -1 and tonumber(octave) <= 8 then return t:sub(1, 1):upper() .. t:sub(2) end
  return nil
end

-- The remembered settings of the newer actions, each with its default.
function M.setting(key)
  local v = reaper.GetExtState(M.SECTION, key)
  if key == "tune" then return M.parse_note(v) or "" end
  if key == "amount" then return M.parse_strength(v) or M.DEFAULT_AMOUNT end
  local n = math.tointeger(tonumber(v))
  return (n and n >= 1 and n <= 16) and n or M.DEFAULT_INBETWEENS
end

-- `tune=NOTE` for requests that take it, when a note is set.
function M.tune_options()
  local note = M.setting("tune")
  return note ~= "" and { "tune=" .. note } or {}
end

-- "Set tuning, relative amount and in-betweens": one dialog for the three, each checked.
function M.configure_settings()
  local defaults = table.concat({ M.setting("tune"), tostring(M.setting("amount")), tostring(M.setting("inbetweens")) }, ",")
  while true do
    local ok, text = reaper.GetUserInputs("tad-daemon: settings", 3,
      "Tune to note (A1; empty: off),Relative amount (0 to 1),Morph in-betweens (1 to 16),extrawidth=40", defaults)
    if not ok then return false end
    local note, amount, inbetweens = text:match("^([^,]*),([^,]*),([^,]*)$")
    note, amount = M.parse_note(note or "?"), M.parse_strength(amount or "")
    inbetweens = math.tointeger(tonumber(inbetweens or ""))
    if note and amount and inbetweens and inbetweens >= 1 and inbetweens <= 16 then
      reaper.SetExtState(M.SECTION, "tune", note, true)
      reaper.SetExtState(M.SECTION, "amount", tostring(amount), true)
      reaper.SetExtState(M.SECTION, "inbetweens", tostring(inbetweens), true)
      return true
    end
    defaults = text
    M.alert("Tune: a note such as A1 or C#2, or empty for off. Amount: 0 to 1 (0.1 is a close relative). " ..
      "In-betweens: 1 to 16.")
  end
end

-- What tad-daemon wrote into a file it made ({model, seed, kind, turns}; nil for other files): the
-- generation metadata is JSON in the WAV's comment, keys sorted. `turns` ("" for a seed's own sound) is a
-- relative's recipe: relatives of it are asked for with it.
function M.made_by(path)
  local data = read_file(path)
  if not data or not data:find('"software": "tad-daemon', 1, true) then return nil end
  local model, seed = data:match('"model": "([^"]+)"'), math.tointeger(tonumber(data:match('"seed": (%d+)')))
  if not model or not seed then return nil end
  return { model = model, seed = seed, kind = data:match('"kind": "([^"]+)"') or "generate",
    turns = data:match('"turns": "([%d:.,e%-]*)"') or "" }
end

-- Names the daemon accepts for models and jobs (tad_daemon/names.py).
function M.valid_name(name)
  return #name >= 1 and #name <= 64 and name:match("^[A-Za-z0-9][A-Za-z0-9_.-]*$") ~= nil
    and not name:find("..", 1, true) and not name:match("%.$")
end

-- ---- models --------------------------------------------------------------------------------------

function M.models_from(result)
  local names = {}
  for _, r in ipairs(result.replies or {}) do
    if r.address == "/tad/model" then names[#names + 1] = { index = r.args[1], name = r.args[3], kind = r.args[4] } end
  end
  table.sort(names, function(a, b) return a.index < b.index end)
  local list = {}
  for i, m in ipairs(names) do list[i] = m.name end
  return list
end

-- Words in a take or file name that say which drum it is, for each model name the daemon may have: the
-- kinds of a model of several kinds first, then the first bundled models, which stand in for them.
M.WORDS = {
  { "kick", { "kicks?", "bd", "bassdrums?", "kck" } },
  { "clap", { "claps?", "handclaps?", "snaps?" } },
  { "rim", { "rims?", "rimshots?", "sidesticks?", "sticks?" } },
  { "snare", { "snares?", "sd", "snr" } },
  { "open-hat", { "open ?hi%-?hats?", "open ?hats?", "oh", "ohh" } },
  { "closed-hat", { "closed ?hi%-?hats?", "closed ?hats?", "hi%-?hats?", "hats?", "hh", "ch", "chh" } },
  { "crash", { "crash", "crashes", "splash", "china" } },
  { "ride", { "rides?", "ride ?bell" } },
  { "tambourine", { "tambourines?", "tamb", "tambo" } },
  { "shaker", { "shakers?", "maracas", "cabasa" } },
  { "cowbell", { "cowbells?", "agogo" } },
  { "hand-drum", { "congas?", "bongos?", "timbales?", "djembe", "tabla" } },
  { "wood", { "woodblocks?", "claves?", "blocks?", "castanets?" } },
  { "tom", { "toms?", "floor ?tom" } },
  { "snare", { "claps?", "rims?", "rimshots?" } },
  { "hat", { "hats?", "hihats?", "hh", "cymbals?", "rides?", "crash", "shakers?", "oh", "ch" } },
  { "perc", { "percs?", "percussion", "toms?", "congas?", "bongos?", "cowbells?", "woodblocks?" } },
}

local function has_word(text, word)
  return text:find("%f[%a]" .. word .. "%f[%A]") ~= nil
end

-- The model to vary an item with: the one set in ExtState "vary_model" (anything but "auto"), else a
-- model whose name appears in the take or file name, else the drum class the name suggests, else "perc".
function M.model_for(text, models)
  local fixed = reaper.GetExtState(M.SECTION, "vary_model")
  if fixed ~= "" and fixed ~= "auto" then return fixed end
  text = tostring(text):lower()
  local by_length = {}
  for _, m in ipairs(models) do by_length[#by_length + 1] = m end
  table.sort(by_length, function(a, b) return #a > #b end)
  for _, m in ipairs(by_length) do
    if text:find(m:lower(), 1, true) then return m end
  end
  local available = {}
  for _, m in ipairs(models) do available[m] = true end
  for _, entry in ipairs(M.WORDS) do
    local kind, words = entry[1], entry[2]
    if available[kind] then
      for _, word in ipairs(words) do
        if has_word(text, word) then return kind end
      end
    end
  end
  if available.perc or #models == 0 then return "perc" end
  return models[1]
end

-- ---- items and takes -----------------------------------------------------------------------------

function M.source_file(take)
  local src = reaper.GetMediaItemTake_Source(take)
  while src do
    local name = reaper.GetMediaSourceFileName(src, "")
    if name and name ~= "" then return name end
    src = reaper.GetMediaSourceParent(src) -- sections and reversed sources wrap the file's source
  end
  return nil
end

-- The selected items with an audio take whose file exists.
function M.selected_audio_items()
  local items, skipped = {}, 0
  for i = 0, reaper.CountSelectedMediaItems(0) - 1 do
    local item = reaper.GetSelectedMediaItem(0, i)
    local take = reaper.GetActiveTake(item)
    local file = take and not reaper.TakeIsMIDI(take) and M.source_file(take)
    if file and reaper.file_exists(file) then
      local _, name = reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", "", false)
      items[#items + 1] = { item = item, take = take, file = file, name = name or "" }
    else
      skipped = skipped + 1
    end
  end
  return items, skipped
end

-- Point a take at another file. Everything else about the item and take stays as it was; only a start
-- offset past the end of the new (shorter) file is brought back to its start, and "loop source" goes off:
-- an item longer than the new 0.74 s one-shot would otherwise play it twice.
function M.set_take_file(take, path)
  local new = reaper.PCM_Source_CreateFromFile(path)
  if not new then return false end
  local old = reaper.GetMediaItemTake_Source(take)
  reaper.SetMediaItemTake_Source(take, new)
  if old then reaper.PCM_Source_Destroy(old) end
  reaper.SetMediaItemInfo_Value(reaper.GetMediaItemTake_Item(take), "B_LOOPSRC", 0)
  local length = reaper.GetMediaSourceLength(new)
  if reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS") >= length then
    reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0)
  end
  return true
end

local function first_done_paths(result, command)
  local paths = {}
  for _, r in ipairs(result.replies or {}) do
    if r.address == "/tad/done" and r.args[1] == command then paths[#paths + 1] = r.args[2] end
  end
  return paths
end
M.done_paths = first_done_paths

-- ---- the actions ---------------------------------------------------------------------------------

-- One request per group ({model, file, items}) to `address`, all at once; then every group's items get
-- their new files (one per item, in order) in one undo block, and what went wrong is said once.
local function replace_from(order, address, args_of, timeout, undo_name, total, done, problems)
  problems = problems or {}
  local starters = {}
  for i, g in ipairs(order) do
    starters[i] = function(cb) M.send(address, args_of(g), cb, timeout, #g.items) end
  end
  M.all(starters, function(results)
    local todo = {}
    for i, g in ipairs(order) do
      local problem_i = M.problem(results[i])
      if problem_i then problems[#problems + 1] = M.basename(g.file) .. ": " .. problem_i end
      local paths = first_done_paths(results[i], address)
      for k, it in ipairs(g.items) do
        if paths[k] and reaper.file_exists(paths[k]) then todo[#todo + 1] = { it = it, path = paths[k] } end
      end
    end
    local replaced = 0
    if #todo > 0 then
      reaper.Undo_BeginBlock()
      for _, t in ipairs(todo) do
        -- The user may have deleted the item while the daemon was working.
        if reaper.ValidatePtr2(0, t.it.take, "MediaItem_Take*") and M.set_take_file(t.it.take, t.path) then
          reaper.UpdateItemInProject(t.it.item)
          replaced = replaced + 1
        end
      end
      reaper.Main_OnCommand(40047, 0) -- Peaks: Build any missing peak files
      reaper.UpdateArrange()
      reaper.Undo_EndBlock(undo_name, -1)
    end
    if #problems > 0 then
      M.alert(string.format("%d of %d item(s) replaced.\n\n%s", replaced, total, table.concat(problems, "\n\n")))
    end
    done(replaced > 0)
  end)
end

-- The daemon's models, then on_models(models); a problem is shown and done(false) called instead.
local function with_models(done, on_models)
  M.send("/tad/models", {}, function(listing)
    local problem = M.problem(listing)
    if problem then
      M.alert(problem)
      return done(false)
    end
    on_models(M.models_from(listing))
  end)
end

-- A request that makes files: on_paths(paths) with what came, or the problem shown and done(false).
local function new_files(address, args, timeout, replies, done, on_paths)
  M.send(address, args, function(result)
    local problem = M.problem(result)
    local paths = first_done_paths(result, address)
    if problem or #paths == 0 then
      M.alert(problem or "The daemon answered without a file.")
      return done(false)
    end
    on_paths(paths)
  end, timeout, replies)
end

-- "Replace selected items with a variation": one /tad/vary per distinct (file, model) with a count of
-- the items using it, all running at once; then every item gets its new file in one undo block.
function M.replace_selected_with_variation(done)
  done = done or function() end
  local items, skipped = M.selected_audio_items()
  if #items == 0 then
    M.alert("Select one or more audio items first" ..
      (skipped > 0 and " (MIDI items and items without a file cannot be varied)." or "."))
    return done(false)
  end
  local strength = M.strength(false)
  if not strength then return done(false) end

  with_models(done, function(models)
    local groups, order = {}, {}
    for _, it in ipairs(items) do
      local model = M.model_for(it.name .. " " .. M.basename(it.file), models)
      local key = model .. "\n" .. it.file
      if not groups[key] then
        groups[key] = { model = model, file = it.file, items = {} }
        order[#order + 1] = groups[key]
      end
      table.insert(groups[key].items, it)
    end
    local tune = M.tune_options()
    replace_from(order, "/tad/vary", function(g)
      return { g.model, g.file, strength + 0.0, #g.items, tune[1] }
    end, 60, "tad-daemon: replace with variation", #items, done)
  end)
end

-- Where a new one-shot goes: the first selected track, else the last touched one, else a new track.
local function target_track()
  local track = reaper.GetSelectedTrack(0, 0) or reaper.GetLastTouchedTrack()
  if track then return track end
  reaper.InsertTrackAtIndex(reaper.CountTracks(0), true)
  return reaper.GetTrack(0, reaper.CountTracks(0) - 1)
end

-- An item on `track` playing the source `src` (of `path`) at `position`, named after the file.
local function add_item(track, src, path, position)
  local item = reaper.AddMediaItemToTrack(track)
  local take = reaper.AddTakeToMediaItem(item)
  reaper.SetMediaItemTake_Source(take, src)
  reaper.SetMediaItemInfo_Value(item, "D_POSITION", position)
  reaper.SetMediaItemInfo_Value(item, "D_LENGTH", (reaper.GetMediaSourceLength(src)))
  reaper.GetSetMediaItemTakeInfo_String(take, "P_NAME", M.basename(path), true)
  return item
end

-- A new item playing `path` at `position`; nil (and nothing changed) when REAPER cannot read the file.
function M.insert_file(path, position, undo_name)
  local src = reaper.PCM_Source_CreateFromFile(path) -- first: an undo block must never be left open
  if not src then return nil end
  reaper.Undo_BeginBlock()
  local item = add_item(target_track(), src, path, position)
  reaper.SelectAllMediaItems(0, false)
  reaper.SetMediaItemSelected(item, true)
  reaper.Main_OnCommand(40047, 0) -- Peaks: Build any missing peak files
  reaper.UpdateArrange()
  reaper.Undo_EndBlock(undo_name, -1)
  return item
end

-- New tracks at `index` (0-based), one per {name, path, position...}, each holding its files: one undo
-- block. Files REAPER cannot read are left out (and counted); nothing is made when none can be read.
function M.insert_tracks(index, tracks, undo_name)
  local ready, missing = {}, 0
  for _, t in ipairs(tracks) do
    local sources = {}
    for k, path in ipairs(t.paths) do
      local src = reaper.PCM_Source_CreateFromFile(path)
      if src then sources[#sources + 1] = { src = src, path = path, position = t.positions[k] } else missing = missing + 1 end
    end
    if #sources > 0 then ready[#ready + 1] = { name = t.name, sources = sources } end
  end
  if #ready == 0 then return 0, missing end
  reaper.Undo_BeginBlock()
  reaper.SelectAllMediaItems(0, false)
  for i, t in ipairs(ready) do
    reaper.InsertTrackAtIndex(index + i - 1, true)
    local track = reaper.GetTrack(0, index + i - 1)
    reaper.GetSetMediaTrackInfo_String(track, "P_NAME", t.name, true)
    for _, s in ipairs(t.sources) do reaper.SetMediaItemSelected(add_item(track, s.src, s.path, s.position), true) end
  end
  reaper.TrackList_AdjustWindows(false) -- the track list and mixer show the new tracks at once
  reaper.Main_OnCommand(40047, 0) -- Peaks: Build any missing peak files
  reaper.UpdateArrange()
  reaper.Undo_EndBlock(undo_name, -1)
  return #ready, missing
end

-- "Insert new <model> one-shot at edit cursor". model nil: ask which (the daemon's list is shown).
function M.insert_new(model, done)
  done = done or function() end
  local position = reaper.GetCursorPosition() -- where the cursor was when the action ran
  local function generate(name)
    new_files("/tad/generate", { name, 1, M.tune_options()[1] }, 60, 1, done, function(paths)
      if not M.insert_file(paths[1], position, "tad-daemon: insert new " .. name) then
        M.alert("REAPER cannot read the new file:\n" .. paths[1])
        return done(false)
      end
      done(true)
    end)
  end
  if model then return generate(model) end

  with_models(done, function(models)
    local last = reaper.GetExtState(M.SECTION, "insert_model")
    local ok, answer = reaper.GetUserInputs("tad-daemon: new one-shot", 1,
      "Model (" .. table.concat(models, " / ") .. "),extrawidth=120", last ~= "" and last or (models[1] or ""))
    if not ok then return done(false) end
    answer = answer:match("^%s*(.-)%s*$")
    for _, m in ipairs(models) do
      if m == answer then
        reaper.SetExtState(M.SECTION, "insert_model", m, true)
        return generate(m)
      end
    end
    M.alert("The daemon has no model named \"" .. answer .. "\".\nIts models: " .. table.concat(models, ", "))
    done(false)
  end)
end

-- "Replace selected items with a close relative": items made by tad-daemon (their file says model and
-- seed, and a relative's turns) get a relative of their own sound, M.setting("amount") away: one /tad/tweak
-- per (model, seed, turns).
function M.replace_selected_with_relative(done)
  done = done or function() end
  local items, skipped = M.selected_audio_items()
  local groups, order, problems = {}, {}, {}
  for _, it in ipairs(items) do
    local made = M.made_by(it.file)
    if made and M.REMAKES[made.kind] then
      local key = made.model .. "\n" .. made.seed .. "\n" .. made.turns
      if not groups[key] then
        groups[key] = { model = made.model, seed = made.seed, turns = made.turns, file = it.file, items = {} }
        order[#order + 1] = groups[key]
      end
      table.insert(groups[key].items, it)
    else
      problems[#problems + 1] = M.basename(it.file) .. ": not a new sound made by tad-daemon (its seed would not " ..
        "make it again): use \"Replace selected items with a variation\""
    end
  end
  if #order == 0 then
    M.alert(#items == 0 and "Select one or more audio items made by tad-daemon first." or table.concat(problems, "\n\n"))
    return done(false)
  end
  local amount, tune = M.setting("amount"), M.tune_options()
  replace_from(order, "/tad/tweak", function(g)
    local args = { g.model, g.seed, amount + 0.0, #g.items }
    if tune[1] then args[#args + 1] = tune[1] end
    if g.turns ~= "" then args[#args + 1] = "turns=" .. g.turns end
    return args
  end, 60, "tad-daemon: replace with a close relative", #items + skipped, done, problems)
end

-- The part of `it`'s source file under the time selection, in seconds of the file (nil when none).
function M.source_region(it, from, to)
  local position = reaper.GetMediaItemInfo_Value(it.item, "D_POSITION")
  local length = reaper.GetMediaItemInfo_Value(it.item, "D_LENGTH")
  local offset = reaper.GetMediaItemTakeInfo_Value(it.take, "D_STARTOFFS")
  local rate = reaper.GetMediaItemTakeInfo_Value(it.take, "D_PLAYRATE")
  rate = rate > 0 and rate or 1
  local a, b = math.max(from, position), math.min(to, position + length)
  if b <= a then return nil end
  local start, finish = offset + (a - position) * rate, math.min(offset + (b - position) * rate, M.SAMPLE_LENGTH)
  if start < 0 or finish <= start then return nil end
  return start, finish
end

-- "Repaint time selection of selected items": under the time selection each item's sound is remade by
-- its model, the rest kept (keep the attack, get a new tail; keep the body, get a new attack).
function M.repaint_time_selection(done)
  done = done or function() end
  local from, to = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
  local items = M.selected_audio_items()
  if to <= from or #items == 0 then
    M.alert("Select audio items and make a time selection over the part of them to remake.")
    return done(false)
  end
  with_models(done, function(models)
    local order, problems = {}, {}
    for _, it in ipairs(items) do
      local start, finish = M.source_region(it, from, to)
      if start then
        order[#order + 1] = { model = M.model_for(it.name .. " " .. M.basename(it.file), models), file = it.file,
                              items = { it }, start = start, finish = finish }
      else
        problems[#problems + 1] = M.basename(it.file) .. ": the time selection is not over its first " ..
          string.format("%.2f s", M.SAMPLE_LENGTH)
      end
    end
    replace_from(order, "/tad/repaint", function(g)
      return { g.model, g.file, g.start + 0.0, g.finish + 0.0, 1.0, 1, -1 }
    end, 60, "tad-daemon: repaint time selection", #items, done, problems)
  end)
end

-- "Morph between the two selected items": M.setting("inbetweens") sounds between them, on a new track
-- below the first one's, spread between the two items (or one after another when they overlap).
function M.morph_selected(done)
  done = done or function() end
  local items = M.selected_audio_items()
  if #items ~= 2 then
    M.alert("Select exactly two audio items to morph between (" .. #items .. " selected).")
    return done(false)
  end
  local a, b = items[1], items[2]
  local pa, pb = reaper.GetMediaItemInfo_Value(a.item, "D_POSITION"), reaper.GetMediaItemInfo_Value(b.item, "D_POSITION")
  local n = M.setting("inbetweens")
  with_models(done, function(models)
    local model = M.model_for(a.name .. " " .. M.basename(a.file), models)
    -- The first morph of two files encodes both (seconds each on a laptop CPU): a generous timeout.
    new_files("/tad/morph", { model, a.file, b.file, 0.5, n }, 120, n, done, function(paths)
      local step = math.max(M.SAMPLE_LENGTH, (pb - pa) / (n + 1))
      local positions = {}
      for k = 1, #paths do positions[k] = pa + k * step end
      -- Below the first item's track, if that item still exists (it may have been deleted meanwhile: the
      -- first morph of two files takes seconds), else at the end of the project.
      local index = reaper.CountTracks(0)
      if reaper.ValidatePtr2(0, a.item, "MediaItem*") then
        index = math.tointeger(reaper.GetMediaTrackInfo_Value(reaper.GetMediaItem_Track(a.item), "IP_TRACKNUMBER"))
      end
      local made = M.insert_tracks(index, { { name = "morph " .. M.basename(a.file) .. " > " .. M.basename(b.file),
        paths = paths, positions = positions } }, "tad-daemon: morph")
      if made == 0 then M.alert("REAPER cannot read the new files:\n" .. table.concat(paths, "\n")) end
      done(made > 0)
    end)
  end)
end

-- The kit's pieces the daemon can make: for each of M.KIT, the first of its names among `models`.
function M.kit_names(models)
  local have, names = {}, {}
  for _, m in ipairs(models) do have[m] = true end
  for _, piece in ipairs(M.KIT) do
    for _, name in ipairs(piece) do
      if have[name] then
        names[#names + 1] = name
        break
      end
    end
  end
  return names
end

-- "Insert new kit at edit cursor": what a beat needs (kick, snare, closed and open hat, clap, tom: those the
-- daemon has) that belong together, loudness matched, each on a new track of its own at the end of the project.
function M.insert_kit(done)
  done = done or function() end
  local position = reaper.GetCursorPosition()
  with_models(done, function(models)
    local names = M.kit_names(models)
    if #names == 0 then
      M.alert("The daemon has no kick, snare, hat, clap or tom model to make a kit from.\nIts models: " ..
        table.concat(models, ", "))
      return done(false)
    end
    new_files("/tad/kit", { table.concat(names, ","), -1, M.tune_options()[1] }, 60, #names, done, function(paths)
      local tracks = {}
      for k, path in ipairs(paths) do tracks[k] = { name = names[k], paths = { path }, positions = { position } } end
      local made, missing = M.insert_tracks(reaper.CountTracks(0), tracks, "tad-daemon: insert new kit")
      if missing > 0 then M.alert(missing .. " of the kit's files could not be read by REAPER.") end
      done(made > 0)
    end)
  end)
end

-- "Insert velocity layers at edit cursor (choose model)": one drum as a sampler instrument, on one new track
-- at the end of the project: its layers soft to hard from the edit cursor on, each layer's round-robin takes
-- one after another (the files are in one folder of the sample folder, named for a sampler's mapping).
function M.insert_layers(done)
  done = done or function() end
  local position = reaper.GetCursorPosition()
  with_models(done, function(models)
    local last = reaper.GetExtState(M.SECTION, "layers_model")
    local ok, answer = reaper.GetUserInputs("tad-daemon: velocity layers", 3,
      "Model (" .. table.concat(models, " / ") .. "),Velocity layers (1-16),Round robins (1-8),extrawidth=120",
      (last ~= "" and last or (models[1] or "")) .. "," .. M.LAYERS.velocities .. "," .. M.LAYERS.round_robins)
    if not ok then return done(false) end
    local model, v, rr = answer:match("^%s*([^,]-)%s*,%s*([^,]-)%s*,%s*([^,]-)%s*$")
    v, rr = math.tointeger(tonumber(v)), math.tointeger(tonumber(rr))
    local known = false
    for _, m in ipairs(models) do known = known or m == model end
    if not known then
      M.alert("The daemon has no model named \"" .. tostring(model) .. "\".\nIts models: " .. table.concat(models, ", "))
      return done(false)
    end
    if not v or v < 1 or v > 16 or not rr or rr < 1 or rr > 8 then
      M.alert("Velocity layers go from 1 to 16 and round robins from 1 to 8.")
      return done(false)
    end
    reaper.SetExtState(M.SECTION, "layers_model", model, true)
    new_files("/tad/layers", { model, v, rr, -1, M.tune_options()[1] }, 60 + 10 * v * rr, v * rr, done,
      function(paths)
        local positions = {}
        for k = 1, #paths do positions[k] = position + (k - 1) * (M.SAMPLE_LENGTH + 0.25) end
        local made = M.insert_tracks(reaper.CountTracks(0), { { name = model .. " layers", paths = paths,
          positions = positions } }, "tad-daemon: insert velocity layers")
        if made == 0 then M.alert("REAPER cannot read the new files:\n" .. table.concat(paths, "\n")) end
        done(made > 0)
      end)
  end)
end

-- Copy a file (binary) unless the target exists with the same size.
local function copy_file(from, to)
  local data = read_file(from)
  if not data then return nil, "cannot read " .. from end
  local existing = read_file(to)
  if existing and #existing == #data then return true end
  return write_file(to, data)
end

-- The dataset folder for a fine-tune: the selected items' files are copied into
-- <REAPER resource folder>/Data/tad-daemon/datasets/<name>, so the model learns exactly these sounds
-- (their common parent folder might hold a whole project or sample library) and the dataset stays
-- put when the project's files move.
function M.dataset_dir(name)
  return M.join(reaper.GetResourcePath(), "Data", "tad-daemon", "datasets", name)
end

function M.queue_finetune(done)
  done = done or function() end
  local items = M.selected_audio_items()
  if #items == 0 then
    M.alert("Select the audio items whose sounds the new model should learn.")
    return done(false)
  end
  local files, seen = {}, {}
  for _, it in ipairs(items) do
    if not seen[it.file] then
      seen[it.file] = true
      files[#files + 1] = it.file
    end
  end
  local guess = M.model_for(items[1].name .. " " .. M.basename(items[1].file), M.BUNDLED)
  -- A model of several kinds is fine-tuned from the kind the files are: its name, e.g. "clap".
  local ok, answer = reaper.GetUserInputs("tad-daemon: queue fine-tune", 3,
    "New model name,Fine-tune from model (empty: new),Start now (y/n),extrawidth=80",
    "my-" .. guess .. "," .. guess .. ",n")
  if not ok then return done(false) end
  local name, base, now = answer:match("^([^,]*),([^,]*),([^,]*)$")
  name = (name or ""):match("^%s*(.-)%s*$")
  base = (base or ""):match("^%s*(.-)%s*$")
  now = (now or ""):match("^%s*[yY]") and 1 or 0
  if not M.valid_name(name) then
    M.alert("\"" .. name .. "\" cannot be a model name: use 1-64 letters, digits, '-', '_' or '.', " ..
      "starting with a letter or digit.")
    return done(false)
  end

  local dir = M.dataset_dir(name)
  reaper.RecursiveCreateDirectory(dir, 0)
  local used = {}
  for i, file in ipairs(files) do
    local target = M.basename(file)
    if used[target:lower()] then target = string.format("%03d_%s", i, target) end
    used[target:lower()] = true
    local copied, err = copy_file(file, M.join(dir, target))
    if not copied then
      M.alert("Could not copy a file into the dataset folder:\n" .. tostring(err))
      return done(false)
    end
  end

  M.send("/tad/train", { name, dir, base, 0, now }, function(result)
    local problem = M.problem(result)
    if problem then
      M.alert(problem)
      return done(false)
    end
    local reply
    for _, r in ipairs(result.replies) do
      if r.address == "/tad/done" and r.args[1] == "/tad/train" then reply = r.args end
    end
    M.alert(string.format("Fine-tune \"%s\" queued (job %s, %s) on %d file(s) in\n%s\n\n%s", name,
      tostring(reply and reply[2]), tostring(reply and reply[4]), #files, dir,
      now == 1 and "It starts as soon as the daemon is free." or
        "It runs in the daemon's night window. When it is done, the model appears in the model list."))
    done(true)
  end, 10)
end

-- "Set command path": where the tad-daemon command is (empty: search again).
function M.configure_command()
  local current = reaper.GetExtState(M.SECTION, "command")
  local found = current ~= "" and current or (M.find_command() or "")
  local ok, answer = reaper.GetUserInputs("tad-daemon: command", 1,
    "tad-daemon command (empty: search),extrawidth=300", found)
  if not ok then return end
  answer = answer:match("^%s*(.-)%s*$")
  if answer == "" then
    reaper.DeleteExtState(M.SECTION, "command", true)
    return
  end
  if not reaper.file_exists(answer) then
    M.alert("No such file:\n" .. answer)
    return
  end
  reaper.SetExtState(M.SECTION, "command", answer, true)
end

-- Load this library from an action script in the same folder.
return M
