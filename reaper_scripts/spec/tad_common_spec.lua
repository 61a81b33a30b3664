-- python tests/lua_specs.py reaper_scripts/spec   (busted-style specs; busted itself runs them too)
local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
local SCRIPTS = HERE .. "/.."
package.path = HERE .. "/?.lua;" .. SCRIPTS .. "/?.lua;" .. package.path

local F = require("fake_reaper")
local D = require("fake_daemon")

-- A fresh stand-in REAPER (global `reaper`, as in REAPER) whose ExtState points at a fake daemon.
local function setup(opts)
  opts = opts or {}
  local S = F.new({ exec_mode = opts.exec_mode })
  _G.reaper = S.reaper
  local fake = D.new(opts.daemon)
  S.ext["tad-daemon/command"] = fake.command
  return S, fake
end

-- Run an action script file as REAPER would, with `reaper` as a global.
local function run_action(file)
  package.loaded["tad_common"] = nil
  dofile(SCRIPTS .. "/" .. file)
end

local tad

local function snare_project(S, n)
  local track = S.add_track("Drums")
  local items = {}
  for i = 1, n or 1 do
    local file = F.temp_dir() .. "/Snare it's \"big\" " .. i .. ".wav"
    F.write_wav(file, 20000)
    local item, take = S.add_item(track, file, { position = i * 2.0, length = 0.4, fadein = 0.005,
      fadeout = 0.12, vol = 0.7, name = "Snare top " .. i, pitch = -2, playrate = 1.0, startoffs = 0.01,
      loop = 1 }) -- "loop source" on: a 0.74 s one-shot in it must not play twice
    items[#items + 1] = { item = item, take = take, file = file }
  end
  return track, items
end

before_each(function()
  package.loaded["tad_common"] = nil
end)

after_each(function()
  F.cleanup()
end)

describe("job files", function()
  it("live in REAPER's resource folder, never in a shared temporary folder", function()
    local S = setup({ exec_mode = "manual" })
    tad = require("tad_common")
    tad.send("/tad/ping", {}, function() end)
    assert.are.equal(1, #S.pending)
    local script = S.pending[1]:match('"(.*)"')
    assert.are.equal(S.resource .. "/Data/tad-daemon/jobs", script:match("^(.*)/[^/]*$"))
  end)
end)

describe("quoting", function()
  it("round-trips spaces, quotes and shell characters through a real POSIX shell", function()
    tad = require("tad_common")
    local nasty = { "/Music/My Kicks/it's \"big\".wav", "$HOME `id` $(id) ;|&<>*?", "", "  two  spaces ",
      "back\\slash", "100% ünïcödé" }
    local quoted = {}
    for i, s in ipairs(nasty) do quoted[i] = tad.quote(s, "linux") end
    local p = io.popen("printf '%s\\n' " .. table.concat(quoted, " "))
    local out = p:read("a")
    p:close()
    assert.are.equal(table.concat(nasty, "\n") .. "\n", out)
  end)

  it("quotes for Windows batch files", function()
    tad = require("tad_common")
    assert.are.equal('"C:\\My Samples\\kick 100%%.wav"', tad.quote("C:\\My Samples\\kick 100%.wav", "windows"))
    assert.are.equal('"C:\\Samples\\\\"', tad.quote("C:\\Samples\\", "windows"))
    assert.are.equal('"a & b | c ^ d"', tad.quote("a & b | c ^ d", "windows"))
    assert.has_error(function() tad.quote('say "hi"', "windows") end)
    assert.has_error(function() tad.quote("two\nlines", "linux") end)
  end)

  it("spells out every argument's OSC type for the client", function()
    tad = require("tad_common")
    assert.are.equal("s:808", tad.typed("808"))
    assert.are.equal("s:-rf", tad.typed("-rf"))
    assert.are.equal("s:", tad.typed(""))
    assert.are.equal("i:-1", tad.typed(-1))
    assert.are.equal("f:0.3", tad.typed(0.3))
    assert.are.equal("f:1.0", tad.typed(1 + 0.0))
  end)

  it("writes job scripts that record the exit code last, through a rename", function()
    tad = require("tad_common")
    local files = { out = "/t/o", err = "/t/e", code = "/t/c" }
    local sh = tad.job_script({ "/x/tad-daemon", "send", "/tad/ping" }, files, "linux")
    assert.truthy(sh:find("'/x/tad%-daemon' 'send' '/tad/ping' > '/t/o' 2> '/t/e'"))
    assert.truthy(sh:find("echo %$%? > '/t/c.tmp'\nmv %-f '/t/c.tmp' '/t/c'\n$"))
    local bat = tad.job_script({ "C:\\tad\\tad-daemon.exe", "send", "/tad/ping" },
      { out = "C:\\T\\o", err = "C:\\T\\e", code = "C:\\T\\c" }, "windows")
    assert.truthy(bat:find('"C:\\tad\\tad%-daemon.exe" "send" "/tad/ping" > "C:\\T\\o" 2> "C:\\T\\e"\r\n', 1))
    assert.truthy(bat:find('echo %%ERRORLEVEL%% > "C:\\T\\c.tmp"\r\nmove /Y "C:\\T\\c.tmp" "C:\\T\\c" > NUL\r\n$'))
  end)
end)

describe("JSON lines", function()
  it("decodes the client's replies", function()
    tad = require("tad_common")
    local v = tad.json_decode('{"address": "/tad/done", "args": ["/tad/vary", "C:\\\\My \\"Kicks\\"\\/a.wav", ' ..
      '"kick", 42, 0.25, -3, 1e2, "\\u00e9\\ud83e\\udd41\\n", true, false, [], {}]}')
    assert.are.equal("/tad/done", v.address)
    assert.are.same({ "/tad/vary", 'C:\\My "Kicks"/a.wav', "kick", 42, 0.25, -3, 100.0, "é🥁\n", true, false, {}, {} },
      v.args)
    assert.are.equal(math.type(v.args[4]), "integer")
    assert.are.equal(math.type(v.args[5]), "float")
  end)

  it("rejects broken JSON and skips lines that are not replies", function()
    tad = require("tad_common")
    assert.has_error(function() tad.json_decode('{"a": [1, 2}') end)
    assert.has_error(function() tad.json_decode('"unterminated') end)
    assert.has_error(function() tad.json_decode('{"a": 1} x') end)
    local replies = tad.parse_replies('warning: something\n{"address": "/tad/done", "args": ["/tad/ping"]}\r\n' ..
      '{"no": "address"}\n{broken\n{"address": "/tad/fail", "args": ["/tad/vary", "busy"]}\n')
    assert.are.same({ { address = "/tad/done", args = { "/tad/ping" } },
      { address = "/tad/fail", args = { "/tad/vary", "busy" } } }, replies)
  end)
end)

describe("finding the command", function()
  it("uses the path set in ExtState, and says so when it is gone", function()
    local S, fake = setup()
    tad = require("tad_common")
    assert.are.equal(fake.command, tad.find_command())
    S.ext["tad-daemon/command"] = "/nowhere/tad-daemon"
    local cmd, why = tad.find_command()
    assert.is_nil(cmd)
    assert.truthy(why:find("/nowhere/tad-daemon", 1, true))
    assert.truthy(why:find("Set command path", 1, true))
  end)

  it("searches ~/.local/bin, the README's venv and PATH", function()
    local S = setup()
    S.ext["tad-daemon/command"] = nil
    tad = require("tad_common")
    local home = os.getenv("HOME")
    local list = tad.candidates()
    local joined = table.concat(list, "\n")
    assert.truthy(joined:find(home .. "/.local/bin/tad-daemon", 1, true))
    assert.truthy(joined:find(home .. "/tad-daemon/.venv/bin/tad-daemon", 1, true))
    assert.truthy(joined:find(S.resource .. "/tad-daemon/.venv/bin/tad-daemon", 1, true))
    for dir in os.getenv("PATH"):gmatch("[^:]+") do
      assert.truthy(joined:find(dir .. "/tad-daemon", 1, true))
    end
  end)

  it("finds it on PATH and explains where it looked when it is nowhere", function()
    local S, fake = setup()
    S.ext["tad-daemon/command"] = nil
    tad = require("tad_common")
    tad.SYSTEM_DIRS.linux = {}
    local saved = os.getenv
    local env = { PATH = "/nonexistent-bin:" .. fake.dir, HOME = "/nonexistent-home" }
    os.getenv = function(k) if k == "PATH" or k == "HOME" then return env[k] end return saved(k) end
    local ok, err = pcall(function()
      assert.are.equal(fake.command, tad.find_command())
      env.PATH = "/nonexistent-bin"
      local cmd, why = tad.find_command()
      assert.is_nil(cmd)
      assert.truthy(why:find("Could not find the tad%-daemon command"))
      assert.truthy(why:find("/nonexistent-home/.local/bin/tad-daemon", 1, true))
      assert.truthy(why:find("Set command path", 1, true))
    end)
    os.getenv = saved
    assert(ok, err)
  end)
end)

describe("replace selected items with a variation", function()
  it("asks the strength once, remembers it, and keeps every item property in one undo block", function()
    local S, fake = setup()
    local _, items = snare_project(S, 1)
    S.inputs = { "0.3" }
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step())
    assert.are.same({}, S.messages)
    assert.are.equal("0.3", S.persisted["tad-daemon/strength"])
    assert.are.same({ "tad-daemon: replace with variation" }, S.undo_blocks)
    assert.are.same({}, S.outside_undo)

    local it = items[1]
    local new = it.take.source.file
    assert.are_not.equal(it.file, new)
    assert.truthy(new:find(fake.samples .. "/snare/", 1, true))
    assert.is_true(reaper.file_exists(new))
    assert.are.same({ D_POSITION = 2.0, D_LENGTH = 0.4, D_FADEINLEN = 0.005, D_FADEOUTLEN = 0.12, D_VOL = 0.7,
      B_LOOPSRC = 0, B_MUTE = 0 }, it.item.info)
    assert.are.same({ D_STARTOFFS = 0.01, D_PITCH = -2, D_PLAYRATE = 1.0, D_VOL = 1 }, it.take.info)
    assert.are.equal("Snare top 1", it.take.strings.P_NAME)

    -- The request: /tad/vary with the guessed model, the file (quotes and all), the strength, a count.
    local vary = fake.calls()[2]
    assert.are.same({ "send", "/tad/vary", "s:snare", "s:" .. it.file, "f:0.3", "i:1", "--json", "--timeout", "60" },
      vary)

    -- Second run: no dialog (S.inputs is empty: a dialog would fail the test), same strength.
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step())
    assert.are.equal("f:0.3", fake.calls()[4][5])
    assert.are.equal(2, #S.undo_blocks)
  end)

  it("varies several items: one request per file, each item its own new file", function()
    local S, fake = setup()
    local track, items = snare_project(S, 2)
    local kick = F.temp_dir() .. "/BD 01.wav"
    F.write_wav(kick, 10000)
    local k_item, k_take = S.add_item(track, kick, { name = "" })
    S.add_item(track, items[1].file, { name = "Snare top 1 copy" }) -- same file as the first snare
    S.ext["tad-daemon/strength"] = "0.6"
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step())
    assert.are.same({ "tad-daemon: replace with variation" }, S.undo_blocks)
    local calls = fake.calls()
    assert.are.equal(1 + 3, #calls) -- the model list, then three /tad/vary (one with a count of 2)
    local counts = {}
    for i = 2, 4 do counts[calls[i][4]] = calls[i][6] end
    assert.are.same({ ["s:" .. items[1].file] = "i:2", ["s:" .. items[2].file] = "i:1", ["s:" .. kick] = "i:1" }, counts)
    assert.truthy(k_take.source.file:find("/kick/", 1, true))
    local seen = {}
    for _, it in ipairs(S.selected_items()) do
      local f = it.active.source.file
      assert.is_nil(seen[f])
      seen[f] = true
    end
    assert.is_not_nil(k_item)
  end)

  it("never blocks: ExecProcess returns at once and defer polls until the job has finished", function()
    local S = setup({ exec_mode = "manual" })
    local _, items = snare_project(S, 1)
    S.ext["tad-daemon/strength"] = "0.5"
    run_action("tad-daemon_Replace selected items with a variation.lua")
    local exec = S.called("ExecProcess")
    assert.are.equal(1, #exec)
    assert.are.equal(-1, exec[1][2])
    assert.truthy(exec[1][1]:find("^/bin/sh \".*%.sh\"$"))
    -- Nothing has run yet: REAPER keeps going, the script polls.
    assert.is_false(S.step(20))
    assert.are.equal(1, #S.deferred)
    assert.are.equal(items[1].file, items[1].take.source.file)
    -- The client finishes: the next poll reads it and the script moves on to the variation.
    assert.are.equal(1, S.run_pending())
    assert.is_false(S.step(3))
    assert.are.equal(2, #S.called("ExecProcess"))
    assert.are.same({}, S.undo_blocks)
    S.run_pending()
    assert.is_true(S.step())
    assert.are.same({ "tad-daemon: replace with variation" }, S.undo_blocks)
    assert.are_not.equal(items[1].file, items[1].take.source.file)
  end)

  it("takes ExecProcess's nil as the last word only when no job shows up", function()
    local S = F.new({ exec_returns = false })
    _G.reaper = S.reaper
    S.ext["tad-daemon/command"] = D.new().command
    tad = require("tad_common")
    local got
    tad.send("/tad/ping", {}, function(result) got = result end)
    assert.is_true(S.step(100, 0.1))
    assert.are.equal(0, got.code) -- it ran after all
    local none = F.new({ exec_returns = false, exec_mode = "none" })
    _G.reaper = none.reaper
    none.ext["tad-daemon/command"] = D.new().command
    got = nil
    tad.send("/tad/ping", {}, function(result) got = result end)
    assert.is_true(none.step(200, 0.1)) -- 5 seconds' grace, not the client's minutes
    assert.truthy(got and got.error and got.error:find("could not start", 1, true))
  end)

  it("says clearly that the daemon is not running, and changes nothing", function()
    local S = setup({ daemon = { down = true } })
    local _, items = snare_project(S, 1)
    S.ext["tad-daemon/strength"] = "0.5"
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step())
    assert.are.equal(1, #S.messages)
    assert.truthy(S.messages[1]:find("not running", 1, true))
    assert.truthy(S.messages[1]:find("tad-daemon serve", 1, true))
    assert.are.same({}, S.undo_blocks)
    assert.are.equal(items[1].file, items[1].take.source.file)
  end)

  it("shows the daemon's /fail message", function()
    local S = setup({ daemon = { ["/tad/vary"] = { fail = "unknown model 'snare'" } } })
    local _, items = snare_project(S, 1)
    S.ext["tad-daemon/strength"] = "0.5"
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step())
    assert.are.equal(1, #S.messages)
    assert.truthy(S.messages[1]:find("0 of 1 item", 1, true))
    assert.truthy(S.messages[1]:find("unknown model 'snare'", 1, true))
    assert.are.same({}, S.undo_blocks)
    assert.are.equal(items[1].file, items[1].take.source.file)
  end)

  it("gives up with a message when the client never finishes", function()
    local S = setup({ exec_mode = "manual" })
    snare_project(S, 1)
    S.ext["tad-daemon/strength"] = "0.5"
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.is_true(S.step(2000, 1.0))
    assert.are.equal(1, #S.messages)
    assert.truthy(S.messages[1]:find("did not finish within 35 seconds", 1, true))
  end)

  it("asks for a selection first, and accepts only a strength from 0 to 1", function()
    local S = setup()
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.truthy(S.messages[1]:find("Select one or more audio items", 1, true))
    snare_project(S, 1)
    S.inputs = { "1.5", "0,25" }
    run_action("tad-daemon_Replace selected items with a variation.lua")
    assert.truthy(S.messages[2]:find("from 0 to 1", 1, true))
    assert.are.equal("0.25", S.persisted["tad-daemon/strength"])
    assert.is_true(S.step())
    S.inputs = { false }
    run_action("tad-daemon_Set variation strength.lua")
    assert.are.equal("0.25", S.last_dialog.defaults)
    assert.are.equal("0.25", S.persisted["tad-daemon/strength"])
  end)
end)

describe("choosing the model to vary with", function()
  it("guesses from take and file names", function()
    setup()
    tad = require("tad_common")
    local models = { "kick", "snare", "hat", "perc", "my-kicks" }
    assert.are.equal("kick", tad.model_for("BD_01.wav", models))
    assert.are.equal("kick", tad.model_for("Big Kicks 3.wav", models))
    assert.are.equal("snare", tad.model_for("Clap 2.wav", models))
    assert.are.equal("hat", tad.model_for("open hihat.aif", models))
    assert.are.equal("hat", tad.model_for("HH closed.wav", models))
    assert.are.equal("perc", tad.model_for("Conga hi.wav", models))
    assert.are.equal("perc", tad.model_for("something.wav", models))
    assert.are.equal("my-kicks", tad.model_for("loop my-kicks 4.wav", models))
    assert.are.equal("perc", tad.model_for("shadow.wav", models)) -- "hat" inside a word is not a hat
    reaper.SetExtState("tad-daemon", "vary_model", "snare", true)
    assert.are.equal("snare", tad.model_for("BD_01.wav", models))
    reaper.SetExtState("tad-daemon", "vary_model", "auto", true)
    -- With a model of several kinds, each kind by its own words; the first bundled names where it has none.
    local kinds = { "kick", "snare", "clap", "rim", "closed-hat", "open-hat", "tom", "crash", "ride", "shaker" }
    for name, want in pairs({ ["Clap 2.wav"] = "clap", ["open hihat.aif"] = "open-hat", ["OH 3.wav"] = "open-hat",
      ["HH closed.wav"] = "closed-hat", ["Floor Tom.wav"] = "tom", ["Crash 16in.wav"] = "crash",
      ["Ride Bell.wav"] = "ride", ["Side stick.wav"] = "rim", ["maracas.wav"] = "shaker", ["BD_01.wav"] = "kick" }) do
      assert.are.equal(want, tad.model_for(name, kinds), name)
    end
  end)
end)

describe("insert a new one-shot at the edit cursor", function()
  it("inserts a new kick on the selected track where the cursor was, in one undo block", function()
    local S, fake = setup()
    S.add_track("One")
    local track = S.add_track("Two")
    track.selected = true
    S.cursor = 12.5
    run_action("tad-daemon_Insert new kick at edit cursor.lua")
    S.cursor = 99 -- moving the cursor while the daemon works does not move the new item
    assert.is_true(S.step())
    assert.are.same({}, S.messages)
    assert.are.same({ "tad-daemon: insert new kick" }, S.undo_blocks)
    assert.are.same({}, S.outside_undo)
    assert.are.equal(1, #track.items)
    local item = track.items[1]
    assert.are.equal(12.5, item.info.D_POSITION)
    assert.are.near(32768 / 44100, item.info.D_LENGTH, 1e-9)
    assert.truthy(item.active.source.file:find(fake.samples .. "/kick/", 1, true))
    assert.are.equal(item.active.strings.P_NAME, item.active.source.file:match("[^/]+$"))
    assert.is_true(item.selected)
    assert.are.same({ "send", "/tad/generate", "s:kick", "i:1", "--json", "--timeout", "60" }, fake.calls()[1])
  end)

  for _, model in ipairs({ "snare", "hat", "perc" }) do
    it("has an action for " .. model, function()
      local S, fake = setup()
      run_action("tad-daemon_Insert new " .. model .. " at edit cursor.lua")
      assert.is_true(S.step())
      assert.are.equal("s:" .. model, fake.calls()[1][3])
      assert.are.equal(1, #S.tracks) -- no track yet: one is made
    end)
  end

  it("asks which model, offering the daemon's list, and remembers the choice", function()
    local S, fake = setup({ daemon = { models = { "kick", "snare", "my-kicks" } } })
    S.add_track("Drums").selected = true
    S.inputs = { " my-kicks " }
    run_action("tad-daemon_Insert new one-shot at edit cursor (choose model).lua")
    assert.is_true(S.step())
    assert.truthy(S.last_dialog.captions:find("kick / snare / my-kicks", 1, true))
    assert.are.equal("s:my-kicks", fake.calls()[2][3])
    assert.are.equal("my-kicks", S.persisted["tad-daemon/insert_model"])
    S.inputs = { "tom" }
    run_action("tad-daemon_Insert new one-shot at edit cursor (choose model).lua")
    assert.is_true(S.step())
    assert.are.equal("my-kicks", S.last_dialog.defaults)
    assert.truthy(S.messages[1]:find("no model named \"tom\"", 1, true))
  end)

  it("changes nothing when REAPER cannot read the new file, and leaves no undo block open", function()
    local S = setup()
    local track = S.add_track("Drums")
    track.selected = true
    local tad_common = require("tad_common")
    assert.is_nil(tad_common.insert_file(F.temp_dir() .. "/gone.wav", 1.0, "tad-daemon: insert new kick"))
    assert.are.equal(0, S.undo_depth)
    assert.are.same({}, S.undo_blocks)
    assert.are.equal(0, #track.items)
  end)

  it("reports a daemon that is not running", function()
    local S = setup({ daemon = { down = true } })
    run_action("tad-daemon_Insert new snare at edit cursor.lua")
    assert.is_true(S.step())
    assert.truthy(S.messages[1]:find("not running", 1, true))
    assert.are.same({}, S.undo_blocks)
  end)
end)

-- A WAV as tad-daemon writes it: its generation metadata as JSON in a LIST/INFO comment.
local function made_wav(path, meta)
  F.write_wav(path, 20000)
  local comment = meta .. "\0"
  local info = "INFO" .. "ICMT" .. string.pack("<I4", #comment) .. comment
  F.write(path, F.read(path) .. "LIST" .. string.pack("<I4", #info) .. info)
end

describe("settings: tuning, relative amount, in-betweens", function()
  it("are asked together, checked, remembered, and the note goes with new sounds", function()
    local S, fake = setup()
    S.inputs = { "H2,0.2,4", "c#1,0.2,4" }
    run_action("tad-daemon_Set tuning, relative amount and in-betweens.lua")
    assert.truthy(S.messages[1]:find("a note such as A1", 1, true))
    assert.are.same({ "C#1", "0.2", "4" },
      { S.persisted["tad-daemon/tune"], S.persisted["tad-daemon/amount"], S.persisted["tad-daemon/inbetweens"] })
    S.add_track("Drums").selected = true
    run_action("tad-daemon_Insert new kick at edit cursor.lua")
    assert.is_true(S.step())
    assert.are.same({ "send", "/tad/generate", "s:kick", "i:1", "s:tune=C#1", "--json", "--timeout", "60" },
      fake.calls()[1])
    tad = require("tad_common")
    assert.are.equal("", tad.parse_note(" off "))
    assert.is_nil(tad.parse_note("A9"))
    assert.are.equal("Eb-1", tad.parse_note("eb-1"))
  end)
end)

describe("replace selected items with a close relative", function()
  it("tweaks each sound tad-daemon made from its seed, and says which items it cannot", function()
    local S, fake = setup()
    local track = S.add_track("Drums")
    local made = F.temp_dir() .. "/kick_s77.wav"
    made_wav(made, '{"kind": "generate", "model": "kick", "seed": 77, "software": "tad-daemon 0.1.0"}')
    local _, take = S.add_item(track, made, { name = "" })
    local varied = F.temp_dir() .. "/kick_var.wav"
    made_wav(varied, '{"kind": "vary", "model": "kick", "seed": 5, "software": "tad-daemon 0.1.0"}')
    local _, other = S.add_item(track, varied, { name = "" })
    S.ext["tad-daemon/amount"] = "0.1"
    run_action("tad-daemon_Replace selected items with a close relative.lua")
    assert.is_true(S.step())
    assert.are.same({ "send", "/tad/tweak", "s:kick", "i:77", "f:0.1", "i:1", "--json", "--timeout", "60" },
      fake.calls()[1])
    assert.truthy(take.source.file:find("/kick/", 1, true))
    assert.are.equal(varied, other.source.file)
    assert.truthy(S.messages[1]:find("1 of 2 item(s) replaced", 1, true))
    assert.truthy(S.messages[1]:find("kick_var.wav: not a new sound", 1, true))
    assert.are.same({ "tad-daemon: replace with a close relative" }, S.undo_blocks)
  end)

  it("asks for relatives of a relative with its turns, not for its siblings", function()
    local S, fake = setup()
    local track = S.add_track("Drums")
    local made = F.temp_dir() .. "/kick_tweak.wav"
    made_wav(made, '{"amount": 0.1, "kind": "tweak", "model": "kick", "seed": 77, "software": "tad-daemon 0.1.0", ' ..
      '"turns": "78:0.1,1234567:0.05", "variant": 0}')
    S.add_item(track, made, { name = "" })
    S.ext["tad-daemon/amount"] = "0.1"
    run_action("tad-daemon_Replace selected items with a close relative.lua")
    assert.is_true(S.step())
    assert.are.same({ "send", "/tad/tweak", "s:kick", "i:77", "f:0.1", "i:1", "s:turns=78:0.1,1234567:0.05", "--json",
      "--timeout", "60" }, fake.calls()[1])
  end)

  it("changes nothing when no selected item was made by tad-daemon", function()
    local S, fake = setup()
    snare_project(S, 1)
    run_action("tad-daemon_Replace selected items with a close relative.lua")
    assert.is_true(S.step())
    assert.are.same({}, fake.calls())
    assert.truthy(S.messages[1]:find("not a new sound made by tad-daemon", 1, true))
  end)
end)

describe("repaint the time selection of selected items", function()
  it("sends the part under the time selection in seconds of the file, and replaces the item", function()
    local S, fake = setup()
    local _, items = snare_project(S, 1) -- at 2.0 s, 0.4 s long, 0.01 s into its file
    reaper.GetSet_LoopTimeRange(true, false, 2.1, 2.3, false)
    run_action("tad-daemon_Repaint time selection of selected items.lua")
    assert.is_true(S.step())
    local call = fake.calls()[2]
    assert.are.same({ "send", "/tad/repaint", "s:snare", "s:" .. items[1].file }, { table.unpack(call, 1, 4) })
    assert.are.near(0.11, tonumber(call[5]:sub(3)), 1e-9)
    assert.are.near(0.31, tonumber(call[6]:sub(3)), 1e-9)
    assert.truthy(items[1].take.source.file:find("_repaint.wav", 1, true))
    assert.are.same({ "tad-daemon: repaint time selection" }, S.undo_blocks)
  end)

  it("asks for a time selection first", function()
    local S, fake = setup()
    snare_project(S, 1)
    run_action("tad-daemon_Repaint time selection of selected items.lua")
    assert.is_true(S.step())
    assert.truthy(S.messages[1]:find("time selection", 1, true))
    assert.are.same({}, fake.calls())
  end)
end)

describe("morph between the two selected items", function()
  it("puts the in-betweens on a new track below the first item's, spread between the two", function()
    local S, fake = setup()
    local _, items = snare_project(S, 2) -- at 2.0 and 4.0 s
    S.add_track("Below")
    S.ext["tad-daemon/inbetweens"] = "2"
    run_action("tad-daemon_Morph between the two selected items.lua")
    assert.is_true(S.step())
    assert.are.same({ "send", "/tad/morph", "s:snare", "s:" .. items[1].file, "s:" .. items[2].file, "f:0.5", "i:2",
      "--json", "--timeout", "120" }, fake.calls()[2])
    assert.are.same({ "Drums", "morph Snare it's \"big\" 1.wav > Snare it's \"big\" 2.wav", "Below" },
      { S.tracks[1].name, S.tracks[2].name, S.tracks[3].name })
    local new = S.tracks[2].items
    assert.are.equal(2, #new)
    assert.are.near(2.0 + 0.74304, new[1].info.D_POSITION, 1e-3) -- (4 - 2) / 3 is less than a one-shot
    assert.are.same({ "tad-daemon: morph" }, S.undo_blocks)
    assert.are.same({}, S.outside_undo)
  end)

  it("puts them at the end of the project when the first item was deleted meanwhile", function()
    local S = setup()
    local _, items = snare_project(S, 2)
    S.add_track("Below")
    run_action("tad-daemon_Morph between the two selected items.lua")
    items[1].item.deleted = true -- while the daemon encodes the two files
    assert.is_true(S.step())
    assert.are.same({ "Drums", "Below" }, { S.tracks[1].name, S.tracks[2].name })
    assert.truthy(S.tracks[3].name:find("^morph "))
    assert.are.same({ "tad-daemon: morph" }, S.undo_blocks)
  end)

  it("needs exactly two items", function()
    local S, fake = setup()
    snare_project(S, 3)
    run_action("tad-daemon_Morph between the two selected items.lua")
    assert.truthy(S.messages[1]:find("exactly two", 1, true))
    assert.are.same({}, fake.calls())
  end)
end)

describe("insert a new kit at the edit cursor", function()
  it("asks for what a beat needs, those the daemon has, and puts each on its own new track", function()
    local S, fake = setup({ daemon = { models = { "snare", "kick", "clap", "hat", "ride" } } })
    S.add_track("Existing")
    S.cursor = 8.0
    run_action("tad-daemon_Insert new kit at edit cursor.lua")
    assert.is_true(S.step())
    assert.are.same({ "send", "/tad/kit", "s:kick,snare,hat,clap", "i:-1", "--json", "--timeout", "60" },
      fake.calls()[2])
    assert.are.same({ "Existing", "kick", "snare", "hat", "clap" },
      { S.tracks[1].name, S.tracks[2].name, S.tracks[3].name, S.tracks[4].name, S.tracks[5].name })
    for i = 2, 5 do
      assert.are.equal(8.0, S.tracks[i].items[1].info.D_POSITION)
      assert.truthy(S.tracks[i].items[1].active.source.file:find("/kits/", 1, true))
    end
    assert.are.same({ "tad-daemon: insert new kit" }, S.undo_blocks)
  end)

  it("takes a model of several kinds' names for each piece first", function()
    setup()
    tad = require("tad_common")
    assert.are.same({ "kick", "snare", "closed-hat", "open-hat", "clap", "tom" },
      tad.kit_names({ "hat", "perc", "kick", "snare", "closed-hat", "open-hat", "clap", "tom", "ride" }))
  end)

  it("says so when the daemon has no drum models", function()
    local S = setup({ daemon = { models = { "ride" } } })
    run_action("tad-daemon_Insert new kit at edit cursor.lua")
    assert.is_true(S.step())
    assert.truthy(S.messages[1]:find("no kick, snare, hat, clap or tom", 1, true))
    assert.are.same({}, S.undo_blocks)
  end)
end)

describe("insert velocity layers at the edit cursor", function()
  it("asks model, layers and round robins, and puts the set on one new track from the cursor on", function()
    local S, fake = setup({ daemon = { models = { "kick", "snare" } } })
    S.cursor = 4.0
    S.inputs = { "snare,3,2" }
    run_action("tad-daemon_Insert velocity layers at edit cursor (choose model).lua")
    assert.is_true(S.step())
    assert.are.same({ "send", "/tad/layers", "s:snare", "i:3", "i:2", "i:-1", "--json", "--timeout", "120" },
      fake.calls()[2])
    local track = S.tracks[#S.tracks]
    assert.are.equal("snare layers", track.name)
    assert.are.equal(6, #track.items)
    assert.are.equal(4.0, track.items[1].info.D_POSITION)
    assert.truthy(track.items[6].active.source.file:find("snare_v127_rr2", 1, true))
    local length = require("tad_common").SAMPLE_LENGTH
    assert.is_true(track.items[2].info.D_POSITION > track.items[1].info.D_POSITION + length)
    assert.are.same({ "tad-daemon: insert velocity layers" }, S.undo_blocks)
    assert.are.equal("snare", S.persisted["tad-daemon/layers_model"])
  end)

  it("refuses an unknown model or counts out of range, changing nothing", function()
    local S, fake = setup({ daemon = { models = { "kick" } } })
    S.inputs = { "cowbell,4,1" }
    run_action("tad-daemon_Insert velocity layers at edit cursor (choose model).lua")
    assert.is_true(S.step())
    assert.truthy(S.messages[1]:find("no model named \"cowbell\"", 1, true))
    S.inputs = { "kick,40,1" }
    run_action("tad-daemon_Insert velocity layers at edit cursor (choose model).lua")
    assert.is_true(S.step())
    assert.truthy(S.messages[2]:find("from 1 to 16", 1, true))
    assert.are.same({}, S.undo_blocks)
    for _, call in ipairs(fake.calls()) do assert.are_not.equal("/tad/layers", call[2]) end
  end)
end)

describe("queue a fine-tune on the selected items' files", function()
  it("copies the files into a dataset folder and queues /tad/train", function()
    local S, fake = setup()
    local _, items = snare_project(S, 2)
    S.inputs = { "my-snares,snare,y" }
    run_action("tad-daemon_Queue fine-tune on files of selected items.lua")
    assert.is_true(S.step())
    local dir = S.resource .. "/Data/tad-daemon/datasets/my-snares"
    for _, it in ipairs(items) do
      assert.are.equal(F.read(it.file), F.read(dir .. "/" .. it.file:match("[^/]+$")))
    end
    assert.are.same({ "send", "/tad/train", "s:my-snares", "s:" .. dir, "s:snare", "i:0", "i:1", "--json", "--timeout",
      "10" }, fake.calls()[1])
    assert.truthy(S.messages[1]:find("job job-7", 1, true))
    assert.truthy(S.messages[1]:find("2 file(s)", 1, true))
  end)

  it("refuses a name the daemon would refuse", function()
    local S, fake = setup()
    snare_project(S, 1)
    S.inputs = { "../evil,snare,n" }
    run_action("tad-daemon_Queue fine-tune on files of selected items.lua")
    assert.is_true(S.step())
    assert.truthy(S.messages[1]:find("cannot be a model name", 1, true))
    assert.are.same({}, fake.calls())
  end)
end)

describe("command path action", function()
  it("stores an existing path and clears it when left empty", function()
    local S, fake = setup()
    S.inputs = { fake.command }
    run_action("tad-daemon_Set command path.lua")
    assert.are.equal(fake.command, S.persisted["tad-daemon/command"])
    S.inputs = { "/no/such/file" }
    run_action("tad-daemon_Set command path.lua")
    assert.truthy(S.messages[1]:find("No such file", 1, true))
    S.inputs = { "" }
    run_action("tad-daemon_Set command path.lua")
    assert.is_nil(S.ext["tad-daemon/command"])
  end)
end)
