"""Training: data preparation, the recipe's pieces, the loop's outputs, and resumption after SIGKILL.

Tiny models (conftest.TINY_ARCH) on 2048-sample clips keep every run to a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from tad_daemon.models.adp import VDiffusion
from tad_daemon.models.modelfile import read_config
from tad_daemon.models.network import build_unet
from tad_daemon.training.checkpoint import load_checkpoint
from tad_daemon.training.dataset import DatasetError, augment, find_sound_files, load_cache, prepare, save_cache
from tad_daemon.training.recipe import EMA, checkpoint_blocks, v_loss
from tad_daemon.training.settings import TrainConfig, TrainError
from tad_daemon.training.train import train
from tests.conftest import REPO, TINY_ARCH, make_model

L = 2048
SR = 44100


def drum(i: int, seconds: float = 0.1, rate: int = SR) -> np.ndarray:
    """A decaying tone plus a noise click: something with a loudness."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(i)
    x = np.sin(2 * np.pi * (60 + 30 * i) * t) * np.exp(-t * 25) + 0.3 * rng.standard_normal(len(t)) * np.exp(-t * 200)
    return (0.5 * x).astype(np.float32)


def kicks(folder, n: int = 6):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"kick{i}.wav", drum(i), SR)
    return folder


def test_dataset_reads_every_format_and_reports_what_it_skips(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    sf.write(data / "a.wav", drum(0, rate=48000), 48000)  # mono, another rate
    sf.write(data / "sub" / "b.flac", np.stack([drum(1, rate=22050)] * 2, axis=1), 22050)
    sf.write(data / "sub" / "deeper" / "c.aiff", np.stack([drum(2, 0.3, 96000)] * 4, axis=1), 96000)  # 4 channels
    sf.write(data / "quiet.wav", np.zeros(3000, np.float32), SR)
    (data / "broken.wav").write_bytes(b"RIFF\x00\x00not a wav")
    (data / "folder.wav").mkdir()
    (data / ".wav").mkdir()
    (data / "locked.wav").write_bytes((data / "a.wav").read_bytes())
    (data / "notes.txt").write_text("not audio")
    (data / "._a.wav").write_bytes(b"AppleDouble")
    real_access = os.access  # the tests may run as root, for whom chmod 000 changes nothing
    monkeypatch.setattr(os, "access", lambda p, mode: "locked" not in str(p) and real_access(p, mode))

    d = prepare(data, length=L)
    s = d.summary
    assert d.audio.shape == (3, 2, L) and d.audio.dtype == torch.float32
    assert s.files == 3 and s.ignored == 2 and s.cropped == 3
    assert s.seconds == pytest.approx(0.1 + 0.1 + 0.3, abs=1e-3)
    reasons = dict(s.skipped)
    assert reasons["quiet.wav"] == "silent"
    assert "not a readable sound file" in reasons["broken.wav"]
    assert reasons["folder.wav"] == reasons[".wav"] == "is a folder, not a sound file"
    assert reasons["locked.wav"] == "permission denied"
    text = "\n".join(s.lines())
    assert "3 sound files used" in text and "4 skipped" not in text and "5 skipped" in text
    # Loudness-normalised like the seed: every clip at -20 LUFS (as the meter measures the cropped clip).
    meter = pyloudnorm.Meter(SR, block_size=L / SR)
    for clip in d.audio.numpy():
        assert meter.integrated_loudness(clip.T.astype(np.float64)) == pytest.approx(-20.0, abs=0.05)
    # The cache gives back the same tensor and summary.
    save_cache(tmp_path / "cache.safetensors", d)
    again = load_cache(tmp_path / "cache.safetensors")
    assert torch.equal(again.audio, d.audio) and again.summary == s


def test_unusable_datasets_fail_with_the_reason(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        prepare(tmp_path / "missing", L)
    (tmp_path / "file.wav").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not a folder"):
        prepare(tmp_path / "file.wav", L)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable sound files"):
        prepare(tmp_path / "empty", L)
    bad = tmp_path / "bad"
    (bad / "kick.wav").mkdir(parents=True)
    (bad / "snare.wav").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"no usable sound files.*kick.wav: is a folder.*snare.wav: not a readable"):
        prepare(bad, L)
    with pytest.raises(DatasetError, match="more than 3 sound files; give the folder that holds just"):
        find_sound_files(kicks(tmp_path / "many", 4), max_files=3)  # a whole disk given by mistake, say


def test_augmentation_is_drawn_from_its_generator():
    x = torch.ones(8, 2, 64)
    a = augment(x, torch.Generator().manual_seed(1), gain_db=6.0, flip=True, shift=10)
    b = augment(x, torch.Generator().manual_seed(1), gain_db=6.0, flip=True, shift=10)
    assert torch.equal(a, b)
    level = a[:, 0, -1]
    assert (level.abs() <= 10 ** (6 / 20) + 1e-6).all() and (level.abs() >= 10 ** (-6 / 20) - 1e-6).all()
    assert (level < 0).any() and (level > 0).any()  # some flipped, some not
    starts = (a[:, 0] != 0).float().argmax(dim=1)
    assert starts.max() <= 10 and starts.min() >= 0 and len(set(starts.tolist())) > 1
    assert torch.equal(augment(x, torch.Generator()), x)  # all off: untouched


def test_v_loss_is_audio_diffusion_pytorchs_vdiffusion():
    torch.manual_seed(0)
    net = build_unet(TINY_ARCH)
    x = torch.randn(3, 2, 256)
    torch.manual_seed(7)
    theirs = VDiffusion(net)(x)
    ours = v_loss(net, x, torch.Generator().manual_seed(7))
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=0)


