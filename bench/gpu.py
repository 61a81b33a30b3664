"""GPU benchmark: every GPU figure of docs/benchmarks.md in one run, written as JSON into a folder.

    python bench/gpu.py out/                       # NVIDIA GPU, seed architecture, everything (~5-8 min)
    python bench/gpu.py out/ --quick               # fewer repeats and training steps (~2-3 min)
    python bench/gpu.py out/ --device cpu --quick --preset cpu-small   # proves the script runs, on a CPU

Measured, each in its own try/except (a failure is recorded and the rest goes on; the JSON is rewritten
after every measurement, so a run cut short keeps what it had), within a total time budget (--budget):
  ours      our default sampler and steps (dpmpp-2m, 12), fused SDPA attention, bf16 (fp16 where bf16 is
            missing) autocast, eager: one one-shot and a batch of 16 (target: <= 50 ms / <= 250 ms on an H100)
  graphs    the same with the U-Net's forward captured as a CUDA graph per batch size (fixed shapes)
  seed      the seed's own code: a-unet's original attention, fp32, audio-diffusion-pytorch's VSampler, 50 steps
  memory    torch.cuda.max_memory_allocated for each inference run above
  quality   STFT distance and max difference of our bf16 one-shot to the same run in fp32 (same noise)
  training  the trainer's low-memory mode on the seed architecture (micro-batch 1, accumulation to 32):
            peak allocated (target: <= 2.0 GB, stretch <= 1.0 GB) and throughput, plus the normal mode beside
            it; each run in its own process through the trainer's public train() on a small synthetic data set
  engine    the daemon's own path, request -> WAV file (Engine.generate, post-processing, the sample folder's
            atomic write), one one-shot and 16, with and without the engine's CUDA graphs, for the preset's
            model and each --models (e.g. the bundled snare and its distilled student); peak memory
  compile   torch.compile of the forward (compile seconds against the eager time), if budget is left
Latencies are medians over repeats after warm-up runs (warm-up, graph capture and compilation excluded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tad_daemon  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY, read when torch loads)

# isort: split
import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import machine, mrstft, preset_model  # noqa: E402
from tad_daemon import sampling  # noqa: E402
from tad_daemon.models.adp import VSampler  # noqa: E402
from tad_daemon.models.device import autocast_dtype  # noqa: E402
from tad_daemon.models.graphs import GraphedNet  # noqa: E402
from tad_daemon.models.network import build_unet  # noqa: E402
from tad_daemon.models.registry import load_net  # noqa: E402

SAMPLER, STEPS, SEED_STEPS = "dpmpp-2m", 12, 50


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def autocast_net(net, dtype, device):
    def f(x, t):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            return net(x, t)
    return f


def timed(fn, device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


class Run:
    """The results so far, written to disk after every measurement; the time budget."""

    def __init__(self, args):
        self.args = args
        self.start = time.perf_counter()
        self.path = args.out / f"gpu-{args.device.split(':')[0]}.json"
        self.results: dict = {"machine": machine(), "command": " ".join(["python", *sys.argv]),
                              "preset": args.preset, "quick": args.quick, "budget_s": args.budget,
                              "measurements": {}}
        self.save()

    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.start)

    def save(self) -> None:
        self.results["elapsed_s"] = time.perf_counter() - self.start
        self.args.out.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".part")
        tmp.write_text(json.dumps(self.results, indent=2))
        tmp.replace(self.path)

    def measure(self, name: str, needs_s: float, fn) -> None:
        if self.left() < needs_s:
            log(f"{name}: skipped, {self.left():.0f} s of budget left (needs ~{needs_s:.0f} s)")
            self.results["measurements"][name] = {"skipped": f"time budget ({self.left():.0f} s left)"}
            self.save()
            return
        log(f"{name} ...")
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as e:  # record and go on: a partial JSON beats none
            traceback.print_exc()
            result = {"error": f"{type(e).__name__}: {e}"}
        result["wall_s"] = time.perf_counter() - t0
        self.results["measurements"][name] = result
        self.save()
        log(f"{name}: {json.dumps({k: v for k, v in result.items() if not isinstance(v, (list, dict))})}")


def inference(run: Run, device: torch.device) -> None:
    args = run.args
    folder = Path(tempfile.mkdtemp(prefix="tad-gpu-"))
    entry = preset_model(args.preset, folder)
    length = entry.config.length
    dtype = autocast_dtype(device, "auto")
    ours = load_net(entry, device)
    batches = [1, args.batch]
    reps, warm = (3, 1) if args.quick else (args.repeats, 3)
    noise = {b: sampling.noise(list(range(b)), 2, length).to(device) for b in batches}
    times = sampling.times_for("logsnr", STEPS)
    run.results["settings"] = dict(sampler=SAMPLER, steps=STEPS, schedule="logsnr",
                                   autocast=str(dtype).replace("torch.", "") if dtype else "fp32",
                                   seed_sampler="audio-diffusion-pytorch VSampler", seed_steps=SEED_STEPS,
                                   seed_precision="fp32", batches=batches, length=length,
                                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                                   matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)

    def sample_with(net, b):
        return lambda: sampling.run(SAMPLER, net, noise[b].clone(), times)

    def latencies(net_for_batch, prefix: str) -> dict:
        out = {}
        for b in batches:
            reset_peak(device)
            with torch.inference_mode():
                secs = timed(sample_with(net_for_batch(b), b), device, reps, warm)
            out[f"batch{b}_s"] = statistics.median(secs)
            out[f"batch{b}_all_s"] = secs
            out[f"batch{b}_peak_allocated_mb"] = peak_mb(device)
        return out

    eager = autocast_net(ours, dtype, device)
    run.measure("ours", 20, lambda: latencies(lambda b: eager, "ours"))

    def graphs() -> dict:
        if device.type != "cuda":
            return {"skipped": "CUDA graphs need a CUDA device"}
        g = GraphedNet(ours, dtype, sizes=tuple(batches))  # the engine's own, captured on first use
        t0 = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                g(noise[b], torch.full((b,), 0.5, device=device))
        sync(device)
        capture = time.perf_counter() - t0
        return dict(capture_s=capture, **latencies(lambda b: g, "graphs"))

    run.measure("graphs", 30, graphs)

    def seed() -> dict:
        net = build_unet(entry.config.arch, fused_attention=False).eval().requires_grad_(False)
        net.load_state_dict(ours.state_dict())
        net.to(device)
        sampler = VSampler(net)
        out = {}
        for b in batches:
            reset_peak(device)
            with torch.inference_mode():
                secs = timed(lambda b=b: sampler(noise[b].clone(), num_steps=SEED_STEPS), device,
                             max(1, reps // 2), 1)
            out[f"batch{b}_s"] = statistics.median(secs)
            out[f"batch{b}_all_s"] = secs
            out[f"batch{b}_peak_allocated_mb"] = peak_mb(device)
        return out

    run.measure("seed", 60, seed)

    def quality() -> dict:
        with torch.inference_mode():
            fp32 = sampling.run(SAMPLER, ours, noise[1].clone(), times)[0].float().cpu()
            half = sampling.run(SAMPLER, eager, noise[1].clone(), times)[0].float().cpu()
        return dict(mrstft_autocast_vs_fp32=mrstft(half, fp32),
                    max_abs_autocast_vs_fp32=float((half - fp32).abs().max()), peak_abs_fp32=float(fp32.abs().max()))

    run.measure("quality", 10, quality)

    def compiled() -> dict:
        net = torch.compile(ours)
        f = autocast_net(net, dtype, device)
        x, t = noise[1], torch.full((1,), 0.5, device=device)
        with torch.inference_mode():
            t0 = time.perf_counter()
            f(x, t)
            sync(device)
            compile_s = time.perf_counter() - t0
            comp = timed(lambda: f(x, t), device, max(reps, 5), 2)
            eag = timed(lambda: eager(x, t), device, max(reps, 5), 2)
        return dict(compile_s=compile_s, forward_compiled_s=statistics.median(comp),
                    forward_eager_s=statistics.median(eag), speedup=statistics.median(eag) / statistics.median(comp))

    for model in [str(entry.path), *args.models]:
        for graphs in (False, True):
            run.measure(f"engine-{Path(model).stem}-{'graphs' if graphs else 'eager'}", 30,
                        lambda model=model, graphs=graphs: engine_path(model, graphs, device, batches, reps, warm))

    if args.compile:
        run.measure("compile", 150, compiled)

    ms = run.results["measurements"]
    summary = {}
    for name in ("ours", "graphs", "seed", *(k for k in ms if k.startswith("engine-"))):
        for b in batches:
            v = ms.get(name, {}).get(f"batch{b}_s")
            if v is not None:
                summary[f"{name}_batch{b}_ms"] = v * 1000
    for b in batches:
        seed_s = ms.get("seed", {}).get(f"batch{b}_s")
        for name in ("ours", "graphs"):
            ours_s = ms.get(name, {}).get(f"batch{b}_s")
            if seed_s and ours_s:
                summary[f"{name}_batch{b}_speedup_vs_seed"] = seed_s / ours_s
    run.results["summary"] = summary
    run.save()


def engine_path(model: str, graphs: bool, device: torch.device, batches: list[int], reps: int, warm: int) -> dict:
    """Request -> file as the daemon's worker does it: the engine's sounds, post-processed and written."""
    from tad_daemon.config import load_config
    from tad_daemon.models.registry import model_folders, read_entry, scan
    from tad_daemon.workspace import Workspace

    entry = read_entry(Path(model)) if model.endswith(".safetensors") else scan(model_folders(None))[0][model]
    folder = Path(tempfile.mkdtemp(prefix="tad-gpu-engine-"))
    cfg = load_config(overrides={"paths.samples": str(folder / "samples"), "paths.data": str(folder / "data"),
                                 "device.device": str(device), "device.cuda_graphs": graphs})
    ws = Workspace(cfg)
    engine = ws.make_engine()
    loaded = engine.load(entry, wait=True)
    out = {"model": entry.name, "runs_on": loaded.describe(), "steps": entry.config.default_steps,
           "sampler": entry.config.default_sampler}
    for b in batches:
        def request(b=b) -> None:
            for shot in engine.generate(entry.name, b, seed=1):
                ws.save(shot)

        reset_peak(device)
        secs = timed(request, device, reps, warm)
        out[f"batch{b}_s"] = statistics.median(secs)
        out[f"batch{b}_all_s"] = secs
        out[f"batch{b}_peak_allocated_mb"] = peak_mb(device)
    ws.close()
    return out


# -- training: the trainer's public train() in a child process (its peak memory is its own) -----------------

def synthetic_data(folder: Path, n: int = 8) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        t = np.arange(32768) / 44100
        tone = np.sin(2 * np.pi * (60 + 200 * np.exp(-t * 30)) * t) * np.exp(-t * 8)
        hit = (tone + 0.2 * rng.standard_normal(t.size) * np.exp(-t * 40)) * 0.5
        sf.write(folder / f"hit{i}.wav", np.stack([hit, hit], 1).astype(np.float32), 44100)


def train_child(spec: dict) -> dict:
    from tad_daemon.training.settings import TrainConfig
    from tad_daemon.training.train import train
    device = torch.device(spec["device"])
    root = Path(spec["folder"])
    synthetic_data(root / "data")
    steps_seen: list[tuple[int, float]] = []

    def progress(event: dict) -> None:
        if event.get("event") == "step":
            steps_seen.append((event["step"], time.perf_counter()))

    cfg = TrainConfig(name="bench", data=str(root / "data"), out=str(root / f"run-{spec['label']}"),
                      preset=spec["preset"], micro_batch=spec["micro_batch"], accumulation=spec["accumulation"],
                      steps=spec["steps"], device=spec["device"], low_memory=spec["low_memory"],
                      checkpoint_every=10_000, log_every=1, threads=spec.get("threads", 0))
    reset_peak(device)
    t0 = time.perf_counter()
    result = train(cfg, resume=False, progress=progress)
    total = time.perf_counter() - t0
    # Throughput from the steps after the first (start-up and the first step's allocations excluded).
    if len(steps_seen) >= 2:
        per_step = (steps_seen[-1][1] - steps_seen[0][1]) / (len(steps_seen) - 1)
    else:
        per_step = total / max(1, result.step)
    row = dict(label=spec["label"], low_memory=spec["low_memory"], micro_batch=spec["micro_batch"],
               accumulation=spec["accumulation"], steps=result.step, seconds_per_step=per_step,
               samples_per_s=spec["micro_batch"] * spec["accumulation"] / per_step, total_s=total)
    if device.type == "cuda":
        row["peak_allocated_mb"] = peak_mb(device)
        row["peak_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    else:
        import resource

        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def training(run: Run) -> None:
    args = run.args
    steps = 2 if args.quick else 6
    accumulation = 2 if args.device == "cpu" and args.quick else 32
    configs = [dict(label="low-memory", low_memory=True, micro_batch=1, accumulation=accumulation),
               dict(label="normal", low_memory=False, micro_batch=4, accumulation=max(1, accumulation // 4))]
    folder = Path(tempfile.mkdtemp(prefix="tad-gpu-train-"))
    for cfg in configs:
        spec = dict(cfg, preset=args.preset, steps=steps, device=args.device, folder=str(folder),
                    threads=args.threads)

        def one(spec=spec) -> dict:
            done = subprocess.run([sys.executable, __file__, str(args.out), "--train-child", json.dumps(spec)],
                                  capture_output=True, text=True, timeout=max(30, run.left()))
            if done.returncode:
                return {"error": done.stderr[-3000:]}
            return json.loads(done.stdout.strip().splitlines()[-1])

        run.measure(f"training-{cfg['label']}", 60 if args.device != "cpu" else 30, one)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="folder for gpu-<device>.json")
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", default="tiny-audio-diffusion")
    p.add_argument("--batch", type=int, default=16, help="the big batch (default 16)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="fewer repeats and training steps")
    p.add_argument("--budget", type=float, default=540, help="seconds for everything; later steps are skipped")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                   help="also measure torch.compile (last, only if budget is left)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--models", nargs="*", default=["snare"],
                   help="models (names or files) also timed through the engine's request -> file path")
    p.add_argument("--only", choices=("inference", "training"), help="run one half only")
    p.add_argument("--train-child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.train_child:
        print(json.dumps(train_child(json.loads(args.train_child))), flush=True)
        return
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --device cpu to check the script itself")
    run = Run(args)
    log(f"{run.results['machine']}; writing {run.path}")
    if args.only != "training":
        try:
            inference(run, device)
        except Exception as e:  # e.g. the model could not even be built: record it, still try training
            traceback.print_exc()
            run.results["inference_error"] = f"{type(e).__name__}: {e}"
            run.save()
    if args.only != "inference":
        training(run)
    run.save()
    log(f"done in {time.perf_counter() - run.start:.0f} s: {run.path}")
    for k, v in run.results.get("summary", {}).items():
        print(f"  {k}: {v:.1f}")
    for k, v in run.results["measurements"].items():
        if k.startswith("training"):
            if "error" in v or "skipped" in v:
                print(f"  {k}: {v.get('skipped') or v['error'][-300:]}")
            else:
                peak = v.get("peak_allocated_mb", v.get("peak_rss_mb"))
                print(f"  {k}: peak {peak:.0f} MB, {v['seconds_per_step']:.2f} s per optimiser step")


if __name__ == "__main__":
    main()
