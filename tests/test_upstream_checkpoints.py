"""The seed's checkpoints: import, pull from a stand-in Hugging Face hub on 127.0.0.1, and model management.

The checkpoints here have the seed's exact key layout: the seed's Lightning module (`model`: an
audio-diffusion-pytorch DiffusionModel with UNetV0; `model_ema`: an EMA wrapper with `ema_model` and
`online_model` copies and `initted`/`step` buffers), from random weights, saved the way PyTorch Lightning
saves a checkpoint. The U-Net is the small `cpu-micro` preset to keep the tests fast; one test builds the
seed's own architecture on the meta device to check the real key names.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from tad_daemon.cli import main
from tad_daemon.models.adp import DiffusionModel, UNetV0
from tad_daemon.models.presets import architecture
from tad_daemon.models.registry import load_net, read_entry
from tad_daemon.models.upstream import ema_unet_weights, match_preset, upstream_architecture
from tad_daemon.sampling import linear_times, sample_vsampler
from tests.conftest import TINY_ARCH, make_model
from tests.fuzz import Payload

PRESET = "cpu-micro"
KICKS = ("crlandsc/tiny-audio-diffusion-kicks", "kicks_v7.ckpt")
CHUNK = 10 * 1024 * 1024  # huggingface_hub writes downloads in chunks of this size


# --- the seed's training module and its checkpoint -------------------------------------------------------------

class EMA(nn.Module):
    """ema_pytorch.EMA as the seed's module holds it: copies of the model, and two buffers."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.ema_model = copy.deepcopy(model)
        self.online_model = copy.deepcopy(model)
        self.register_buffer("initted", torch.tensor([1.0]))
        self.register_buffer("step", torch.tensor([1234]))


class SeedModule(nn.Module):
    """The seed's LightningModule (main/diffusion_module.py `Model`): `model` and `model_ema`."""

    def __init__(self, arch: dict, seed: int = 0, weights: bool = True):
        super().__init__()
        self.arch = arch
        self.model = self.trained(arch, seed) if weights else DiffusionModel(net_t=UNetV0, in_channels=2, **arch)
        self.model_ema = EMA(self.model)
        if weights:  # EMA weights unlike the online ones, so taking the wrong copy shows
            self.model_ema.ema_model.load_state_dict(self.trained(arch, seed + 1).state_dict())

    @staticmethod
    def trained(arch: dict, seed: int) -> DiffusionModel:
        """Random weights all over: a fresh UNetV0's output layer starts at zero, which would hide everything."""
        torch.manual_seed(seed)
        model = DiffusionModel(net_t=UNetV0, in_channels=2, **arch)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        return model


def lightning_checkpoint(module: SeedModule, **extra) -> dict:
    """What pytorch_lightning's Trainer.save_checkpoint writes (16-bit AMP training, ModelCheckpoint callback)."""
    opt = torch.optim.AdamW(module.model.parameters(), lr=1e-4, betas=(0.95, 0.999), eps=1e-6, weight_decay=1e-3)
    sum(p.square().sum() for p in module.model.parameters()).backward()
    opt.step()  # fills the optimizer state (exp_avg, exp_avg_sq) like a trained run
    module.zero_grad(set_to_none=True)
    ckpt_key = ("ModelCheckpoint{'monitor': 'valid_loss', 'mode': 'min', 'every_n_train_steps': 0, "
                "'every_n_epochs': 1, 'train_time_interval': None}")
    return {
        "epoch": 41,
        "global_step": 1234,
        "pytorch-lightning_version": "1.9.4",
        "state_dict": module.state_dict(),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 1234},
                               "epoch_progress": {"total": {"ready": 42, "started": 42, "processed": 41}}}},
        "callbacks": {ckpt_key: {"monitor": "valid_loss", "best_model_score": torch.tensor(0.0123),
                                 "best_model_path": "logs/ckpts/epoch=41-valid_loss=0.012.ckpt",
                                 "best_k_models": {"logs/ckpts/epoch=41-valid_loss=0.012.ckpt": torch.tensor(0.0123)},
                                 "dirpath": "logs/ckpts", "last_model_path": "logs/ckpts/last.ckpt"}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "native_amp_scaling_state": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                                     "growth_interval": 2000, "_growth_tracker": 17},
        **extra,
    }


