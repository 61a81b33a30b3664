-- @noindex
-- Asks which of the daemon's models to use (the last choice is the default), then inserts a new
-- one-shot from it at the edit cursor on the selected track.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").insert_new(nil)
