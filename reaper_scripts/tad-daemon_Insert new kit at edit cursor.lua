-- @noindex
-- A kick, snare, hat and perc that belong together, loudness matched, each on a new track at the edit cursor.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").insert_kit()
