-- @noindex
-- The note new sounds are tuned to (empty: off), how far a close relative goes, and how many sounds a morph makes.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").configure_settings()
