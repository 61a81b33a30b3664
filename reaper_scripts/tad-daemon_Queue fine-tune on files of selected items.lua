-- @noindex
-- Copies the selected items' files into a dataset folder and queues a fine-tune on it
-- (asks for the new model's name, the model to start from, and whether to start now).
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").queue_finetune()
