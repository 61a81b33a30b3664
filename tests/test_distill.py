"""Progressive distillation: the loss, a student that does in N steps what its teacher does in 2N, resuming,
bad settings, and a distillation queued over OSC whose student the daemon loads and generates with."""

from __future__ import annotations

import math
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from tad_daemon import sampling
from tad_daemon.models.modelfile import read_config
from tad_daemon.models.registry import load_net, read_entry
from tad_daemon.protocol.table import DONE, FAIL
from tad_daemon.synth import write_corpus
from tad_daemon.training.dataset import load_cache
from tad_daemon.training.distill import GRIDS, distill, distill_loss
from tad_daemon.training.settings import DistillConfig, TrainError
from tests.conftest import TINY_ARCH, make_model
from tests.daemon_util import Daemon, make_models, tad

L = 2048


class PointMass(torch.nn.Module):
    """The exact v-prediction for data that is one sound `mu`: DDIM is exact for it at any step count."""

    def __init__(self, mu: torch.Tensor, offset: float = 0.0):
        super().__init__()
        self.mu, self.offset = mu, offset

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        angle = (t * math.pi / 2).view(-1, 1, 1)
        a, s = torch.cos(angle), torch.sin(angle)
        return a * (z - a * self.mu) / s - s * self.mu + self.offset


def test_the_loss_is_zero_only_for_a_student_that_does_two_teacher_steps_in_one():
    mu = torch.randn(1, 2, 64, generator=torch.Generator().manual_seed(1))
    x0 = mu.expand(8, -1, -1)
    gen = torch.Generator().manual_seed(0)
    for grid in GRIDS:
        for n in (1, 2, 4, 64):
            assert distill_loss(PointMass(mu), PointMass(mu), x0, n, gen, grid) < 1e-9
        assert distill_loss(PointMass(mu, 0.1), PointMass(mu), x0, 4, gen, grid) > 1e-3


def test_each_students_grid_is_every_other_time_of_its_teachers():
    for schedule in GRIDS:
        for n in (1, 2, 4, 32):
            assert sampling.times_for(schedule, n) == pytest.approx(sampling.times_for(schedule, 2 * n)[::2])
    assert sampling.times_for("quadratic", 4) == pytest.approx([1, 0.5625, 0.25, 0.0625, 0])


def test_distilling_lowers_its_objective_and_writes_a_model_that_samples_in_fewer_steps(tmp_path):
    teacher_path = make_model(tmp_path, "teacher", kind="kick", length=L, seed=3)
    run = tmp_path / "run"
    result = distill(DistillConfig(name="student", teacher=str(teacher_path), out=str(run), samples=2,
                                   student_steps=2, teacher_steps=4, steps=60, micro_batch=2, accumulation=1,
                                   lr=1e-3, ema_beta=0.9, threads=1, checkpoint_every=1000))
    assert result.state == "done" and result.step == 60
    teacher, student = (load_net(read_entry(p), torch.device("cpu")) for p in (teacher_path, result.model))
    data = load_cache(run / "data.safetensors").audio  # the teacher's own one-shots

    def objective(net) -> float:  # one student step against two teacher steps, on fixed draws
        return sum(float(distill_loss(net, teacher, data, 2, torch.Generator().manual_seed(k), "quadratic"))
                   for k in range(8))

    assert objective(student) < 0.95 * objective(teacher)  # the student starts as the teacher
    config = read_config(result.model)
    assert (config.default_steps, config.default_sampler, config.default_schedule) == (2, "vsampler", "quadratic")
    assert config.training["distilled"]["teacher_steps"] == 4 and config.kind == "kick"
    card = (run / "student.md").read_text()
    assert "Distilled: progressive distillation of teacher from 4 to 2 DDIM steps" in card and "quadratic grid" in card


def stop_after(n: int) -> dict:
    """progress= and stop= arguments that stop a run after n steps."""
    steps = []
    return {"progress": lambda e: steps.append(e) if e["event"] == "step" else None,
            "stop": lambda: len(steps) >= n}


