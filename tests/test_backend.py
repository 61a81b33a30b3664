"""The ONNX Runtime backend: outputs within a stated tolerance of the fp32 torch reference, the export cache,
and the fall back to torch when onnxruntime or onnx is missing."""

from __future__ import annotations

import logging
import sys
import threading

import numpy as np
import pytest

from tad_daemon.engine import Engine
from tad_daemon.models import onnxrt
from tad_daemon.models.registry import read_entry
from tests.conftest import make_model

LENGTH = 4096  # short one-shots keep the export quick; the length is fixed per model either way
TOLERANCE = 1e-4  # max abs difference to fp32 torch after a whole sampler run (measured: ~1e-6)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return read_entry(make_model(folder, "kick", kind="kick", length=LENGTH))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def engines(model, cache):
    """(torch reference, ONNX engine) with the model loaded; the ONNX one exported into a fresh cache."""
    ref = Engine("cpu", "fp32", backend="torch")
    ref.load(model)
    onnx = Engine("cpu", "fp32", backend="onnx", cache_dir=cache)  # auto might measure torch faster here
    assert onnx.backend == "onnx"
    assert onnx.load(model, wait=True).backend == "onnx"
    return ref, onnx


def _max_diff(a, b) -> float:
    return max(float(np.abs(x.audio - y.audio).max()) for x, y in zip(a, b))


@pytest.mark.parametrize("sampler", ["dpmpp-2m", "vsampler"])
def test_onnx_generate_matches_torch(engines, sampler):
    ref, onnx = engines
    want = ref.generate("kick", count=3, seed=7, steps=5, sampler=sampler)  # a batch of 3: the batch axis is free
    got = onnx.generate("kick", count=3, seed=7, steps=5, sampler=sampler)
    assert [s.backend for s in got] == ["onnx"] * 3 and want[0].backend == "torch"
    assert _max_diff(want, got) < TOLERANCE
    assert np.abs(want[0].audio - want[1].audio).max() > 0.1  # different seeds do differ


def test_onnx_vary_matches_torch(engines):
    ref, onnx = engines
    source = np.sin(np.linspace(0, 200, LENGTH, dtype=np.float32))[None].repeat(2, 0) * 0.5
    want = ref.vary("kick", source, 0.6, count=2, seed=3, steps=6)
    got = onnx.vary("kick", source, 0.6, count=2, seed=3, steps=6)
    assert _max_diff(want, got) < TOLERANCE


def test_cache_is_reused_and_a_bad_entry_is_rebuilt_in_the_background(model, cache, engines, caplog):
    import json

    caplog.set_level(logging.INFO, logger="tad_daemon.models.onnxrt")
    entry = onnxrt.cache_path(model, cache)
    record = entry.with_suffix(".json")
    assert sorted(p.name for p in cache.iterdir()) == sorted([entry.name, record.name])  # no temporary left
    # Not asserted on file identity: ext4 hands a freed inode number straight back. Nor on mtime: use touches.
    before = entry.read_bytes()
    assert Engine("cpu", "fp32", backend="onnx", cache_dir=cache).load(model).backend == "onnx"  # a hit: ready at once
    assert "export" not in caplog.text and entry.read_bytes() == before

    # A record that does not match the net (or is missing): the entry is dropped, the model serves on torch
    # at once, and the export runs again in the background and is swapped in when done.
    data = json.loads(record.read_text())
    data["probe"] = tampered = [v + 0.1 for v in data["probe"]]
    record.write_text(json.dumps(data))
    engine = Engine("cpu", "fp32", backend="onnx", cache_dir=cache)
    m = engine.load(model)
    assert m.backend == "torch" and "unusable" in caplog.text
    assert engine.generate("kick", seed=1, steps=2)[0].backend == "torch"
    for job in [t for t in threading.enumerate() if t.name == "onnx-kick"]:
        job.join()
    assert m.backend == "onnx" and engine.generate("kick", seed=1, steps=2)[0].backend == "onnx"
    assert "exported" in caplog.text and json.loads(record.read_text())["probe"] != tampered  # rewritten

    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])  # e.g. a disk that filled up under another program
    caplog.clear()
    m = Engine("cpu", "fp32", backend="onnx", cache_dir=cache).load(model, wait=True)
    assert m.backend == "onnx" and "unusable" in caplog.text and "exported" in caplog.text
    assert entry.read_bytes() == good  # the same export again


