"""Training benchmark: time per training step and peak memory, per architecture, micro-batch and low-memory
mode, side by side in one run. Each configuration runs in its own process, so peak memory is its own.

    python bench/training.py                                   # CPU: seed architecture and cpu-micro
    python bench/training.py --threads 1 --out out/            # writes out/training-cpu.json
    python bench/training.py --device cuda --out out/          # NVIDIA GPU: peak torch.cuda.max_memory_allocated
    python bench/training.py --presets cpu-small --batches 1,4,8 --modes off

What is timed is the trainer's own code (v-diffusion loss, AdamW as the trainer builds it, the EMA, gradient
checkpointing and autocast as in low-memory mode) on random one-shots of 32768 samples:
  micro   seconds per forward + backward pass of one micro-batch
  update  seconds per optimiser step + EMA update (once per effective batch)
  step32  seconds per optimiser step at the default effective batch of 32: micro * 32 / micro-batch + update
Peak memory: the process's peak RSS on the CPU (minus nothing: `base` is the RSS after imports, for
reference); on CUDA, torch.cuda.max_memory_allocated over the whole process (model, optimiser, EMA and
activations), and max_memory_reserved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tad_daemon.models.network import build_unet, parameter_count  # noqa: E402
from tad_daemon.models.presets import LENGTH, architecture  # noqa: E402
from tad_daemon.training.recipe import EMA, checkpoint_blocks, v_loss  # noqa: E402
from tad_daemon.training.run import amp_dtype, make_optimizer  # noqa: E402
from tad_daemon.training.settings import TrainConfig  # noqa: E402

BATCH = 32


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one(spec: dict) -> dict:
    """Measure one configuration in this process."""
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    base_rss = peak_rss_mb()
    cfg = TrainConfig(name="bench", data="", out="", preset=spec["preset"], micro_batch=spec["micro_batch"],
                      low_memory=spec["low_memory"], precision=spec["precision"])
    torch.manual_seed(0)
    net = build_unet(architecture(cfg.preset)).to(device).train()
    ema = EMA(net, device=torch.device("cpu") if cfg.low_memory else None)
    if cfg.low_memory:
        checkpoint_blocks(net)
    optimizer = make_optimizer(net, cfg, device)
    dtype = amp_dtype(device, cfg.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    gen = torch.Generator(device).manual_seed(0)
    x = torch.randn(cfg.micro_batch, 2, LENGTH, generator=torch.Generator().manual_seed(1)).to(device)

    def micro() -> float:
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = v_loss(net, x, gen)
        scaler.scale(loss).backward()
        sync(device)
        return time.perf_counter() - t0

    def update() -> float:
        sync(device)
        t0 = time.perf_counter()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        ema.update(net)
        sync(device)
        return time.perf_counter() - t0

    for _ in range(spec["warmup"]):
        micro()
        update()
    micros, updates = [], []
    for _ in range(spec["repeats"]):
        micros.append(micro())
        updates.append(update())
    m, u = statistics.median(micros), statistics.median(updates)
    step32 = m * BATCH / cfg.micro_batch + u
    row = dict(preset=cfg.preset, parameters=parameter_count(net), micro_batch=cfg.micro_batch,
               low_memory=cfg.low_memory, precision=str(dtype).replace("torch.", "") if dtype else "fp32",
               micro_s=m, update_s=u, samples_per_s=cfg.micro_batch / m, step32_s=step32, steps32_per_s=1 / step32,
               peak_rss_mb=peak_rss_mb(), base_rss_mb=base_rss, repeats=spec["repeats"])
    if device.type == "cuda":
        row["peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["peak_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps")
    p.add_argument("--presets", default="tiny-audio-diffusion,cpu-micro")
    p.add_argument("--batches", default="1,4", help="micro-batch sizes")
    p.add_argument("--modes", default="off,on", help="low-memory mode off, on, or both")
    p.add_argument("--precision", default="auto", help="auto: bf16/fp16 autocast on CUDA, fp32 on the CPU")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (0: torch's default)")
    p.add_argument("--repeats", type=int, default=0, help="timed micro-steps (default: 3 on CPU, 20 on GPU)")
    p.add_argument("--warmup", type=int, default=0, help="untimed steps first (default: 1 on CPU, 5 on GPU)")
    p.add_argument("--out", type=Path, help="folder for the JSON results (training-<device>.json)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(one(json.loads(args.child))), flush=True)
        return
    gpu = args.device.startswith("cuda")
    repeats, warmup = args.repeats or (20 if gpu else 3), args.warmup or (5 if gpu else 1)
    rows = []
    where = args.device if gpu else f"{platform.processor() or platform.machine()}, {args.threads or 'all'} threads"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# training step benchmark: {where}; torch {torch.__version__}; {repeats} timed steps after {warmup}; "
          f"load average {load:.1f} at start")
    header = (f"{'preset':22s} {'params':>7s} {'mb':>3s} {'low-mem':>7s} {'prec':>5s} {'micro s':>8s} "
              f"{'update s':>8s} {'samples/s':>9s} {'step32 s':>8s} {'steps32/s':>9s} {'peak MB':>8s}")
    print(header, flush=True)
    for preset in args.presets.split(","):
        for mb in (int(b) for b in args.batches.split(",")):
            for mode in args.modes.split(","):
                spec = dict(preset=preset, micro_batch=mb, low_memory=mode == "on", device=args.device,
                            precision=args.precision, threads=args.threads, repeats=repeats, warmup=warmup)
                done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                      text=True)
                if done.returncode != 0:
                    print(f"{preset} mb {mb} low-memory {mode}: failed\n{done.stderr[-2000:]}", flush=True)
                    rows.append(dict(spec, error=done.stderr[-2000:]))
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(r)
                peak = r.get("peak_allocated_mb", r["peak_rss_mb"])
                print(f"{preset:22s} {r['parameters'] / 1e6:6.2f}M {mb:3d} {mode:>7s} {r['precision']:>5s} "
                      f"{r['micro_s']:8.3f} {r['update_s']:8.3f} {r['samples_per_s']:9.2f} {r['step32_s']:8.2f} "
                      f"{r['steps32_per_s']:9.4f} {peak:8.0f}", flush=True)
    print("peak MB: " + ("torch.cuda.max_memory_allocated" if gpu else
                         f"peak RSS of the process (RSS after imports: {rows[0].get('base_rss_mb', 0):.0f} MB)"))
    ok = [r for r in rows if "error" not in r]
    for preset in args.presets.split(","):
        pairs = {(r["micro_batch"], r["low_memory"]): r for r in ok if r["preset"] == preset}
        for mb in (int(b) for b in args.batches.split(",")):
            off, on = pairs.get((mb, False)), pairs.get((mb, True))
            if off and on:
                key = "peak_allocated_mb" if gpu else "peak_rss_mb"
                print(f"{preset} micro-batch {mb}: low-memory mode takes {on['micro_s'] / off['micro_s']:.2f}x the "
                      f"time per micro-step and {on[key] / off[key]:.2f}x the peak memory")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = "gpu" if gpu else args.device.split(":")[0]
        info = dict(device=args.device, threads=args.threads, load_at_start=load, torch=torch.__version__,
                    processor=platform.processor() or platform.machine(), date=time.strftime("%Y-%m-%d %H:%M"),
                    batch=BATCH, repeats=repeats, warmup=warmup, rows=rows)
        if gpu and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
        path = args.out / f"training-{name}.json"
        path.write_text(json.dumps(info, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
