"""Run the REAPER scripts' Lua specs on Lua 5.4 (REAPER 7) or 5.3 (REAPER 6) from the `lupa` wheel, so the
tests need nothing but Python.

    python tests/lua_specs.py reaper_scripts/spec         # every *_spec.lua in the folder, busted-style
    TAD_LUA=5.3 python tests/lua_specs.py reaper_scripts/spec   # the same on Lua 5.3
    python tests/lua_specs.py --run FILE ARGS...          # one script, as `lua5.4 FILE ARGS...` runs it

The specs are written for busted's API; this runner implements the part of it they use (describe, it,
pending, before_each, after_each, setup, teardown and busted's assertions) in ~100 lines of Lua, because
busted itself comes from LuaRocks with C modules, which no wheel ships. A `lua5.4` command that runs
scripts the same way is put first on PATH, for the stand-in daemon (an executable Lua script).
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

BUSTED = r"""
local tests, blocks = {}, {}
local root = { name = nil, before = {}, after = {}, setup = {}, teardown = {} }
local current = root

function describe(name, body)
  local block = { name = name, parent = current, before = {}, after = {}, setup = {}, teardown = {} }
  current = block
  body()
  current = block.parent
end
function it(name, body) tests[#tests + 1] = { name = name, body = body, block = current } end
function pending(name) tests[#tests + 1] = { name = name, block = current } end
function before_each(f) table.insert(current.before, f) end
function after_each(f) table.insert(current.after, f) end
function setup(f) table.insert(current.setup, f) end
function teardown(f) table.insert(current.teardown, f) end

local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys, parts = {}, {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = "[" .. show(k) .. "] = " .. show(v[k], depth + 1) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Each check: how many arguments it takes (a custom message may follow), and a test returning ok, what.
local checks = {
  equal = { 2, function(e, a) return e == a, "expected " .. show(e) .. ", got " .. show(a) end },
  same = { 2, function(e, a) return same(e, a), "expected " .. show(e) .. ", got " .. show(a) end },
  near = { 3, function(e, a, tol)
    return math.abs(e - a) <= tol, "expected " .. show(e) .. " +/- " .. tol .. ", got " .. show(a)
  end },
  truthy = { 1, function(v) return v ~= nil and v ~= false, "expected a truthy value, got " .. show(v) end },
  falsy = { 1, function(v) return v == nil or v == false, "expected a falsy value, got " .. show(v) end },
  ["true"] = { 1, function(v) return v == true, "expected true, got " .. show(v) end },
  ["false"] = { 1, function(v) return v == false, "expected false, got " .. show(v) end },
  ["nil"] = { 1, function(v) return v == nil, "expected nil, got " .. show(v) end },
  error = { 2, function(f, want)
    local ok, err = pcall(f)
    if ok then return false, "expected an error, none was raised" end
    if want ~= nil and err ~= want then return false, "expected error " .. show(want) .. ", got " .. show(err) end
    return true, "expected no error, got " .. show(err)
  end },
}

local function checker(positive)
  local t = {}
  for name, c in pairs(checks) do
    t[name] = function(...)
      local ok, what = c[2](...)
      if (ok and true or false) ~= positive then
        local message = select(c[1] + 1, ...)
        if not positive and name ~= "error" then what = "expected the opposite: " .. what end
        error((message and (tostring(message) .. "\n") or "") .. what, 2)
      end
    end
  end
  return t
end

local yes, no = checker(true), checker(false)
assert = setmetatable({
  are = yes, is = yes, are_not = no, is_not = no, has = yes, has_no = no,
  equal = yes.equal, equals = yes.equal, same = yes.same, near = yes.near, truthy = yes.truthy, falsy = yes.falsy,
  is_true = yes["true"], is_false = yes["false"], is_nil = yes["nil"], is_not_nil = no["nil"],
  has_error = yes.error, has_no_error = no.error, has_no_errors = no.error,
}, { __call = function(_, v, message, ...)
  if not v then error(message == nil and "assertion failed!" or message, 2) end
  return v, message, ...
end })

local function chain(block)
  local list = {}
  while block do table.insert(list, 1, block); block = block.parent end
  return list
end

local function full_name(test)
  local parts = {}
  for _, b in ipairs(chain(test.block)) do if b.name then parts[#parts + 1] = b.name end end
  parts[#parts + 1] = test.name
  return table.concat(parts, " ")
end

return function(file)
  assert(loadfile(file))()
  local passed, failed, skipped, started = 0, {}, 0, {}
  for _, test in ipairs(tests) do
    local ok, err = true, nil
    for _, b in ipairs(chain(test.block)) do
      if not started[b] then
        started[b] = true
        for _, f in ipairs(b.setup) do ok, err = xpcall(f, debug.traceback) if not ok then break end end
      end
    end
    if not test.body then
      skipped = skipped + 1
      io.write("- ", full_name(test), " (pending)\n")
    else
      local list = chain(test.block)
      for _, b in ipairs(list) do
        for _, f in ipairs(b.before) do if ok then ok, err = xpcall(f, debug.traceback) end end
      end
      if ok then ok, err = xpcall(test.body, debug.traceback) end
      for i = #list, 1, -1 do
        for _, f in ipairs(list[i].after) do
          local ok2, err2 = xpcall(f, debug.traceback)
          if ok and not ok2 then ok, err = ok2, err2 end
        end
      end
      if ok then
        passed = passed + 1
        io.write("+ ", full_name(test), "\n")
      else
        failed[#failed + 1] = full_name(test) .. "\n" .. tostring(err)
        io.write("x ", full_name(test), "\n")
      end
    end
    io.flush()
  end
  for b in pairs(started) do
    for _, f in ipairs(b.teardown) do
      local ok, err = xpcall(f, debug.traceback)
      if not ok then failed[#failed + 1] = err end
    end
  end
  for _, f in ipairs(failed) do io.write("\nFAILED: ", f, "\n") end
  return passed, #failed, skipped
end
"""

# lupa's Lua is built without popen (it is not in ISO C): the scripts get one that runs the command through
# Python and hands its output back, for reading (all the specs need).
POPEN = r"""
local run = ...
io.popen = function(command, mode)
  if mode and mode:sub(1, 1) ~= "r" then error("io.popen: only reading is supported here", 2) end
  local out, status = run(command)
  local pos = 1
  local pipe = {}
  function pipe:read(format)
    format = tostring(format or "l"):gsub("^%*", "")
    if format:sub(1, 1) == "a" then local s = out:sub(pos); pos = #out + 1; return s end
    if pos > #out then return nil end
    local line, keep = out:match("^([^\n]*)(\n?)", pos)
    pos = pos + #line + #keep
    return format:sub(1, 1) == "L" and line .. keep or line
  end
  function pipe:lines() return function() return self:read("l") end end
  function pipe:close() return status == 0 or nil, "exit", status end
  return pipe
end
"""

RUN = r"""
return function(script, ...)
  arg = { [0] = script, ... }
  return assert(loadfile(script))(...)
end
"""


def _shell(command: bytes) -> tuple[bytes, int]:
    done = subprocess.run(os.fsdecode(command), shell=True, stdout=subprocess.PIPE)
    return done.stdout, done.returncode


LUAS = {"5.3": "lua53", "5.4": "lua54"}  # TAD_LUA: which one (REAPER 6 embeds 5.3, REAPER 7 5.4)


def _runtime():
    import importlib

    version = os.environ.get("TAD_LUA", "5.4")
    if version not in LUAS:
        raise SystemExit(f"TAD_LUA={version}: one of {', '.join(LUAS)}")
    lupa_lua = importlib.import_module(f"lupa.{LUAS[version]}")
    # Lua strings stay bytes: file names need not be UTF-8.
    lua = lupa_lua.LuaRuntime(encoding=None, unpack_returned_tuples=True)
    lua.execute(POPEN, _shell)
    return lua


def lua_command_folder() -> Path:
    """A temporary folder holding a `lua5.4` command that runs scripts with this runner."""
    folder = Path(tempfile.mkdtemp(prefix="tad-lua-"))
    command = folder / "lua5.4"
    command.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))}"
                       ' --run "$@"\n')
    command.chmod(command.stat().st_mode | stat.S_IXUSR)
    return folder


def run_script(script: str, args: list[str]) -> int:
    try:
        _runtime().execute(RUN)(os.fsencode(Path(script).resolve()), *map(os.fsencode, args))
    except Exception as e:  # lupa.LuaError: report as the `lua` command does
        sys.stderr.write(f"lua5.4: {e}\n")
        return 1
    return 0


def run_specs(folders: list[str]) -> int:
    os.environ["PATH"] = str(lua_command_folder()) + os.pathsep + os.environ.get("PATH", "")
    passed = failed = skipped = 0
    for folder in folders:
        for spec in sorted(Path(folder).resolve().rglob("*_spec.lua")):
            print(f"{spec}:", flush=True)
            p, f, s = _runtime().execute(BUSTED)(os.fsencode(spec))
            passed, failed, skipped = passed + p, failed + f, skipped + s
    print(f"\n{passed} successes / {failed} failures / 0 errors / {skipped} pending", flush=True)
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--run":
        sys.exit(run_script(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    sys.exit(run_specs(sys.argv[1:]))
