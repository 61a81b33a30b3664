"""The daemon behind `tad-daemon serve`: an OSC server, one worker that owns the models, a ready pool of
one-shots, and a watcher on the models folder."""
