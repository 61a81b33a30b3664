-- Run by tests/test_daw_real_daemon.py against a real `tad-daemon serve`: TAD_DAEMON_COMMAND is a
-- wrapper for the real command, TAD_SAMPLES the daemon's sample folder, TAD_SOURCE a drum hit to vary.
local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
package.path = HERE .. "/../spec/?.lua;" .. HERE .. "/../?.lua;" .. package.path

local F = require("fake_reaper")

-- The header of a PCM WAV: channels, rate, bits and frames.
local function wav_format(path)
  local d = assert(F.read(path), "cannot read " .. path)
  assert(d:sub(1, 4) == "RIFF" and d:sub(9, 12) == "WAVE", "not a WAV file: " .. path)
  local pos, fmt, frames = 13, nil, nil
  while pos + 8 <= #d do
    local id, n = d:sub(pos, pos + 3), string.unpack("<I4", d, pos + 4)
    if id == "fmt " then
      local _, channels, rate, _, block, bits = string.unpack("<I2I2I4I4I2I2", d, pos + 8)
      fmt = { channels = channels, rate = rate, bits = bits, block = block }
    elseif id == "data" then
      frames = n
    end
    pos = pos + 8 + n + (n % 2)
  end
  fmt.frames = frames // fmt.block
  return fmt
end

describe("replace with variation against a running daemon", function()
  it("points the item's take at a new valid WAV in the sample folder, in one undo block", function()
    local command, samples, source = os.getenv("TAD_DAEMON_COMMAND"), os.getenv("TAD_SAMPLES"), os.getenv("TAD_SOURCE")
    assert(command and samples and source, "run this through tests/test_daw_real_daemon.py")
    local S = F.new({ exec_mode = "background" })
    _G.reaper = S.reaper
    S.ext["tad-daemon/command"] = command
    S.ext["tad-daemon/strength"] = "0.4"
    local track = S.add_track("Drums")
    local item, take = S.add_item(track, source, { position = 4.0, length = 0.5, fadein = 0.002, fadeout = 0.2,
      name = "Snare 1" })
    local second_item, second_take = S.add_item(track, source, { position = 6.0, length = 0.5, name = "Snare 2" })

    package.loaded["tad_common"] = nil
    dofile(HERE .. "/../tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step(2400, 0.05, true), "the daemon did not answer within two minutes")

    assert.are.same({}, S.messages)
    assert.are.same({ "tad-daemon: replace with variation" }, S.undo_blocks)
    assert.are.same({}, S.outside_undo)
    local seen = {}
    for _, t in ipairs({ take, second_take }) do
      local path = t.source.file
      assert.are_not.equal(source, path)
      assert.are.equal(samples .. "/", path:sub(1, #samples + 1))
      assert.is_nil(seen[path])
      seen[path] = true
      local fmt = wav_format(path)
      assert.are.same({ channels = 2, rate = 44100, bits = 24, block = 6, frames = 32768 }, fmt)
    end
    assert.are.same({ D_POSITION = 4.0, D_LENGTH = 0.5, D_FADEINLEN = 0.002, D_FADEOUTLEN = 0.2, D_VOL = 1,
      B_LOOPSRC = 0, B_MUTE = 0 }, item.info)
    assert.are.equal("Snare 1", take.strings.P_NAME)
    assert.are.equal(6.0, second_item.info.D_POSITION)
  end)
end)

describe("the newer actions against a running daemon", function()
  it("tune, close relative, repaint, morph and kit each make valid files the items then play", function()
    local command, samples = os.getenv("TAD_DAEMON_COMMAND"), os.getenv("TAD_SAMPLES")
    assert(command and samples, "run this through tests/test_daw_real_daemon.py")
    local S = F.new({ exec_mode = "background" })
    _G.reaper = S.reaper
    S.ext["tad-daemon/command"] = command
    S.ext["tad-daemon/tune"] = "A1"
    S.ext["tad-daemon/inbetweens"] = "2"
    local function action(file)
      package.loaded["tad_common"] = nil
      dofile(HERE .. "/../" .. file)
      assert.is_true(S.step(2400, 0.05, true), file .. ": the daemon did not answer within two minutes")
      assert.are.same({}, S.messages)
    end
    local function in_samples(path)
      assert.are.equal(samples .. "/", path:sub(1, #samples + 1))
      assert.are.same({ channels = 2, rate = 44100, bits = 24, block = 6, frames = 32768 }, wav_format(path))
    end
    local track = S.add_track("Drums")
    track.selected = true
    S.cursor = 1.0
    action("tad-daemon_Insert new kick at edit cursor.lua")
    local first = track.items[1]
    in_samples(first.active.source.file)
    assert.truthy(F.read(first.active.source.file):find('"note": "A1"', 1, true)) -- tuned, and says so

    action("tad-daemon_Replace selected items with a close relative.lua")
    local relative = first.active.source.file
    in_samples(relative)
    assert.truthy(relative:find("_kick_tweak_s", 1, true))

    reaper.GetSet_LoopTimeRange(true, false, 1.1, 1.5, false)
    action("tad-daemon_Repaint time selection of selected items.lua")
    in_samples(first.active.source.file)
    assert.truthy(first.active.source.file:find("_kick_repaint_s", 1, true))

    S.cursor = 3.0
    action("tad-daemon_Insert new kick at edit cursor.lua")
    first.selected = true -- both kicks
    action("tad-daemon_Morph between the two selected items.lua")
    local morph_track = S.tracks[2]
    assert.are.equal(2, #morph_track.items)
    for _, it in ipairs(morph_track.items) do in_samples(it.active.source.file) end

    action("tad-daemon_Insert new kit at edit cursor.lua")
    local names = {}
    for i = 3, #S.tracks do
      names[#names + 1] = S.tracks[i].name
      in_samples(S.tracks[i].items[1].active.source.file)
    end
    assert.are.same({ "kick", "snare", "hat", "perc" }, names)
  end)
end)
