-- @noindex
-- One drum as a sampler instrument: velocity layers with round-robin takes of a model, on a new track at the edit cursor.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").insert_layers()
