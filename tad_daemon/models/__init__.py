"""Model presets, model files on disk, and the registry of models found in the models folders."""
