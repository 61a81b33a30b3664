-- @description tad-daemon: drum one-shots from a running tad-daemon
-- @version 0.3.0
-- @author tad-daemon
-- @about
--   # tad-daemon for REAPER
--   Actions that talk to a running `tad-daemon serve` through its `tad-daemon send` client:
--   replace selected items with a variation or a close relative, repaint the time selection of selected
--   items, morph between two selected items, insert a new kick / snare / hat / perc (or any model, every
--   drum kind of a model of several kinds), a whole kit or a drum's velocity layers at the edit cursor,
--   tune new sounds to a note, and queue a fine-tune on the selected items' files. See docs/daw.md.
-- @provides
--   [main] tad-daemon_Insert new kick at edit cursor.lua
--   [main] tad-daemon_Insert new snare at edit cursor.lua
--   [main] tad-daemon_Insert new hat at edit cursor.lua
--   [main] tad-daemon_Insert new perc at edit cursor.lua
--   [main] tad-daemon_Insert new one-shot at edit cursor (choose model).lua
--   [main] tad-daemon_Replace selected items with a close relative.lua
--   [main] tad-daemon_Repaint time selection of selected items.lua
--   [main] tad-daemon_Morph between the two selected items.lua
--   [main] tad-daemon_Insert new kit at edit cursor.lua
--   [main] tad-daemon_Insert velocity layers at edit cursor (choose model).lua
--   [main] tad-daemon_Set tuning, relative amount and in-betweens.lua
--   [main] tad-daemon_Queue fine-tune on files of selected items.lua
--   [main] tad-daemon_Set variation strength.lua
--   [main] tad-daemon_Set command path.lua
--   tad_common.lua
-- @changelog
--   0.3.0: every drum kind of a model of several kinds; kits of what a beat needs; velocity layers.
--   0.2.0: close relatives, repaint, morph, kits and tuning.
--   0.1.0: first release.

-- Each selected audio item gets a new variation of its own sound (one undo step restores them all).
-- The strength is asked the first time and remembered; "Set variation strength" changes it.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
package.path = dir .. "?.lua;" .. package.path
require("tad_common").replace_selected_with_variation()
