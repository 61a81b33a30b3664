"""The trainer under torchrun: two CPU processes on gloo train what one process accumulating two
micro-batches trains, and a distributed run resumes from its checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import load_file

from tad_daemon.training.checkpoint import load_checkpoint
from tests.conftest import REPO, make_model

L = 2048


def run(config: dict, path, processes: int = 1) -> list[dict]:
    path.write_text(json.dumps(config))
    if processes == 1:
        command = [sys.executable, "-m", "tad_daemon.training.train", str(path)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   "-m", "tad_daemon.training.train", str(path)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_two_gloo_processes_train_like_one_with_accumulation(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    t = np.arange(3000) / 44100
    for i in range(5):
        sf.write(data / f"k{i}.wav", 0.5 * np.sin(2 * np.pi * (40 + 25 * i) * t) * np.exp(-t * 30), 44100)
    base = make_model(tmp_path, "base", length=L)
    common = dict(name="k", data=str(data), base=str(base), micro_batch=1, accumulation=2, threads=1,
                  checkpoint_every=2, augment_gain_db=3.0, augment_flip=True)
    run(dict(common, out=str(tmp_path / "one"), steps=5), tmp_path / "one.json")
    # Two processes: 4 steps, then resumed (all settings equal but the step count) to 5.
    two = run(dict(common, out=str(tmp_path / "two"), steps=4), tmp_path / "two.json", processes=2)
    assert "2 processes" in two[1]["description"] and two[-1]["event"] == "model"
    again = run(dict(common, out=str(tmp_path / "two"), steps=5), tmp_path / "two.json", processes=2)
    assert again[1]["event"] == "start" and again[1]["resumed"] and again[1]["step"] == 4
    assert [e["step"] for e in again if e["event"] == "step"] == [5]
    # Bit for bit: the same micro-batches and random numbers, and halving gradients (DDP's averaging, or the
    # accumulation's loss / 2) is exact in binary floating point, as is a sum of two.
    a, b = load_file(tmp_path / "one" / "k.safetensors"), load_file(tmp_path / "two" / "k.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    ca, cb = load_checkpoint(tmp_path / "one" / "checkpoint.pt"), load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert cb["processes"] == 2 and cb["step"] == ca["step"] == 5
    assert torch.equal(ca["losses"], cb["losses"])
