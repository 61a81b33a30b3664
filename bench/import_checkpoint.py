"""Importing a seed checkpoint: seconds and peak memory of `tad-daemon models import`, side by side with the
plain way (torch.load of the whole file, weights_only, no memory map), in one run.

    python bench/import_checkpoint.py                      # builds a 509 MB checkpoint with the seed's layout
    python bench/import_checkpoint.py --ckpt kicks_v7.ckpt # or uses a real one

The built checkpoint has the seed's exact layout and size: the U-Net (model.net, shared by model.diffusion
and model.sampler), the EMA wrapper (ema_model: a copy; online_model: the model itself, as ema_pytorch
held it), AdamW's two moments, and Lightning's bookkeeping. Each measurement runs in a fresh process;
peak memory is that process's maximum resident set (ru_maxrss), which includes the mapped file pages
it touched.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tad_daemon.models.adp import DiffusionModel, UNetV0  # noqa: E402
from tad_daemon.models.presets import architecture  # noqa: E402


class EMA(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.online_model = model
        self.ema_model = copy.deepcopy(model)
        self.register_buffer("initted", torch.tensor([1.0]))
        self.register_buffer("step", torch.tensor([100000]))


def build(path: Path) -> None:
    torch.manual_seed(0)
    module = nn.Module()
    module.model = DiffusionModel(net_t=UNetV0, in_channels=2, **architecture("tiny-audio-diffusion"))
    module.model_ema = EMA(module.model)
    opt = torch.optim.AdamW(module.model.parameters(), lr=1e-4, betas=(0.95, 0.999), eps=1e-6, weight_decay=1e-3)
    sum(p.square().sum() for p in module.model.parameters()).backward()
    opt.step()
    torch.save({"epoch": 1, "global_step": 100000, "pytorch-lightning_version": "1.9.4",
                "state_dict": module.state_dict(), "loops": {}, "callbacks": {},
                "optimizer_states": [opt.state_dict()], "lr_schedulers": []}, path)


PLAIN = """
import sys, torch
from tad_daemon.models.modelfile import ModelConfig, save_model
from tad_daemon.models.presets import architecture
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
p = "model_ema.ema_model.net."
weights = {k[len(p):]: v for k, v in ckpt["state_dict"].items() if k.startswith(p)}
arch = architecture("tiny-audio-diffusion")
save_model(sys.argv[2], weights, ModelConfig(arch=arch, preset="tiny-audio-diffusion"))
"""


def measure(cmd: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak resident MB) of one command in a fresh process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:]); dt = time.perf_counter() - t; "
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "print(dt, peak); sys.exit(r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{cmd} failed:\n{out.stderr}")
    seconds, peak_kb = out.stdout.split()[-2:]
    return float(seconds), float(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="a seed checkpoint (default: build one with the seed's layout)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = Path(args.ckpt) if args.ckpt else tmp / "kicks_v7.ckpt"
        if not args.ckpt:
            build(ckpt)
        size = ckpt.stat().st_size / 1e6
        env = {**os.environ, "TAD_DAEMON_HOME": str(tmp / "home"), "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        rows = {}
        cmd_ours = [sys.executable, "-m", "tad_daemon", "models", "import", str(ckpt), "--name", "bench", "--force"]
        cmd_plain = [sys.executable, "-c", PLAIN, str(ckpt), str(tmp / "plain.safetensors")]
        for label, cmd in (("plain torch.load", cmd_plain), ("tad-daemon models import", cmd_ours)):
            rows[label] = measure(cmd, env)
        baseline = [sys.executable, "-c", "import torch, tad_daemon.models.registry"]
        rows["python + torch import only"] = measure(baseline, env)
    print(f"checkpoint: {args.ckpt or 'built, seed layout'} {size:.0f} MB; torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'':28s} {'seconds':>8s} {'peak MB':>8s}")
    for label, (seconds, peak) in rows.items():
        print(f"{label:28s} {seconds:8.1f} {peak:8.0f}")
    plain, ours = rows["plain torch.load"], rows["tad-daemon models import"]
    print(f"peak memory, ours / plain: {ours[1] / plain[1]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