@pytest.fixture(scope="module")
def seed_ckpt(tmp_path_factory) -> tuple[Path, SeedModule]:
    torch.set_num_threads(1)
    module = SeedModule(upstream_architecture(PRESET))
    path = tmp_path_factory.mktemp("ckpt") / "kicks_v7.ckpt"
    torch.save(lightning_checkpoint(module), path)
    assert path.stat().st_size > 2 * CHUNK  # big enough to be cut after a whole chunk
    return path, module


def original(module: SeedModule, copy_: str) -> DiffusionModel:
    """The seed's DiffusionModel with the weights of `model_ema.<copy_>`.

    Built afresh: a deep copy of an a-unet U-Net still computes with the original's layers (a-unet's
    blocks run closures over the modules they were built from), so `model_ema.ema_model.sample()` on the
    training module would in fact use the online weights.
    """
    model = DiffusionModel(net_t=UNetV0, in_channels=2, **module.arch)
    model.load_state_dict(getattr(module.model_ema, copy_).state_dict())
    return model


def outputs_match(path: Path, module: SeedModule) -> bool:
    """Our sampler on the converted model against the seed's own VSampler on its EMA model, same noise."""
    net = load_net(read_entry(path), torch.device("cpu"))
    noise = torch.randn(1, 2, 4096, generator=torch.Generator().manual_seed(7))
    ours = sample_vsampler(net, noise.clone(), linear_times(3))
    theirs = original(module, "ema_model").sample(noise.clone(), num_steps=3)
    online = original(module, "online_model").sample(noise.clone(), num_steps=3)
    assert (online - theirs).abs().max() > 1e-2  # the copies differ, so a wrong pick would show
    return torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# --- the seed's real architecture ------------------------------------------------------------------------------

def test_the_seeds_key_layout_maps_onto_our_unet():
    with torch.device("meta"):  # the seed's 31.57 M parameters, three times over, without the memory
        state = SeedModule(architecture("tiny-audio-diffusion"), weights=False).state_dict()
    prefixes = {".".join(k.split(".")[:3]) for k in state}
    assert {"model.net.blocks", "model.diffusion.net", "model.sampler.net", "model_ema.ema_model.net",
            "model_ema.online_model.net", "model_ema.initted", "model_ema.step"} <= prefixes
    marks = {"model.": 1.0, "model_ema.ema_model.": 2.0, "model_ema.online_model.": 3.0, "model_ema.": 4.0}
    values = {k: torch.tensor(next(m for p, m in marks.items() if k.startswith(p))).expand(v.shape)
              for k, v in state.items()}
    weights = ema_unet_weights({"state_dict": values})
    assert match_preset(weights) == "tiny-audio-diffusion"
    assert all(bool((t == 2.0).all()) for t in weights.values())  # the EMA copy, nothing else


def test_the_catalogue_names_the_seeds_four_models_without_taking_bundled_names():
    from tad_daemon.cli.models import PUBLISHED_KEYS
    from tad_daemon.models.manage import BUNDLED_NAMES
    from tad_daemon.models.upstream import PUBLISHED

    assert PUBLISHED_KEYS == tuple(PUBLISHED)  # the CLI's choices, kept free of torch
    assert [m.name for m in PUBLISHED.values()] == ["kick-seed", "snare-seed", "hat-seed", "perc-seed"]
    assert not {m.name for m in PUBLISHED.values()} & set(BUNDLED_NAMES)


# --- import from a local file ------------------------------------------------------------------------------------

