-- @noindex
-- Under the time selection, each selected item's sound is remade by its model and the rest kept (one undo step).
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").repaint_time_selection()
