"""Sound in (any file to the models' format), post-processing, and sound out (atomic WAV writes)."""
