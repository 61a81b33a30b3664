-- @noindex
-- Each selected item made by tad-daemon gets a close relative of its own sound (its seed, nudged by the relative amount); one undo step restores them all.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").replace_selected_with_relative()
