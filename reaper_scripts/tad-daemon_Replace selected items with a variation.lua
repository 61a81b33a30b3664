-- @description tad-daemon: drum one-shots from a running tad-daemon
-- @version 0.1.0
-- @author tad-daemon
-- @about
--   # tad-daemon for REAPER
--   Actions that talk to a running `tad-daemon serve` through its `tad-daemon send` client:
--   replace selected items with a variation, insert a new kick / snare / hat / perc (or any model)
--   at the edit cursor, and queue a fine-tune on the selected items' files. See docs/daw.md.
-- @provides
--   [main] tad-daemon_Insert new kick at edit cursor.lua
--   [main] tad-daemon_Insert new snare at edit cursor.lua
--   [main] tad-daemon_Insert new hat at edit cursor.lua
--   [main] tad-daemon_Insert new perc at edit cursor.lua
--   [main] tad-daemon_Insert new one-shot at edit cursor (choose model).lua
--   [main] tad-daemon_Queue fine-tune on files of selected items.lua
--   [main] tad-daemon_Set variation strength.lua
--   [main] tad-daemon_Set command path.lua
--   tad_common.lua
-- @changelog
--   First release.

-- Each selected audio item gets a new variation of its own sound (one undo step restores them all).
-- The strength is asked the first time and remembered; "Set variation strength" changes it.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").replace_selected_with_variation()
