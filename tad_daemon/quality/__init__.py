"""Drum-class realism toolkit: features of a one-shot, a small classifier over them, Fréchet distance."""

from tad_daemon.quality.augment import augment
from tad_daemon.quality.classifier import DrumClassifier
from tad_daemon.quality.features import extract, extract_batch, feature_names
from tad_daemon.quality.frechet import frechet_distance

__all__ = ["DrumClassifier", "augment", "extract", "extract_batch", "feature_names", "frechet_distance"]
