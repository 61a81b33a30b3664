-- @noindex
-- Changes the strength "Replace selected items with a variation" uses (0 = same sound, 1 = new sound).
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").strength(true)