def test_a_stopped_distillation_resumes_bit_exact(tmp_path):
    teacher = make_model(tmp_path, "teacher", kind="snare", length=L)

    def config(out: str) -> DistillConfig:  # two rounds (4 -> 2 -> 1) of 3 steps
        return DistillConfig(name="s", teacher=str(teacher), out=str(tmp_path / out), samples=6, student_steps=1,
                             teacher_steps=4, steps=3, micro_batch=2, accumulation=1, threads=1,
                             checkpoint_every=2)

    straight = distill(config("straight"))
    assert [p.name for p in sorted((tmp_path / "straight" / "rounds").iterdir())] == [
        "s-1steps.safetensors", "s-2steps.safetensors"]
    for stop_at in (2, 3):  # inside the first round, and at its end (the teacher changes there)
        out = f"stopped-{stop_at}"
        stopped = distill(config(out), **stop_after(stop_at))
        assert stopped.state == "stopped" and stopped.step == stop_at
        events = []
        done = distill(config(out), progress=events.append)
        assert done.state == "done" and [e for e in events if e["event"] == "start"][0]["resumed"]
        a, b = load_file(straight.model), load_file(done.model)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_settings_are_refused(tmp_path):
    teacher = make_model(tmp_path, "teacher", length=L)
    kit = make_model(tmp_path, "drums", kind="kit", length=L, arch={**TINY_ARCH, "kinds": ["kick", "clap"]})
    for change, reason in (({"teacher_steps": 6}, "times 2, 4, 8"), ({"teacher_steps": 4, "student_steps": 4},
                                                                     "times 2, 4, 8"),
                           ({"teacher_steps": 2048}, "at most 1024"), ({"teacher": "nothing"}, "unknown base model"),
                           ({"name": "../x"}, "name"), ({"lr": -1.0}, "lr"), ({"schedule": "karras"}, "schedule"),
                           ({"teacher": str(kit)}, "model of several kinds")):
        cfg = DistillConfig(**{"name": "s", "teacher": str(teacher), "out": str(tmp_path / "run"), **change})
        with pytest.raises(TrainError, match=reason):
            distill(cfg)


def cli(home, port, *args) -> subprocess.CompletedProcess:
    return tad(home, *args, "--port", str(port), timeout=600)


def test_a_distillation_through_the_daemon_is_loaded_and_generates(tmp_path):
    home = tmp_path / "home"
    make_models(home / "models", {"kick": "kick"})
    write_corpus(home / "data" / "corpus", per_class=3, seed=1)
    kicks = home / "data" / "corpus" / "kick"
    daemon = Daemon(home, "--set", "training.threads=1", "--set", "training.device=cpu").start()
    client = daemon.client()
    try:
        client.request("/tad/notify", 1)
        out = cli(home, daemon.port, "distill", "kick", "--steps", "1", "--teacher-steps", "4", "--train-steps", "2",
                  "--dataset", str(kicks), "--now")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "job 1 (kick-1step): queued"
        assert "step 4/4" in out.stderr and "job 1: done (finished" in out.stderr
        assert "model kick-1step loaded" in out.stderr  # the CLI returns once the daemon has it
        got = client.request("/tad/generate", "kick-1step", 1, 7)  # so this finds it at once
        (made,) = [m for m in got if m.address == DONE and m.args[0] == "/tad/generate"]
        assert made.args[2:6] == ["kick-1step", 7, 2, "vsampler"]  # the student's sampler (steps: generate.steps)
        assert [m.args[2] for m in got if m.address == "/tad/job/state"] == ["queued", "running", "done"]
        assert ["kick-1step", "kick"] in [m.args for m in got if m.address == "/tad/model/added"]
        client.request("/tad/notify", 0)
        client.quiet(0.3)
        models = home / "models"
        student = read_config(models / "kick-1step.safetensors")
        assert (models / "kick-1step.md").is_file() and (student.kind, student.default_steps) == ("kick", 1)
        for args, reason in ((("y", "nothing", 4), "unknown teacher model 'nothing'"),
                             (("y", "kick", 4, 0, "", "teacher_steps=6"), "times 2, 4, 8"),
                             (("kick", "kick", 4), "bundled model's name"),
                             (("y", "kick", 4, 0, "relative"), "dataset_dir must be an absolute path"),
                             (("y", "kick", 4, 0, str(tmp_path / "missing")), "no such folder")):
            (r,) = [m for m in client.request("/tad/distill", *args) if m.address in (DONE, FAIL)]
            assert r.address == FAIL and reason in r.args[1], (args, r.args)
        # An installed model is never silently replaced by a student (its own teacher included).
        for args in (("kick-1step", "kick", 1), ("kick-1step", "kick-1step", 1)):
            (r,) = [m for m in client.request("/tad/distill", *args) if m.address in (DONE, FAIL)]
            assert r.address == FAIL and "'kick-1step' is installed already" in r.args[1] and "replace" in r.args[1]
        assert [m.args[0] for m in client.request("/tad/jobs") if m.address == "/tad/job"] == ["1"]
        # With replace=1 it is queued; and a 3-step student takes its own default teacher (96 = 3 x 32 steps).
        out = cli(home, daemon.port, "distill", "kick", "--steps", "3", "--no-follow")
        assert out.returncode == 0 and out.stdout.strip() == "job 2 (kick-3step): queued", out.stderr
        out = cli(home, daemon.port, "distill", "kick", "--steps", "1", "--replace", "--no-follow")
        assert out.returncode == 0 and out.stdout.strip() == "job 3 (kick-1step): queued", out.stderr
        out = cli(home, daemon.port, "distill", "kick", "--steps", "1", "--no-follow")
        assert out.returncode != 0 and "installed already" in out.stderr
        for job in ("2", "3"):  # before a night window opens
            client.request("/tad/cancel", job)
    finally:
        client.close()
        daemon.stop()
