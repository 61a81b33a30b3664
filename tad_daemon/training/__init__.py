"""Training: datasets of one-shots, the training loop, checkpoints, and (later) the job queue and its runner."""
