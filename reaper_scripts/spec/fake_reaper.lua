-- A stand-in for REAPER's `reaper` table: a tiny project (tracks, items, takes, sources), ExtState,
-- dialogs answered from a queue, a defer queue the test steps through, and a record of every call.
-- ExecProcess either records the command for the test to run later ("manual"), runs it to completion
-- before returning ("sync"), or starts it in the background ("background", for a real daemon).

local F = {}

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
F.shell_quote = shell_quote

function F.mkdir(path) os.execute("mkdir -p " .. shell_quote(path)) end

function F.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

function F.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local made = {}

function F.temp_dir(name)
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  made[#made + 1] = dir
  if name then
    dir = dir .. "/" .. name
    F.mkdir(dir)
  end
  return dir
end

-- Remove every folder temp_dir made.
function F.cleanup()
  for _, dir in ipairs(made) do os.execute("rm -rf " .. shell_quote(dir)) end
  made = {}
end

-- A 16-bit stereo WAV of `frames` frames of a decaying tone (what a one-shot looks like).
function F.write_wav(path, frames, rate)
  rate = rate or 44100
  local samples = {}
  for i = 0, frames - 1 do
    local v = math.floor(12000 * math.sin(i * 0.05) * math.exp(-i / 4000))
    samples[#samples + 1] = string.pack("<i2<i2", v, v)
  end
  local data = table.concat(samples)
  F.write(path, "RIFF" .. string.pack("<I4", 36 + #data) .. "WAVE" ..
    "fmt " .. string.pack("<I4I2I2I4I4I2I2", 16, 1, 2, rate, rate * 4, 4, 16) ..
    "data" .. string.pack("<I4", #data) .. data)
end

-- Seconds of audio in a PCM WAV file (any chunk order), or nil when it is not one.
function F.wav_length(path)
  local d = F.read(path)
  if not d or d:sub(1, 4) ~= "RIFF" or d:sub(9, 12) ~= "WAVE" then return nil end
  local pos, rate, block, size = 13, nil, nil, nil
  while pos + 8 <= #d do
    local id, n = d:sub(pos, pos + 3), string.unpack("<I4", d, pos + 4)
    if id == "fmt " then
      rate = string.unpack("<I4", d, pos + 12)
      block = string.unpack("<I2", d, pos + 20)
    elseif id == "data" then
      size = n
    end
    pos = pos + 8 + n + (n % 2)
  end
  if rate and block and size then return size / block / rate end
  return nil
end

function F.new(opts)
  opts = opts or {}
  local S = {
    os = opts.os or "linux-x86_64",
    resource = opts.resource or F.temp_dir("resource"),
    ext = {}, persisted = {},
    calls = {}, messages = {}, inputs = {}, deferred = {}, pending = {},
    exec_mode = opts.exec_mode or "sync",
    exec_returns = opts.exec_returns, -- what ExecProcess returns when it does not wait ("" unless set: nil)
    clock = 1000.0,
    undo_depth = 0, undo_blocks = {}, outside_undo = {},
    tracks = {}, cursor = 0.0, last_touched = nil,
    sources = {},
  }
  local r = {}
  local api = {} -- the functions, wrapped below to record calls

  local function changed(what)
    if S.undo_depth == 0 then S.outside_undo[#S.outside_undo + 1] = what end
  end

  -- ---- project model ----
  function S.add_track(name)
    local t = { kind = "track", name = name or ("Track " .. (#S.tracks + 1)), items = {}, selected = false }
    S.tracks[#S.tracks + 1] = t
    return t
  end

  function S.new_source(file)
    local src = { kind = "source", file = file, destroyed = false }
    S.sources[#S.sources + 1] = src
    return src
  end

  function S.add_item(track, file, props)
    props = props or {}
    local item = { kind = "item", track = track, selected = props.selected ~= false,
                   info = { D_POSITION = props.position or 0, D_LENGTH = props.length or 0.5,
                            D_FADEINLEN = props.fadein or 0, D_FADEOUTLEN = props.fadeout or 0,
                            D_VOL = props.vol or 1, B_LOOPSRC = props.loop or 0, B_MUTE = 0 } }
    local take = { kind = "take", item = item, midi = props.midi or false,
                   info = { D_STARTOFFS = props.startoffs or 0, D_PITCH = props.pitch or 0,
                            D_PLAYRATE = props.playrate or 1, D_VOL = props.takevol or 1 },
                   strings = { P_NAME = props.name or "" } }
    take.source = S.new_source(file)
    item.takes = { take }
    item.active = take
    track.items[#track.items + 1] = item
    return item, take
  end

  function S.selected_items()
    local list = {}
    for _, t in ipairs(S.tracks) do
      for _, it in ipairs(t.items) do if it.selected then list[#list + 1] = it end end
    end
    return list
  end

  -- ---- REAPER API ----
  function api.GetOS() return S.os end
  function api.GetResourcePath() return S.resource end
  function api.GetExtState(section, key) return S.ext[section .. "/" .. key] or "" end
  function api.SetExtState(section, key, value, persist)
    S.ext[section .. "/" .. key] = tostring(value)
    if persist then S.persisted[section .. "/" .. key] = tostring(value) end
  end
  function api.DeleteExtState(section, key) S.ext[section .. "/" .. key] = nil; S.persisted[section .. "/" .. key] = nil end
  function api.file_exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
  end
  function api.RecursiveCreateDirectory(path) F.mkdir(path) return 1 end
  function api.time_precise() return S.clock end
  function api.defer(fn) S.deferred[#S.deferred + 1] = fn end
  function api.ExecProcess(cmd, timeout)
    assert(timeout == -1 or timeout == -2, "ExecProcess must not wait (timeout " .. tostring(timeout) .. ")")
    if S.exec_mode == "manual" then
      S.pending[#S.pending + 1] = cmd
    elseif S.exec_mode == "background" then
      os.execute(cmd .. " >/dev/null 2>&1 &")
    elseif S.exec_mode ~= "none" then -- "none": the command never runs
      os.execute(cmd .. " >/dev/null 2>&1")
    end
    if S.exec_returns == false then return nil end
    return ""
  end
  function api.TrackList_AdjustWindows() end
  function api.ShowMessageBox(msg, title, kind) S.messages[#S.messages + 1] = msg return 1 end
  function api.GetUserInputs(title, n, captions, defaults)
    -- REAPER splits the captions at every comma: one inside a caption would make a field of its own.
    local fields = {}
    for field in (captions .. ","):gmatch("([^,]*),") do
      if not field:match("^extrawidth=") and not field:match("^separator=") then fields[#fields + 1] = field end
    end
    assert(#fields == n, string.format("%d caption(s) for %d field(s): %q", #fields, n, captions))
    assert(#S.inputs > 0, "unexpected dialog: " .. title)
    local answer = table.remove(S.inputs, 1)
    S.last_dialog = { title = title, captions = captions, defaults = defaults }
    if answer == false then return false, defaults end
    return true, answer
  end

  function api.CountSelectedMediaItems() return #S.selected_items() end
  function api.GetSelectedMediaItem(_, i) return S.selected_items()[i + 1] end
  function api.GetActiveTake(item) return item.active end
  function api.TakeIsMIDI(take) return take.midi end
  function api.GetMediaItemTake_Source(take) return take.source end
  function api.GetMediaItemTake_Item(take) return take.item end
  function api.GetMediaSourceFileName(src) return src.file or "" end
  function api.GetMediaSourceParent(src) return src.parent end
  function api.GetMediaSourceLength(src) return F.wav_length(src.file) or 0, false end
  function api.PCM_Source_CreateFromFile(path)
    if not api.file_exists(path) then return nil end
    return S.new_source(path)
  end
  function api.PCM_Source_Destroy(src) src.destroyed = true end
  function api.SetMediaItemTake_Source(take, src) changed("take source") take.source = src return true end
  function api.GetSetMediaItemTakeInfo_String(take, key, value, set)
    if set then changed("take " .. key) take.strings[key] = value return true, value end
    return true, take.strings[key] or ""
  end
  function api.GetMediaItemInfo_Value(item, key) return item.info[key] or 0 end
  function api.SetMediaItemInfo_Value(item, key, value) changed("item " .. key) item.info[key] = value return true end
  function api.GetMediaItemTakeInfo_Value(take, key) return take.info[key] or 0 end
  function api.SetMediaItemTakeInfo_Value(take, key, value) changed("take " .. key) take.info[key] = value return true end
  function api.ValidatePtr2(_, ptr, kind)
    if kind == "MediaItem_Take*" then return ptr.kind == "take" and not ptr.item.deleted end
    if kind == "MediaItem*" then return ptr.kind == "item" and not ptr.deleted end
    return false
  end
  function api.UpdateItemInProject() end
  function api.Main_OnCommand() end
  function api.UpdateArrange() end
  function api.Undo_BeginBlock() S.undo_depth = S.undo_depth + 1 end
  function api.Undo_EndBlock(name)
    S.undo_depth = S.undo_depth - 1
    S.undo_blocks[#S.undo_blocks + 1] = name
  end
  function api.GetCursorPosition() return S.cursor end
  function api.GetSet_LoopTimeRange(set, loop, from, to)
    if set then S.time_selection = { from, to } end
    local ts = S.time_selection or { 0, 0 }
    return ts[1], ts[2]
  end
  function api.GetMediaItem_Track(item) return item.track end
  function api.GetMediaTrackInfo_Value(track, key)
    assert(key == "IP_TRACKNUMBER", "the stand-in knows IP_TRACKNUMBER only")
    for i, t in ipairs(S.tracks) do if t == track then return i + 0.0 end end
    return 0.0
  end
  function api.GetSetMediaTrackInfo_String(track, key, value, set)
    assert(key == "P_NAME", "the stand-in knows P_NAME only")
    if set then changed("track name") track.name = value end
    return true, track.name
  end
  function api.GetSelectedTrack(_, i)
    local n = 0
    for _, t in ipairs(S.tracks) do
      if t.selected then
        if n == i then return t end
        n = n + 1
      end
    end
    return nil
  end
  function api.GetLastTouchedTrack() return S.last_touched end
  function api.CountTracks() return #S.tracks end
  function api.GetTrack(_, i) return S.tracks[i + 1] end
  function api.InsertTrackAtIndex(i)
    changed("track")
    assert(i >= 0 and i <= #S.tracks, "InsertTrackAtIndex past the end")
    table.insert(S.tracks, i + 1, { kind = "track", name = "", items = {} })
  end
  function api.AddMediaItemToTrack(track)
    changed("item")
    local item = { kind = "item", track = track, selected = false, takes = {},
                   info = { D_POSITION = 0, D_LENGTH = 0, D_FADEINLEN = 0, D_FADEOUTLEN = 0 } }
    track.items[#track.items + 1] = item
    return item
  end
  function api.AddTakeToMediaItem(item)
    local take = { kind = "take", item = item, midi = false, info = { D_STARTOFFS = 0 }, strings = {} }
    item.takes[#item.takes + 1] = take
    item.active = take
    return take
  end
  function api.SelectAllMediaItems(_, on)
    for _, t in ipairs(S.tracks) do for _, it in ipairs(t.items) do it.selected = on end end
  end
  function api.SetMediaItemSelected(item, on) item.selected = on end

  setmetatable(r, {
    __index = function(_, name)
      local fn = api[name]
      if not fn then error("the stand-in reaper table has no " .. name, 2) end
      return function(...)
        S.calls[#S.calls + 1] = { name = name, args = { ... } }
        return fn(...)
      end
    end,
  })

  -- ---- driving it ----
  -- Run deferred functions until none is left (or `cycles` rounds), advancing the clock by `dt`
  -- each round; `real` also sleeps, for jobs that really run in the background.
  function S.step(cycles, dt, real)
    for _ = 1, cycles or 1000 do
      if #S.deferred == 0 then return true end
      local queue = S.deferred
      S.deferred = {}
      for _, fn in ipairs(queue) do fn() end
      S.clock = S.clock + (dt or 0.05)
      if real then os.execute("sleep " .. (dt or 0.05)) end
    end
    return #S.deferred == 0
  end

  -- Run the commands ExecProcess recorded in "manual" mode.
  function S.run_pending()
    local cmds = S.pending
    S.pending = {}
    for _, cmd in ipairs(cmds) do os.execute(cmd .. " >/dev/null 2>&1") end
    return #cmds
  end

  function S.called(name)
    local list = {}
    for _, c in ipairs(S.calls) do if c.name == name then list[#list + 1] = c.args end end
    return list
  end

  S.reaper = r
  return S
end

return F
