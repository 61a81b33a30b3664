-- @noindex
-- Sounds between the two selected items (how many: the in-betweens setting) go on a new track below the first one.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").morph_selected()