def test_an_export_that_does_not_match_torch_is_refused(model, engines):
    import torch

    from tad_daemon.models.registry import load_net

    onnx_net = engines[1].get("kick").net
    net = load_net(model, torch.device("cpu"))
    assert onnx_net.check(net, model) < 1e-5
    with torch.no_grad():
        next(net.parameters()).add_(0.5)  # another model's weights, as far as the probe can tell
    with pytest.raises(ValueError, match="differs from torch"):
        onnx_net.check(net, model)


def test_a_changed_model_file_gets_its_own_entry(model, tmp_path):
    other = read_entry(make_model(tmp_path / "m", "kick", seed=1, length=LENGTH))
    assert onnxrt.cache_key(other) != onnxrt.cache_key(model)


def test_missing_onnxruntime_falls_back_to_torch_with_one_log_line(model, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    monkeypatch.setattr(onnxrt, "_runtime", None)
    monkeypatch.setattr(onnxrt, "_runtime_problem", None)
    with caplog.at_level(logging.WARNING):
        engines = [Engine("cpu", "fp32", backend=b, cache_dir=tmp_path) for b in ("auto", "onnx", "auto")]
    assert [e.backend for e in engines] == ["torch"] * 3
    assert len([r for r in caplog.records if "onnxruntime is not usable" in r.message]) == 1
    engines[0].load(model, wait=True)
    assert engines[0].generate("kick", seed=1, steps=2)[0].backend == "torch"


def test_missing_onnx_exporter_keeps_the_model_on_torch(model, tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnx", None)
    engine = Engine("cpu", "fp32", cache_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        m = engine.load(model, wait=True)
    assert m.backend == "torch" and "needs the onnx package" in caplog.text
    assert engine.generate("kick", seed=1, steps=2)[0].backend == "torch"


def test_backend_choice(tmp_path, caplog):
    with pytest.raises(ValueError, match="unknown backend"):
        Engine("cpu", backend="tensorrt")
    assert Engine("cpu", "fp32", backend="torch", cache_dir=tmp_path).backend == "torch"
    assert Engine("cpu", "fp32").backend == "torch"  # no cache folder: nothing to export into
    with caplog.at_level(logging.WARNING):
        assert Engine("cpu", "fp32", backend="onnx").backend == "torch"
    assert "no cache folder" in caplog.text
    assert Engine("cpu", "fp32", cache_dir=tmp_path).backend == "auto"  # measured per model at export
    assert Engine("cpu", "bf16", backend="onnx", cache_dir=tmp_path).backend == "onnx"


def test_configuration_picks_the_backend(home, monkeypatch):
    from tad_daemon.config import load_config
    from tad_daemon.workspace import Workspace

    monkeypatch.setenv("TAD_DAEMON_DEVICE_DEVICE", "cpu")
    monkeypatch.setenv("TAD_DAEMON_DEVICE_PRECISION", "fp32")
    assert Workspace(load_config()).make_engine().backend == "auto"
    assert Workspace(load_config()).make_engine().cache_dir == home / "cache" / "onnx"
    monkeypatch.setenv("TAD_DAEMON_PATHS_CACHE", str(home / "elsewhere"))
    assert Workspace(load_config()).make_engine().cache_dir == home / "elsewhere" / "onnx"
    monkeypatch.setenv("TAD_DAEMON_DEVICE_BACKEND", "torch")
    assert Workspace(load_config()).make_engine().backend == "torch"


def test_auto_runs_each_model_the_way_measured_fastest_and_says_why(model, tmp_path, monkeypatch, caplog):
    """The export times the candidates; the fastest is kept in the record and used from then on, with the
    figures in the log, in `describe()` (what `tad-daemon status` shows) and in each one-shot's metadata."""
    import json

    caplog.set_level(logging.INFO, logger="tad_daemon")
    for timings, backend, precision in [({"onnx-fp32": 0.05, "torch-fp32": 0.03, "torch-bf16": 0.04}, "torch", "fp32"),
                                        ({"onnx-fp32": 0.05, "torch-fp32": 0.07, "torch-bf16": 0.02}, "torch", "bf16"),
                                        ({"onnx-fp32": 0.01, "torch-fp32": 0.07, "torch-bf16": 0.09}, "onnx", "fp32")]:
        cache = tmp_path / f"{backend}-{precision}"
        monkeypatch.setattr(onnxrt, "measure", lambda net, onnx_net, entry, t=timings: dict(t))
        engine = Engine("cpu", "auto", cache_dir=cache)
        m = engine.load(model, wait=True)
        assert (m.backend, m.precision) == (backend, precision)
        best = f"{backend}-{precision} {min(timings.values()) * 1000:.0f} ms"
        assert "measured fastest" in m.describe() and best in m.describe()
        shot = engine.generate("kick", seed=1, steps=2)[0]
        assert (shot.metadata()["backend"], shot.metadata()["precision"]) == (backend, precision)
        record = json.loads(onnxrt.cache_path(model, cache).with_suffix(".json").read_text())
        assert record["timings"] == timings
        caplog.clear()
        again = Engine("cpu", "auto", cache_dir=cache).load(model)  # from the record: no export, no timing
        assert (again.backend, again.precision) == (backend, precision) and "export" not in caplog.text
        # A set precision leaves only what gives it: fp32 rules out torch-bf16.
        fp32 = Engine("cpu", "fp32", cache_dir=cache).load(model)
        torch_faster = timings["torch-fp32"] < timings["onnx-fp32"]
        assert fp32.precision == "fp32" and fp32.backend == ("torch" if torch_faster else "onnx")
    assert "model kick runs on onnx fp32: measured fastest here (onnx-fp32 10 ms" in caplog.text


def test_timing_gives_up_on_a_candidate_far_slower_than_the_best():
    calls = []

    def slow():
        calls.append(1)
        import time

        time.sleep(0.05)

    assert onnxrt.time_call(slow, best=0.001) >= 0.05 and len(calls) == 1  # the warm-up alone: 50x the best
    calls.clear()
    assert onnxrt.time_call(slow) >= 0.05 and onnxrt.TIMING_CALLS[0] + 1 <= len(calls) <= onnxrt.TIMING_CALLS[1] + 1


def test_the_real_measurement_times_every_candidate(model, engines):
    import torch

    from tad_daemon.models.registry import load_net

    timings = onnxrt.measure(load_net(model, torch.device("cpu")), engines[1].get("kick").net, model)
    assert set(timings) <= set(onnxrt.CANDIDATES) and {"onnx-fp32", "torch-fp32"} <= set(timings)
    assert all(0 < t < 10 for t in timings.values())


def test_a_fresh_install_answers_once_its_models_are_prepared(tmp_path):
    """The first start exports and times each model before it answers, so the first presses run as later
    ones do (bench/latency.py --cases fresh); a later start finds the cache and answers at once."""
    from tad_daemon.protocol.table import read_reply
    from tests.daemon_util import Daemon, make_models

    home = tmp_path / "home"
    make_models(home / "models", {"kick": "kick"})
    for start in ("fresh", "later"):
        d = Daemon(home)
        before = len(d.output())
        d.start()
        try:
            c = d.client()
            (line,) = [m for m in c.request("/tad/models") if m.address == "/tad/model"]
            runs_on = read_reply(line.address, line.args)["runs_on"]
            assert "until its ONNX export" not in runs_on and "measured fastest here" in runs_on, runs_on
            assert ("preparing 1 model(s)" in d.output()[before:]) == (start == "fresh"), d.output()
            c.close()
        finally:
            d.stop()
