"""The quality report: its classifier and reference statistics, defect counts, and `tad-daemon evaluate`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tad_daemon.engine import Engine
from tad_daemon.models.registry import read_entry
from tad_daemon.quality.evaluate import evaluate_model
from tad_daemon.quality.report import Reference, defects, judge
from tad_daemon.synth import CLASSES, render_batch
from tests.conftest import make_model


@pytest.mark.parametrize("kind", CLASSES)
def test_procedural_drums_are_judged_as_their_class_and_closest_to_their_reference(kind):
    audio = render_batch(kind, 12, seed=4242)
    result = judge(audio, audio, kind)
    assert result["class_consistency"] >= 0.9
    assert result["clipped"] == result["silent"] == result["dc_offset"] == 0.0
    others = [judge(audio, audio, other)["frechet"] for other in CLASSES if other != kind]
    assert result["frechet"] < min(others)


def test_defects_are_counted_on_raw_outputs():
    rng = np.random.default_rng(0)
    ok = 0.5 * rng.standard_normal((2, 4096)).clip(-1.5, 1.5) / 1.5
    clipped = np.clip(3 * rng.standard_normal((2, 4096)), -1, 1)
    silent = 1e-5 * rng.standard_normal((2, 4096))
    offset = ok * 0.1 + 0.2
    d = defects(np.stack([ok, clipped, silent, offset]))
    assert d == {"clipped": 0.25, "silent": 0.25, "dc_offset": 0.25, "clicks": 0.0, "clicks_per_oneshot": 0.0}


def test_reference_statistics_ship_with_the_package():
    ref = Reference.load()
    assert ref.classes == tuple(sorted(CLASSES))
    assert ref.class_cov.shape == (4, ref.components.shape[0], ref.components.shape[0])
    assert np.all(ref.class_diversity > 0)


def test_evaluate_writes_json_and_picture(tmp_path):
    path = make_model(tmp_path, "tiny", kind="snare")
    engine = Engine("cpu", "fp32")
    engine.load(read_entry(path))
    report = evaluate_model(engine, "tiny", count=3, steps=2, out_dir=tmp_path / "out")
    assert report.kind == "snare" and report.count == 3 and report.steps == 2
    assert 0.0 <= report.class_consistency <= 1.0 and report.frechet >= 0 and report.diversity >= 0
    saved = json.loads((tmp_path / "out" / "tiny-report.json").read_text())
    assert saved["model"] == "tiny" and saved["sheet"].endswith("tiny-report.png")
    assert (tmp_path / "out" / "tiny-report.png").read_bytes()[:4] == b"\x89PNG"
    assert "class consistency" in "\n".join(report.lines())


def test_evaluate_command_errors(home):
    out = subprocess.run([sys.executable, "-m", "tad_daemon", "evaluate", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown model 'nope'" in out.stderr
