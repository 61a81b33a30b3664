-- @noindex
-- Tells the scripts where the tad-daemon command is, when they cannot find it themselves.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").configure_command()
