"""A fine-tune end to end through the daemon over OSC: queued with `tad-daemon train --now` (which follows
it with a progress bar), progress and state broadcasts, the new model loaded and announced, generating
from it; and the queue's answers to bad requests."""

from __future__ import annotations

import subprocess

from tad_daemon.protocol.table import DONE, FAIL
from tad_daemon.synth import write_corpus
from tests.daemon_util import Daemon, make_models, tad


def cli(home, port, *args) -> subprocess.CompletedProcess:
    return tad(home, *args, "--port", str(port), timeout=600)


def test_fine_tune_through_the_daemon(tmp_path):
    home = tmp_path / "home"
    make_models(home / "models", {"kick": "kick"})
    write_corpus(tmp_path / "corpus", per_class=4, seed=1)
    kicks = tmp_path / "corpus" / "kick"
    daemon = Daemon(home, "--set", "training.threads=1", "--set", "training.device=cpu").start()
    client = daemon.client()
    try:
        client.request("/tad/notify", 1)
        out = cli(home, daemon.port, "train", "my-kicks", str(kicks), "--base", "kick", "--steps", "3", "--now")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "job 1 (my-kicks): queued"
        assert "step 3/3" in out.stderr and "job 1: done (finished: final loss" in out.stderr
        assert "model my-kicks loaded" in out.stderr  # the CLI returns once the daemon has loaded it
        got = client.request("/tad/generate", "my-kicks", 1, 7)  # so this finds it at once
        (made,) = [m for m in got if m.address == DONE and m.args[0] == "/tad/generate"]
        assert made.args[2:4] == ["my-kicks", 7] and (home / "samples" / "my-kicks").is_dir()
        states = [m.args[2] for m in got if m.address == "/tad/job/state" and m.args[0] == "1"]
        assert states == ["queued", "running", "done"]
        progress = [m.args for m in got if m.address == "/tad/progress"]
        assert progress and progress[-1][:4] == ["1", "my-kicks", 3, 3] and progress[-1][4] > 0
        assert [m.args for m in got if m.address == "/tad/model/added"][-1] == ["my-kicks", "kick"]
        client.request("/tad/notify", 0)  # from here on, only this client's own replies
        client.quiet(0.3)

        jobs = client.request("/tad/jobs")
        assert [m.args[:5] for m in jobs if m.address == "/tad/job"] == [["1", "my-kicks", "done", 3, 3]]
        assert jobs[-1].args == ["/tad/jobs", 1]
        (status,) = client.request("/tad/status")
        assert status.args[6:9] == [0, "", 0.0]  # nothing queued, nothing running

        listed = cli(home, daemon.port, "jobs")
        assert listed.returncode == 0 and "my-kicks" in listed.stdout and "done" in listed.stdout
        again = cli(home, daemon.port, "cancel", "1")
        assert again.returncode == 1 and "job 1 is already done" in again.stderr
        # Bad datasets are refused with the reason; the queue is left as it was.
        (tmp_path / "empty").mkdir()
        (tmp_path / "dir" / "kick.wav").mkdir(parents=True)
        for folder, reason in (("empty", "no usable sound files"), ("dir", "kick.wav: is a folder"),
                               ("missing", "no such folder")):
            (r,) = [m for m in client.request("/tad/train", "x", str(tmp_path / folder), "", 0, 1)
                    if m.address in (DONE, FAIL)]
            assert r.address == FAIL and reason in r.args[1], r.args
        refused = cli(home, daemon.port, "train", "x", str(tmp_path / "empty"))
        assert refused.returncode == 1 and "no usable sound files" in refused.stderr
        assert [m.args[0] for m in client.request("/tad/jobs") if m.address == "/tad/job"] == ["1"]
    finally:
        client.close()
        daemon.stop()
    assert "job 1 (my-kicks): done" in daemon.output()