def test_import_converts_the_ema_weights_and_models_manages_them(home, seed_ckpt):
    path, module = seed_ckpt
    code, out = run("models", "import", str(path))
    assert code == 0, out
    installed = home / "models" / "kick-seed.safetensors"  # the seed's file name is recognised
    assert "installed kick-seed" in out and "CC BY-NC 4.0" in out and installed.is_file()
    config = read_entry(installed).config
    assert (config.kind, config.preset, config.license) == ("kick", PRESET, "CC-BY-NC-4.0 (training data)")
    assert config.training["global_step"] == 1234 and config.training["ema_updates"] == 1234
    assert config.training["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert outputs_match(installed, module)

    code, out = run("models", "import", str(path))
    assert code == 2 and "already exists" in out and "--force" in out
    code, out = run("models", "import", str(path), "--name", "kick")
    assert code == 2 and "bundled" in out
    code, out = run("models", "import", str(path), "--name", "my-kicks", "--kind", "perc", "--license", "mine")
    assert code == 0, out

    code, out = run("models")
    assert code == 0 and "kick-seed" in out and "my-kicks" in out and "CC-BY-NC-4.0" in out
    code, out = run("models", "show", "my-kicks")
    info = json.loads(out)
    assert code == 0 and info["config"]["kind"] == "perc" and info["config"]["license"] == "mine"
    assert info["file"] == str(home / "models" / "my-kicks.safetensors") and not info["bundled"]

    code, out = run("models", "rename", "my-kicks", "kick-seed")
    assert code == 2 and "already exists" in out
    code, out = run("models", "rename", "my-kicks", "../evil")
    assert code == 2 and "invalid model name" in out
    code, out = run("models", "rename", "my-kicks", "hat")
    assert code == 2 and "bundled" in out
    code, out = run("models", "rename", "my-kicks", "perc-mine")
    assert code == 0, out
    assert sorted(p.name for p in (home / "models").iterdir()) == ["kick-seed.safetensors", "perc-mine.safetensors"]
    code, out = run("models", "remove", "perc-mine")
    assert code == 0 and not (home / "models" / "perc-mine.safetensors").exists()
    code, out = run("models", "remove", "perc-mine")
    assert code == 2 and "no model 'perc-mine'" in out and "kick-seed" in out
    code, out = run("models", "remove", "snare")
    assert code == 2 and "bundled" in out
    code, out = run("models", "show", "nothing")
    assert code == 2 and "unknown model" in out


def test_remove_takes_a_users_model_that_overrides_a_bundled_name(home):
    make_model(home / "models", "snare", kind="snare")  # dropped in by hand; it hides the bundled snare
    code, out = run("models", "remove", "snare")
    assert code == 0 and not (home / "models" / "snare.safetensors").exists()


def _write_marker(path):  # what a hostile or merely unknown object in a checkpoint would run if it could
    Path(path).write_text("ran")
    return path


def test_unknown_objects_are_loaded_as_inert_placeholders(home, tmp_path, seed_ckpt):
    path, module = seed_ckpt
    marker = tmp_path / "marker"
    sneaky = tmp_path / "with-extras.ckpt"
    ckpt = torch.load(path, weights_only=True, mmap=True)
    ckpt["hyper_parameters"] = {"lr": np.float64(1e-4), "logs": pathlib.PurePosixPath("/logs"),
                                "hook": Payload(_write_marker, str(marker))}
    torch.save(ckpt, sneaky)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(sneaky, weights_only=True)  # so our own restricted unpickler is the one reading it
    code, out = run("models", "import", str(sneaky), "--name", "extras", "--kind", "kick")
    assert code == 0, out
    assert not marker.exists()  # the unknown function was never called
    assert outputs_match(home / "models" / "extras.safetensors", module)


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "builtins.exec", "posix.system",
                                     "subprocess.Popen", "state_dict"])