def test_ema_warms_up_like_ema_pytorch():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, beta=0.995, power=0.7)
    decays = []
    for _ in range(3000):
        ema.step += 1
        decays.append(ema.decay())
    assert decays[0] == 0.0 and decays[1] == pytest.approx(1 - 2**-0.7)
    assert decays[99] == pytest.approx(1 - 100**-0.7) and max(decays) == 0.995 and decays[-1] == 0.995
    ema = EMA(net, beta=0.995, power=0.7)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # the first update copies the net
    assert torch.equal(ema.weights["weight"], net.weight)
    with torch.no_grad():
        net.weight.fill_(3.0)
    ema.update(net)
    d = 1 - 2**-0.7
    assert torch.allclose(ema.weights["weight"], torch.full((2, 2), d * 1.0 + (1 - d) * 3.0))


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = build_unet(TINY_ARCH)
    recomputed = build_unet(TINY_ARCH)
    recomputed.load_state_dict(plain.state_dict())
    assert checkpoint_blocks(recomputed) > 10
    assert list(dict(recomputed.named_parameters())) == list(dict(plain.named_parameters()))
    x = torch.randn(2, 2, 256)
    grads = []
    for net in (plain, recomputed):
        net.zero_grad()
        v_loss(net, x, torch.Generator().manual_seed(3)).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_fine_tune_writes_model_card_and_loss_curve(tmp_path):
    models = tmp_path / "models"
    make_model(models, "kick", kind="kick", length=L)
    cfg = TrainConfig(name="my-kicks", data=str(kicks(tmp_path / "data")), out=str(tmp_path / "run"),
                      base="kick", models_dir=str(models), steps=4, micro_batch=2, accumulation=2,
                      checkpoint_every=2, snapshot_every=2, license="CC0-1.0", threads=1, low_memory=True)
    events = []
    result = train(cfg, progress=events.append)
    assert result.state == "done" and result.step == 4
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["data", "start"] and kinds.count("step") == 4 and kinds[-1] == "model"
    assert kinds.count("checkpoint") == 2 and kinds.count("snapshot") == 1
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4] and all(e["total"] == 4 and e["eta"] >= 0 for e in steps)
    config = read_config(result.model)
    t = config.training
    assert (config.kind, config.length, config.source, config.arch) == ("kick", L, "trained", TINY_ARCH)
    assert config.license == "data: CC0-1.0; base model kick: test"
    assert t["base"] == "kick" and t["steps"] == 4 and t["data"]["files"] == 6 and t["device"] == "cpu"
    assert t["final_loss"] == pytest.approx(np.mean([e["loss"] for e in steps]))
    assert (tmp_path / "run" / "my-kicks-loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (tmp_path / "run" / "my-kicks.md").read_text()
    assert "Base model: kick" in card and "6 sound files used" in card and "my-kicks-loss.png" in card
    assert (tmp_path / "run" / "snapshots" / "my-kicks-step000002.safetensors").is_file()
    assert "step 4/4" in (tmp_path / "run" / "train.log").read_text()
    # Starting over in the same folder without resuming is refused; resuming a finished run changes nothing,
    # and needs the base model no more (the checkpoint holds all of it).
    with pytest.raises(TrainError, match="holds a checkpoint"):
        train(cfg, resume=False)
    before = load_file(result.model)
    (models / "kick.safetensors").unlink()
    assert train(cfg).step == 4
    assert all(torch.equal(before[k], v) for k, v in load_file(result.model).items())
    with pytest.raises(TrainError, match=r"settings differ.*\(lr\)"):
        train(TrainConfig(**{**cfg.__dict__, "lr": 3e-4}))


def test_the_events_table_in_the_docs_is_the_contract():
    from tad_daemon.training.settings import EVENTS, event

    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    table = text[text.index("| event | fields |"):].split("\n\n")[0].splitlines()[2:]
    documented = {}
    for row in table:
        names, fields = row.strip("|").split("|")[:2]
        for name in names.replace("`", "").split(","):
            documented[name.strip()] = re.findall(r"`([a-z_]+)`", fields)
    assert {k: sorted(v) for k, v in documented.items()} == {k: sorted(v) for k, v in EVENTS.items()}
    with pytest.raises(ValueError, match="expected"):
        event("step", step=1)  # an event is sent with exactly its fields


def test_bad_settings_are_refused(tmp_path):
    data = str(kicks(tmp_path / "data", 2))
    with pytest.raises(TrainError, match="unknown base model 'nope'"):
        train(TrainConfig(name="x", data=data, out=str(tmp_path / "a"), base="nope", models_dir=str(tmp_path)))
    with pytest.raises(TrainError, match="invalid model name"):
        train(TrainConfig(name="../x", data=data, out=str(tmp_path / "b")))
    with pytest.raises(TrainError, match="not a multiple"):
        train(TrainConfig(name="x", data=data, out=str(tmp_path / "c"), arch=TINY_ARCH, length=1000))
    with pytest.raises(DatasetError, match="no usable sound files"):
        train(TrainConfig(name="x", data=str(tmp_path / "a"), out=str(tmp_path / "d"), arch=TINY_ARCH, length=L))


def run_cli(args: list[str], kill_when=None, sig=signal.SIGKILL) -> tuple[int, list[dict]]:
    """Run `tad-daemon train-local --json ...`; if `kill_when(event)` turns true, send `sig` right then."""
    proc = subprocess.Popen([sys.executable, "-m", "tad_daemon", "train-local", *args, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if kill_when and kill_when(events[-1]):
            proc.send_signal(sig)
            kill_when = None
    proc.wait(timeout=120)
    return proc.returncode, events


def test_resume_after_sigkill_is_bit_exact(home, tmp_path):
    base = make_model(tmp_path, "base", kind="kick", length=L)
    data = kicks(tmp_path / "data", 5)
    common = ["k", str(data), "--base", str(base), "--steps", "8", "--batch", "2", "--accum", "1",
              "--checkpoint-every", "2", "--threads", "1", "--augment-gain", "3", "--augment-flip",
              "--augment-shift", "1"]
    rc, _ = run_cli([*common, "--out", str(tmp_path / "straight")])
    assert rc == 0
    run = tmp_path / "killed"
    args = [*common, "--out", str(run)]
    # Wherever each kill lands (normally mid-step, but a run may also have finished), the end result must
    # be the same: SIGKILL right after the first checkpoint, then again between two checkpoints (after step
    # 5 of 8, checkpoints every 2), then the run is resumed to the end. (SIGTERM's checkpoint-and-stop is
    # tested with the queue's night window.)
    rc, _ = run_cli(args, lambda e: e["event"] == "checkpoint")
    assert rc in (-signal.SIGKILL, 0)
    (run / ".checkpoint.pt.x.part").write_bytes(b"half a checkpoint")  # as if killed while writing one
    rc, _ = run_cli([*args, "--resume"], lambda e: e["event"] == "step" and e["step"] == 5)
    assert rc in (-signal.SIGKILL, 0)
    rc, ev = run_cli([*args, "--resume"])
    assert rc == 0 and ev[1]["event"] == "start" and ev[1]["resumed"] and ev[-1]["event"] == "model"
    assert not list(run.glob(".*.part"))
    a, b = load_file(tmp_path / "straight" / "k.safetensors"), load_file(run / "k.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ca, cb = load_checkpoint(tmp_path / "straight" / "checkpoint.pt"), load_checkpoint(run / "checkpoint.pt")
    assert torch.equal(ca["losses"], cb["losses"]) and len(ca["losses"]) == 8
    assert all(torch.equal(x, y) for x, y in zip(ca["optimizer"]["state"][0].values(),
                                                 cb["optimizer"]["state"][0].values()))
    assert math.isfinite(ca["losses"][-1])


def test_cli_errors_have_exit_codes(home, tmp_path):
    data = kicks(tmp_path / "data", 2)
    rc, ev = run_cli(["k", str(data), "--base", "nope"])
    assert rc == 2 and "unknown base model 'nope'" in ev[-1]["message"]
    (tmp_path / "empty").mkdir()
    rc, ev = run_cli(["k", str(tmp_path / "empty")])
    assert rc == 2 and "no usable sound files" in ev[-1]["message"]
    out = subprocess.run([sys.executable, "-m", "tad_daemon", "train-local", "bad/name", str(data)],
                         capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "invalid model name" in out.stderr


def test_the_loop_uses_only_its_own_random_streams(tmp_path):
    """Drawing from the global generators meanwhile (as a library might) changes nothing in the result."""
    data = str(kicks(tmp_path / "data", 3))
    finals = []
    for i, disturb in enumerate((False, True)):
        cfg = TrainConfig(name="x", data=data, out=str(tmp_path / f"r{i}"), arch=TINY_ARCH, length=L, steps=2,
                          micro_batch=2, accumulation=1, threads=1)
        finals.append(load_file(train(cfg, progress=lambda e, d=disturb: d and torch.rand(1)).model))
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])



def test_mixed_precision_with_loss_scaling_resumes(tmp_path):
    """The GPU's fp16 path (autocast + GradScaler, whose state is checkpointed), run on the CPU."""
    data = str(kicks(tmp_path / "data", 3))
    cfg = TrainConfig(name="x", data=data, out=str(tmp_path / "run"), arch=TINY_ARCH, length=L, steps=2,
                      micro_batch=2, accumulation=1, threads=1, precision="fp16")
    events = []
    train(cfg, progress=events.append)
    start = next(e for e in events if e["event"] == "start")
    assert "float16" in start["description"]
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["scaler"]["scale"] > 0 and state["step"] == 2
    result = train(TrainConfig(**{**cfg.__dict__, "steps": 3}))
    assert result.step == 3 and math.isfinite(result.final_loss)
    assert read_config(result.model).training["precision"] == "float16"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_fifo_named_like_a_sound_file_is_skipped_at_once_not_waited_on(tmp_path):
    import threading

    from tad_daemon.audio.load import AudioError, load_oneshot
    from tad_daemon.training.dataset import check_folder

    folder = tmp_path / "data"
    folder.mkdir()
    sf.write(folder / "good.wav", np.sin(np.arange(4410) / 5.0).astype(np.float32) * 0.5, 44100)
    os.mkfifo(folder / "a.wav")  # no writer ever comes: opening it the usual way waits forever
    result = {}

    def run() -> None:
        result["readable"] = check_folder(folder)
        try:
            load_oneshot(folder / "a.wav")
        except AudioError as e:
            result["error"] = str(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "blocked on the FIFO"
    assert result["readable"] == 1 and "not a regular file" in result["error"]
