-- @noindex
-- A new hat one-shot from the daemon, as an item at the edit cursor on the selected track.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").insert_new("hat")