def test_malicious_checkpoints_are_refused_and_never_run(home, tmp_path, payload):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    evil = {
        "os.system": Payload(os.system, command),
        "builtins.eval": Payload(eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": Payload(exec, f"open({str(marker)!r}, 'w').close()"),
        "posix.system": Payload(__import__("posix").system, command),
        "subprocess.Popen": Payload(subprocess.Popen, ["touch", str(marker)]),
        "state_dict": Payload(os.system, command),
    }[payload]
    state = {"model_ema.ema_model.net.blocks.0.weights": torch.zeros(3)}
    if payload == "state_dict":
        state["model_ema.ema_model.net.blocks.0.to_out.weight"] = evil
        ckpt = {"state_dict": state}
    else:
        ckpt = {"state_dict": state, "callbacks": {"x": evil}}
    bad = tmp_path / "evil.ckpt"
    torch.save(ckpt, bad)
    code, out = run("models", "import", str(bad), "--name", "evil")
    assert code == 2 and "refused" in out and "nothing in it was run" in out, out
    assert not marker.exists()
    assert not (home / "models").exists() or not list((home / "models").iterdir())


def test_wrong_layouts_and_broken_files_get_clear_errors(home, tmp_path, seed_ckpt):
    path, _ = seed_ckpt
    torch.manual_seed(0)
    plain = DiffusionModel(net_t=UNetV0, in_channels=2, **upstream_architecture(PRESET))
    torch.save({"state_dict": {f"model.{k}": v for k, v in plain.state_dict().items()}}, tmp_path / "no-ema.ckpt")
    code, out = run("models", "import", str(tmp_path / "no-ema.ckpt"))
    assert code == 2 and "no EMA U-Net weights" in out and "model.net" in out

    tiny = DiffusionModel(net_t=UNetV0, in_channels=2, **TINY_ARCH)  # not one of our presets
    torch.save({"state_dict": {f"model_ema.ema_model.{k}": v for k, v in tiny.state_dict().items()}},
               tmp_path / "odd.ckpt")
    code, out = run("models", "import", str(tmp_path / "odd.ckpt"))
    assert code == 2 and "matches no known architecture" in out

    data = path.read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: 5 * 1024 * 1024])
    code, out = run("models", "import", str(tmp_path / "cut.ckpt"))
    assert code == 2 and "damaged PyTorch checkpoint" in out
    middle = len(data) // 2  # inside some tensor's record
    (tmp_path / "garbled.ckpt").write_bytes(data[:middle] + b"\xff" * 64 + data[middle + 64:])
    code, out = run("models", "import", str(tmp_path / "garbled.ckpt"))
    assert code == 2 and "damaged PyTorch checkpoint" in out and "fails its checksum" in out, out
    (tmp_path / "text.ckpt").write_text("hello")
    code, out = run("models", "import", str(tmp_path / "text.ckpt"))
    assert code == 2 and "not a PyTorch checkpoint" in out
    code, out = run("models", "import", str(tmp_path / "kicks_v7.ckpt"))
    assert code == 2 and "does not exist" in out
    code, out = run("models", "import", str(tmp_path / "text.ckpt"), "--name", "a/b")
    assert code == 2 and "invalid model name" in out
    assert not (home / "models").exists() or not list((home / "models").iterdir())


def test_a_full_disk_is_reported_and_leaves_nothing_behind(home, seed_ckpt, monkeypatch):
    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("tad_daemon.models.modelfile.save_file", full)
    code, out = run("models", "import", str(seed_ckpt[0]))
    assert code == 1 and "disk full" in out
    assert not list((home / "models").iterdir())  # not even the temporary file


# --- pull from a stand-in hub ------------------------------------------------------------------------------------

