"""Sampler benchmark: seconds per one-shot and distance to a 250-step reference, side by side with the
seed's 50-step VSampler, from the same noise, in one run.

    python bench/samplers.py                                  # seed architecture (random weights), CPU
    python bench/samplers.py --model kick --configs dpmpp-2m:karras:12,vsampler:linear:50
    python bench/samplers.py --json out/samplers.json

Distances only mean something for a trained model (--model NAME or FILE); with random weights the
timing columns are still valid. Distance: multi-resolution STFT (spectral convergence + log-magnitude L1
at FFT sizes 512/1024/2048), lower is closer.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tad_daemon import sampling  # noqa: E402
from tad_daemon.models.adp import VSampler  # noqa: E402
from tad_daemon.models.network import build_unet  # noqa: E402
from tad_daemon.models.presets import LENGTH, architecture  # noqa: E402
from tad_daemon.models.registry import load_net, model_folders, read_entry, scan  # noqa: E402


def mrstft(x: torch.Tensor, y: torch.Tensor, ffts=(512, 1024, 2048)) -> float:
    """Multi-resolution STFT distance between two (channels, frames) signals."""
    total = 0.0
    for n in ffts:
        win = torch.hann_window(n)
        sx = torch.stft(x, n, n // 4, window=win, return_complex=True).abs().clamp_min(1e-7)
        sy = torch.stft(y, n, n // 4, window=win, return_complex=True).abs().clamp_min(1e-7)
        sc = torch.linalg.norm(sy - sx) / torch.linalg.norm(sy)
        mag = (sy.log() - sx.log()).abs().mean()
        total += float(sc + mag)
    return total / len(ffts)


def load(args) -> tuple[torch.nn.Module, torch.nn.Module, str, bool]:
    """(our net with fused attention, the seed's original net with the same weights, label, trained?)"""
    if args.model:
        path = Path(args.model)
        entry = read_entry(path) if path.is_file() else scan(model_folders(args.models_dir))[0].get(args.model)
        if entry is None:
            sys.exit(f"unknown model {args.model}")
        ours = load_net(entry, torch.device("cpu"))
        arch, label, trained = entry.config.arch, f"model {entry.name} ({entry.config.preset})", True
    else:
        torch.manual_seed(0)
        arch = architecture(args.preset)
        ours = build_unet(arch).eval()
        label, trained = f"preset {args.preset}, random weights", False
    seed_net = build_unet(arch, fused_attention=False).eval()
    seed_net.load_state_dict(ours.state_dict())
    return ours, seed_net, label, trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny-audio-diffusion")
    p.add_argument("--model", help="a model name (from the models folders) or a model file")
    p.add_argument("--models-dir", default=None)
    p.add_argument("--configs", default="dpmpp-2m:karras:10,dpmpp-2m:karras:12,dpmpp-2m:karras:15",
                   help="sampler:schedule:steps, comma separated; the seed's vsampler:linear:50 is always added")
    p.add_argument("--reference-steps", type=int, default=250)
    p.add_argument("--noises", type=int, default=2, help="how many noises (one-shots) per configuration")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ours, seed_net, label, trained = load(args)
    noises = sampling.noise(list(range(args.noises)), 2, LENGTH)

    def run(net, sampler: str, schedule: str, steps: int) -> tuple[list[torch.Tensor], list[float]]:
        outs, secs = [], []
        for e in noises:
            t0 = time.perf_counter()
            with torch.inference_mode():
                if net is seed_net:  # the seed's own code path: audio-diffusion-pytorch's VSampler
                    y = VSampler(seed_net)(e[None].clone(), num_steps=steps)
                else:
                    y = sampling.run(sampler, net, e[None].clone(), sampling.times_for(schedule, steps))
            secs.append(time.perf_counter() - t0)
            outs.append(y[0])
        return outs, secs

    print(f"# {label}; {torch.get_num_threads()} threads; {platform.processor() or platform.machine()}")
    print(f"reference: dpmpp-2m, {args.reference_steps} steps", flush=True)
    ref, _ = run(ours, "dpmpp-2m", "karras", args.reference_steps)
    rows = []
    configs = [("seed vsampler", "vsampler", "linear", 50)] + [
        ("ours", *c.split(":")[:2], int(c.split(":")[2])) for c in args.configs.split(",")]
    for who, sampler, schedule, steps in configs:
        outs, secs = run(seed_net if who.startswith("seed") else ours, sampler, schedule, steps)
        dist = statistics.mean(mrstft(o, r) for o, r in zip(outs, ref))
        rows.append(dict(who=who, sampler=sampler, schedule=schedule, steps=steps,
                         seconds=statistics.median(secs), distance=dist))
        print(f"  {who:14s} {sampler:9s} {schedule:7s} {steps:4d} steps  {statistics.median(secs):7.2f} s/one-shot"
              f"  distance {dist:.4f}", flush=True)
    base = rows[0]
    print("\nratios against the seed's 50-step VSampler (same run, same noise):")
    for r in rows[1:]:
        r["speedup"] = base["seconds"] / r["seconds"]
        r["distance_ratio"] = r["distance"] / base["distance"]
        print(f"  {r['sampler']}:{r['schedule']}:{r['steps']:<4d} {r['speedup']:5.1f}x faster, "
              f"distance {r['distance_ratio']:.2f}x of the seed's")
    if not trained:
        print("\nnote: random weights; the distances say nothing about sound quality.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(label=label, trained=trained, threads=torch.get_num_threads(),
                                             reference_steps=args.reference_steps, noises=args.noises,
                                             date=time.strftime("%Y-%m-%d"), rows=rows), indent=2))


if __name__ == "__main__":
    main()
