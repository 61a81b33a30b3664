"""Daemon memory benchmark: resident memory (RSS) of an engine with 4 models loaded, as the daemon holds them,
per preset and backend, each in its own process (target: <= 1 GB with the 4 default models, CPU).

    python bench/memory.py                                   # cpu-micro (bundled preset) and seed architecture
    python bench/memory.py --presets cpu-small --backends onnx --batch 16 --json out/memory.json

For each configuration a process loads 4 models (random weights, distinct files: kick, snare, hat, perc),
waits for the ONNX Runtime nets, then generates one one-shot per model and then a batch per model (what
the daemon's pool and merged requests do). RSS is read after imports, after loading, after the one-shots
and after the batches; peak is the process's peak RSS. ONNX exports are made beforehand in another process
(they are one-time work, and their peak is reported separately as export_peak_mb).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tad_daemon  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY, read when torch loads)

NAMES = ("kick", "snare", "hat", "perc")


def rss_mb() -> float:
    """Current RSS (Linux); elsewhere the peak, which is what the OS offers without extra packages."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_mb()


def peak_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes


def child(spec: dict) -> dict:
    row = {"imports_mb": rss_mb()}
    import torch

    from bench.common import preset_model
    from tad_daemon.engine import Engine

    torch.set_num_threads(spec["threads"])
    models = Path(spec["cache"]) / "models"
    models.mkdir(parents=True, exist_ok=True)
    entries = [preset_model(spec["preset"], models, seed=i) for i in range(len(NAMES))]
    engine = Engine("cpu", "fp32", backend=spec["backend"], cache_dir=spec["cache"])
    row["imports_mb"] = rss_mb()
    for name, entry in zip(NAMES, entries):
        entry = type(entry)(name, entry.path, entry.config)
        engine.load(entry, wait=True)
    row["backends"] = sorted({m.backend for m in engine.models.values()})
    row["loaded_mb"] = rss_mb()
    if spec["prepare_only"]:
        row["peak_mb"] = peak_mb()
        return row
    for name in NAMES:
        engine.generate(name, 1, seed=0, steps=spec["steps"])
    row["after_oneshots_mb"] = rss_mb()
    for name in NAMES:
        engine.generate(name, spec["batch"], seed=0, steps=spec["steps"])
    row["after_batches_mb"] = rss_mb()
    row["peak_mb"] = peak_mb()
    return row


def run_child(spec: dict) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench.common import BENCH_CACHE, machine, preset_model

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="cpu-micro,tiny-audio-diffusion")
    p.add_argument("--backends", default="torch,onnx")
    p.add_argument("--batch", type=int, default=4, help="batch generated per model after the one-shots")
    p.add_argument("--steps", type=int, default=2, help="steps per one-shot (memory does not depend on it)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", type=Path, default=BENCH_CACHE)
    p.add_argument("--json", type=Path)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    info = machine()
    print(f"# RSS with {len(NAMES)} models loaded; {info['cpu']}; torch {info['torch']}, "
          f"onnxruntime {info['onnxruntime']}; {args.threads} threads", flush=True)
    print(f"{'preset':22s} {'backend':7s} {'imports':>8s} {'loaded':>8s} {'1-shots':>8s} "
          f"{'batch ' + str(args.batch):>8s} {'peak':>8s}  (MB)", flush=True)
    rows = []
    for preset in args.presets.split(","):
        for i in range(len(NAMES)):  # the model files, made here so that building them does not count
            preset_model(preset, args.cache / "models", seed=i)
        for backend in args.backends.split(","):
            spec = dict(preset=preset, backend=backend, batch=args.batch, steps=args.steps, threads=args.threads,
                        cache=str(args.cache), prepare_only=False)
            export_peak = None
            if backend == "onnx":  # the one-time exports, in a process of their own
                prepared = run_child(dict(spec, prepare_only=True))
                export_peak = prepared.get("peak_mb")
            r = dict(preset=preset, backend=backend, batch=args.batch, **run_child(spec), export_peak_mb=export_peak)
            rows.append(r)
            if "error" in r:
                print(f"{preset:22s} {backend:7s} failed:\n{r['error']}", flush=True)
                continue
            print(f"{preset:22s} {backend:7s} {r['imports_mb']:8.0f} {r['loaded_mb']:8.0f} "
                  f"{r['after_oneshots_mb']:8.0f} {r['after_batches_mb']:8.0f} {r['peak_mb']:8.0f}  "
                  f"served by {'/'.join(r['backends'])}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(machine=info, threads=args.threads, rows=rows,
                                             command=" ".join(["python", *sys.argv])), indent=2))


if __name__ == "__main__":
    main()
