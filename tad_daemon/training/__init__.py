"""Training: datasets of one-shots, the training loop, checkpoints, the job queue and its runner."""
