"""Sampler benchmark: seconds per one-shot and distance to a 250-step reference, side by side with the
seed's 50-step VSampler, from the same noise, in one run.

    python bench/samplers.py                                  # seed architecture (random weights), CPU
    python bench/samplers.py --model kick --configs dpmpp-2m:karras:12,vsampler:linear:50
    python bench/samplers.py --backend torch --json out/samplers.json

The seed's row is always its own code: a-unet's original attention, fp32 torch, audio-diffusion-pytorch's
VSampler. Our rows run on --backend (default: onnx, ONNX Runtime, as the engine does on a CPU; torch: our
torch net with fused attention); the reference runs on the same backend as our rows.

Distances only mean something for a trained model (--model NAME or FILE); with random weights the
timing columns are still valid. Distance: multi-resolution STFT (spectral convergence + log-magnitude L1
at FFT sizes 512/1024/2048), lower is closer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tad_daemon  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY, read when torch loads)

# isort: split
import torch  # noqa: E402

from bench.common import BENCH_CACHE, machine, mrstft, preset_model  # noqa: E402
from tad_daemon import sampling  # noqa: E402
from tad_daemon.models import onnxrt  # noqa: E402
from tad_daemon.models.adp import VSampler  # noqa: E402
from tad_daemon.models.network import build_unet  # noqa: E402
from tad_daemon.models.presets import LENGTH  # noqa: E402
from tad_daemon.models.registry import load_net, model_folders, read_entry, scan  # noqa: E402


def load(args) -> tuple:
    """(our net on the chosen backend, the seed's original net with the same weights, label, trained?)"""
    if args.model:
        path = Path(args.model)
        entry = read_entry(path) if path.is_file() else scan(model_folders(args.models_dir))[0].get(args.model)
        if entry is None:
            sys.exit(f"unknown model {args.model}")
        label, trained = f"model {entry.name} ({entry.config.preset})", True
    else:
        (BENCH_CACHE / "models").mkdir(parents=True, exist_ok=True)
        entry = preset_model(args.preset, BENCH_CACHE / "models")
        label, trained = f"preset {args.preset}, random weights", False
    ours = load_net(entry, torch.device("cpu"))
    seed_net = build_unet(entry.config.arch, fused_attention=False).eval()
    seed_net.load_state_dict(ours.state_dict())
    if args.backend == "onnx":
        ours = onnxrt.prepare(entry, ours, BENCH_CACHE, torch.get_num_threads())
    return ours, seed_net, label, trained


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny-audio-diffusion")
    p.add_argument("--model", help="a model name (from the models folders) or a model file")
    p.add_argument("--models-dir", default=None)
    p.add_argument("--configs", default="dpmpp-2m:logsnr:10,dpmpp-2m:logsnr:12,dpmpp-2m:logsnr:15,dpmpp-2m:karras:12",
                   help="sampler:schedule:steps, comma separated; the seed's vsampler:linear:50 is always added")
    p.add_argument("--reference-steps", type=int, default=250, help="0: timings only, no distances")
    p.add_argument("--noises", type=int, default=2, help="how many noises (one-shots) per configuration")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx", help="what runs our samplers")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ours, seed_net, label, trained = load(args)
    noises = sampling.noise(list(range(args.noises)), 2, LENGTH)

    def one(net, sampler: str, schedule: str, steps: int, e: torch.Tensor) -> tuple[torch.Tensor, float]:
        t0 = time.perf_counter()
        with torch.inference_mode():
            if net is seed_net:  # the seed's own code path: audio-diffusion-pytorch's VSampler
                y = VSampler(seed_net)(e[None].clone(), num_steps=steps)
            else:
                y = sampling.run(sampler, net, e[None].clone(), sampling.times_for(schedule, steps))
        return y[0], time.perf_counter() - t0

    info = machine()
    print(f"# {label}; ours on {args.backend}; {torch.get_num_threads()} threads; {info['cpu']}; "
          f"torch {info['torch']}, onnxruntime {info['onnxruntime']}")
    if args.reference_steps:
        print(f"reference: dpmpp-2m, {args.reference_steps} steps", flush=True)
    ref = [one(ours, "dpmpp-2m", "karras", args.reference_steps, e)[0] if args.reference_steps else None
           for e in noises]
    configs = [("seed vsampler", "vsampler", "linear", 50)] + [
        ("ours", *c.split(":")[:2], int(c.split(":")[2])) for c in args.configs.split(",")]
    outs = {c: [] for c in configs}
    secs = {c: [] for c in configs}
    for i, e in enumerate(noises):  # in turns, noise by noise: load from other programs hits all alike
        for c in configs:
            who, sampler, schedule, steps = c
            y, dt = one(seed_net if who.startswith("seed") else ours, sampler, schedule, steps, e)
            outs[c].append(y)
            secs[c].append(dt)
        print(f"  noise {i + 1}/{len(noises)} done", file=sys.stderr, flush=True)
    rows = []
    for c in configs:
        who, sampler, schedule, steps = c
        dist = statistics.mean(mrstft(o, r) for o, r in zip(outs[c], ref)) if args.reference_steps else None
        rows.append(dict(who=who, backend="torch (seed)" if who.startswith("seed") else args.backend,
                         sampler=sampler, schedule=schedule, steps=steps,
                         seconds=statistics.median(secs[c]), distance=dist))
        print(f"  {who:14s} {rows[-1]['backend']:12s} {sampler:9s} {schedule:7s} {steps:4d} steps  "
              f"{rows[-1]['seconds']:7.2f} s/one-shot" + (f"  distance {dist:.4f}" if dist is not None else ""),
              flush=True)
    base = rows[0]
    print("\nratios against the seed's 50-step VSampler (same run, same noise):")
    for r in rows[1:]:
        r["speedup"] = base["seconds"] / r["seconds"]
        r["distance_ratio"] = r["distance"] / base["distance"] if base["distance"] is not None else None
        print(f"  {r['sampler']}:{r['schedule']}:{r['steps']:<4d} {r['speedup']:5.1f}x faster" +
              (f", distance {r['distance_ratio']:.2f}x of the seed's" if r["distance_ratio"] is not None else ""))
    if not trained:
        print("\nnote: random weights; the distances say nothing about sound quality.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(label=label, trained=trained, threads=torch.get_num_threads(),
                                             backend=args.backend, machine=info, command=" ".join(sys.argv),
                                             reference_steps=args.reference_steps, noises=args.noises,
                                             date=time.strftime("%Y-%m-%d"), rows=rows), indent=2))


if __name__ == "__main__":
    main()
