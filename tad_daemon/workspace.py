"""What a configuration points at: the models folders, the sample folder and the post-processing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tad_daemon.audio.folder import SampleFolder
from tad_daemon.audio.post import PostProcess, match_loudness, postprocess
from tad_daemon.audio.wav import remove_stale_temp_files, remove_temp_folder
from tad_daemon.config import Config
from tad_daemon.engine import Engine
from tad_daemon.limits import SILENT_PEAK
from tad_daemon.models.registry import ModelEntry, model_folders, scan
from tad_daemon.oneshot import OneShot, velocity_db


class BadOutput(ValueError):
    """A one-shot no producer wants written: what a broken model makes."""


def check_output(shot: OneShot) -> None:
    """Refuse a non-finite or silent output with the reason: a file of silence must never look like success."""
    if not np.isfinite(shot.audio).all():
        raise BadOutput(f"model {shot.model} made a non-finite output (NaN or inf): its weights are broken")
    peak = float(np.abs(shot.audio).max())
    if peak < SILENT_PEAK:
        raise BadOutput(f"model {shot.model} made a silent output (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")


def post_settings(cfg: Config, enabled: bool = True) -> PostProcess:
    if not enabled:
        return PostProcess.none()
    return PostProcess(clicks=cfg["post.clicks"], floor=cfg["post.floor"], dc=cfg["post.dc"], tail=cfg["post.tail"],
                       normalize=cfg["post.normalize"], peak_db=cfg["post.peak_db"],
                       loudness_lufs=cfg["post.loudness_lufs"])


class Workspace:
    def __init__(self, cfg: Config, post: PostProcess | None = None, out: str | Path | None = None):
        self.cfg = cfg
        self.models_dir = cfg.path("paths.models")
        self.post = post or post_settings(cfg)
        self.samples = SampleFolder(out or cfg.path("paths.samples"), bits=cfg["generate.bits"],
                                    per_model=out is None)
        remove_stale_temp_files(self.samples.root)

    def close(self) -> None:
        """Leave nothing of ours in the sample folder: its temporary folder goes when it is empty."""
        remove_temp_folder(self.samples.root)

    def scan(self) -> tuple[dict[str, ModelEntry], list[str]]:
        return scan(model_folders(self.models_dir, self.cfg["models.bundled"]))

    def make_engine(self) -> Engine:
        threads = self.cfg["device.threads"] or None
        return Engine(self.cfg["device.device"], self.cfg["device.precision"], threads,
                      backend=self.cfg["device.backend"], cache_dir=self.cfg.path("paths.cache") / "onnx",
                      steps=self.cfg["generate.steps"] or None, sampler=self.cfg["generate.sampler"] or None,
                      cuda_graphs=self.cfg["device.cuda_graphs"])

    def process(self, shot: OneShot, post: PostProcess | None = None) -> tuple[np.ndarray, dict]:
        """The post-processed audio (with `post`, default: the configured settings) and the file's metadata."""
        check_output(shot)
        post = post or self.post
        audio = postprocess(shot.audio, post, shot.sample_rate)
        meta = shot.metadata()
        meta["post"] = {"clicks": post.clicks, "floor": post.floor, "dc": post.dc, "tail": post.tail,
                        "normalize": post.normalize}
        return audio, meta

    def finish(self, shots: list[OneShot], post: bool = True, together: bool = False) -> list[tuple[np.ndarray, dict]]:
        """Each one-shot post-processed (`post`: the configured settings, else none), a set of them (`together`:
        a kit, a layer set) brought to one loudness (that of the quietest at the peak level post-processing
        gives: they sit together in a drum rack as they are), then each set to its velocity's level."""
        done = [self.process(shot, None if post else PostProcess.none()) for shot in shots]
        if together:
            ceiling = self.post.peak_db if post else 0.0
            matched, lufs = match_loudness([audio for audio, _ in done], shots[0].sample_rate, ceiling)
            for (_, meta), level in zip(done, lufs):
                meta["set_loudness_lufs"] = round(level, 2)
            done = [(audio, meta) for audio, (_, meta) in zip(matched, done)]
        out = []
        for shot, (audio, meta) in zip(shots, done):
            if shot.velocity is not None:
                meta["velocity_db"] = round(velocity_db(shot.velocity), 2)
                audio = (audio * 10 ** (meta["velocity_db"] / 20)).astype(audio.dtype)
            out.append((audio, meta))
        return out

    def save(self, shot: OneShot, post: PostProcess | None = None,
             processed: tuple[np.ndarray, dict] | None = None) -> Path:
        """Post-process and write one one-shot (`processed`: what `finish` returned earlier); returns its
        absolute path."""
        audio, meta = processed or self.process(shot, post)
        return self.samples.write(shot.model, audio, shot.sample_rate, meta, shot.file_label(), shot.folder)
