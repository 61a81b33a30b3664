"""Generate N one-shots with a model and write its quality report (figures, JSON and a PNG sheet)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tad_daemon.audio.post import PostProcess, postprocess
from tad_daemon.engine import Engine
from tad_daemon.quality.report import QualityReport, contact_sheet, judge


def evaluate_model(engine: Engine, name: str, count: int = 16, steps: int | None = None,
                   sampler: str | None = None, seed: int = 0, post: PostProcess | None = None,
                   out_dir: str | Path | None = None, progress=None, schedule: str | None = None) -> QualityReport:
    """The report of loaded model `name` over `count` one-shots from seeds seed..seed+count-1."""
    entry = engine.get(name).entry
    start = time.perf_counter()
    shots = engine.generate(name, count, seed, steps, sampler, schedule, progress=progress)
    seconds = (time.perf_counter() - start) / count
    raw = np.stack([s.audio for s in shots])
    post = post or PostProcess()
    processed = np.stack([postprocess(a, post, entry.config.sample_rate) for a in raw])
    report = QualityReport(model=name, kind=entry.kind, count=count, steps=shots[0].steps,
                           sampler=shots[0].sampler, schedule=shots[0].schedule, seconds_per_oneshot=seconds,
                           **judge(processed, raw, entry.kind))
    if out_dir:
        out = Path(out_dir)
        sheet = contact_sheet(processed, out / f"{name}-report.png",
                              f"{name} ({entry.kind}): seeds {seed}-{seed + min(count, 6) - 1}, "
                              f"{report.sampler} {report.steps} steps ({report.schedule})", entry.kind,
                              entry.config.sample_rate)
        report.sheet = str(sheet)
        (out / f"{name}-report.json").write_text(report.to_json(), encoding="utf-8")
    return report