class Hub(ThreadingHTTPServer):
    """huggingface.co's file endpoint as hf_hub_download uses it: HEAD and GET
    /{repo}/resolve/{revision}/{filename}, with X-Repo-Commit, ETag, X-Linked-Etag (the sha256 of a Git LFS
    file), X-Linked-Size, Range requests, and 404s with X-Error-Code."""

    commit = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self):
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.files: dict[tuple[str, str], bytes] = {}
        self.corrupt: set[tuple[str, str]] = set()  # served with one byte changed
        self.cut_after: dict[tuple[str, str], int] = {}  # the next GET drops the connection after this many bytes
        self.log: list[tuple[str, str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HubHandler(BaseHTTPRequestHandler):
    def log_message(self, *_args):
        pass

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def fail(self, code: str):
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Repo-Commit", Hub.commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def serve(self, body: bool):
        hub: Hub = self.server
        hub.log.append((self.command, self.path, self.headers.get("Range")))
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/[^/]+/([^/]+)", urlsplit(self.path).path)
        if not m or m[1] not in {repo for repo, _ in hub.files}:
            return self.fail("RepoNotFound")
        key = (m[1], m[2])
        if key not in hub.files:
            return self.fail("EntryNotFound")
        data = hub.files[key]
        sha256 = hashlib.sha256(data).hexdigest()
        if key in hub.corrupt:
            data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
        start = int(re.fullmatch(r"bytes=(\d+)-", self.headers["Range"])[1]) if self.headers["Range"] else 0
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", Hub.commit)
        self.send_header("ETag", f'"{sha256}"')
        self.send_header("X-Linked-Etag", f'"{sha256}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if body:
            cut = hub.cut_after.pop(key, None) if self.command == "GET" else None
            self.wfile.write(data[start:] if cut is None else data[start:start + cut])  # then hang up


@pytest.fixture
def hub():
    server = Hub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def pull(hub: Hub, home: Path, *args: str, offline: bool = False) -> subprocess.CompletedProcess:
    """`tad-daemon models pull` as a user runs it, against the stand-in hub, with its own Hugging Face cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(home / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_OFFLINE="1" if offline else "0")
    return subprocess.run([sys.executable, "-m", "tad_daemon", "models", "pull", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_pull_verifies_resumes_converts_and_registers(home, hub, seed_ckpt):
    path, module = seed_ckpt
    hub.files[KICKS] = path.read_bytes()
    installed = home / "models" / "kick-seed.safetensors"

    hub.corrupt.add(KICKS)
    out = pull(hub, home, "kicks")
    assert out.returncode == 1 and "corrupt" in out.stderr and "run the command again" in out.stderr, out.stderr
    assert not installed.exists() and not list((home / "hf").rglob("blobs/*"))  # deleted, so a retry downloads

    hub.corrupt.clear()
    hub.cut_after[KICKS] = CHUNK + 12345  # the connection drops after the first chunk has been written
    hub.log.clear()
    out = pull(hub, home, "kicks")
    assert out.returncode == 0, out.stderr
    assert "installed kick-seed" in out.stdout and "CC BY-NC 4.0" in out.stdout
    gets = [rng for method, _, rng in hub.log if method == "GET"]
    assert gets == [None, f"bytes={CHUNK}-"]  # resumed where it broke off, not downloaded again
    config = read_entry(installed).config
    assert config.source == "imported: crlandsc/tiny-audio-diffusion-kicks kicks_v7.ckpt"
    assert (config.kind, config.license, config.default_sampler) == ("kick", "CC-BY-NC-4.0 (training data)",
                                                                      "dpmpp-2m")
    assert config.training["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert outputs_match(installed, module)

    mtime = installed.stat().st_mtime_ns
    out = pull(hub, home, "all")  # kicks is there already; the stand-in hub has no snares
    assert out.returncode == 1 and "kick-seed is already installed" in out.stdout
    assert "snares_v0.ckpt" in out.stderr and "not found" in out.stderr and "Traceback" not in out.stderr
    assert installed.stat().st_mtime_ns == mtime

    out = pull(hub, home, "hihats", offline=True)
    assert out.returncode == 1 and "HF_HUB_OFFLINE" in out.stderr and "Traceback" not in out.stderr


def test_a_checkpoint_asking_for_a_huge_allocation_is_refused_before_it_is_made(tmp_path):
    import pickle

    from tad_daemon.models import safe_load

    class Huge:
        def __reduce__(self):
            return (bytearray, (2 * 10**9,))  # torch's own restricted unpickler would allocate 2 GB

    plain = tmp_path / "plain.ckpt"
    plain.write_bytes(pickle.dumps(Huge(), protocol=2))  # 35 bytes
    zipped = tmp_path / "zipped.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": Huge()}, zipped)
    for path in (plain, zipped):  # refused from the opcodes alone, before any unpickler runs
        with pytest.raises(safe_load.UnsafeCheckpoint, match="bytearray of 2,000,000,000 bytes"):
            safe_load.load_checkpoint(path)


def test_a_plain_pickle_with_a_payload_gets_the_same_refusal_as_a_zip_one(tmp_path):
    import pickle

    from tad_daemon.models import safe_load

    marker = tmp_path / "pwned"
    plain = tmp_path / "plain.ckpt"
    plain.write_bytes(pickle.dumps(Payload(os.system, f"touch {marker}"), protocol=2))
    zipped = tmp_path / "zipped.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hook": Payload(os.system, f"touch {marker}")}, zipped)
    for path in (plain, zipped):
        with pytest.raises(safe_load.UnsafeCheckpoint, match=r"refused: it names \w+\.system, which can run code"):
            safe_load.load_checkpoint(path)
    assert not marker.exists()
