"""CPU inference benchmark: what each lever is worth for one preset, side by side in one run.

    python bench/cpu.py                                   # seed architecture, every section but compile
    python bench/cpu.py --preset cpu-small --threads 1,2 --json out/cpu-small.json
    python bench/cpu.py --sections compile,profile        # torch.compile (minutes) and the op profile

Sections (all timings interleaved, medians; ratios are against the seed's own code in the same run):
  forward  seconds per forward at batch 1: the seed's torch fp32 with its original attention, torch with
           fused attention (SDPA), ONNX Runtime; for each thread count
  batch    seconds per one-shot (default steps) at batch 1/2/4/8, torch and ONNX Runtime: does a batch of 4
           beat four singles?
  policy   torch with OpenMP's idle threads spinning (OMP_WAIT_POLICY=ACTIVE, libgomp's default) or
           sleeping (PASSIVE, what tad-daemon sets), each in its own process
  bf16     bf16 autocast against fp32: speed, and quality (error of the velocity, and STFT distance of a
           whole one-shot from the same noise); the numbers are this CPU's: emulated unless it has AVX512-BF16/AMX
  export   the one-time ONNX export and a cached load
  compile  torch.compile (inductor): compile seconds against seconds saved per forward
  profile  the torch forward's top operators
Random weights: speed does not depend on them; the quality rows compare precisions, not sounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tad_daemon  # noqa: E402, F401  (first: it sets OMP_WAIT_POLICY, read when torch loads)

# isort: split
import torch  # noqa: E402

from bench.common import BENCH_CACHE, interleaved, machine, mrstft, preset_model  # noqa: E402
from tad_daemon import sampling  # noqa: E402
from tad_daemon.models import onnxrt  # noqa: E402
from tad_daemon.models.network import build_unet  # noqa: E402
from tad_daemon.models.registry import load_net  # noqa: E402

SECTIONS = ("forward", "batch", "policy", "bf16", "export", "compile", "profile")


def inputs(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(batch, 2, length, generator=torch.Generator().manual_seed(1))
    return x, torch.full((batch,), 0.6)


def forward(args, entry, report) -> None:
    seed_net = build_unet(entry.config.arch, fused_attention=False).eval()
    seed_net.load_state_dict(load_net(entry, torch.device("cpu")).state_dict())
    ours = load_net(entry, torch.device("cpu"))
    x, t = inputs(1, entry.config.length)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        onnx_net = onnxrt.prepare(entry, ours, args.cache, threads)
        print(f"forward, batch 1, {threads} thread(s):", flush=True)
        with torch.inference_mode():
            med = interleaved({"seed": lambda: seed_net(x, t), "torch": lambda: ours(x, t),
                               "onnx": lambda: onnx_net(x, t)}, args.repeats)  # noqa: B023 (called at once)
        for name, secs in med.items():
            rows.append(dict(threads=threads, backend=name, seconds=secs, speedup=med["seed"] / secs))
            print(f"  {name:6s} {secs:7.3f} s/forward  {med['seed'] / secs:5.2f}x the seed's", flush=True)
    report["forward"] = dict(note="seed: torch fp32 with a-unet's original attention; torch: fused SDPA "
                                  "attention; onnx: ONNX Runtime, fp32, spinning off", rows=rows)


def batch(args, entry, report) -> None:
    ours = load_net(entry, torch.device("cpu"))
    rows = []
    threads = args.threads[-1]
    torch.set_num_threads(threads)
    onnx_net = onnxrt.prepare(entry, ours, args.cache, threads)
    contenders = {}
    for b in args.batches:
        x, t = inputs(b, entry.config.length)
        contenders[f"torch:{b}"] = lambda x=x, t=t: ours(x, t)
        contenders[f"onnx:{b}"] = lambda x=x, t=t: onnx_net(x, t)
    print(f"batching, {threads} thread(s), {args.steps} steps per one-shot:", flush=True)
    with torch.inference_mode():
        med = interleaved(contenders, args.repeats)
    for name, secs in med.items():
        backend, b = name.split(":")
        b = int(b)
        single = med[f"{backend}:1"]
        rows.append(dict(backend=backend, batch=b, seconds_per_forward=secs, seconds_per_oneshot=secs / b * args.steps,
                         gain_over_singles=single * b / secs))
        print(f"  {backend:5s} batch {b}: {secs / b * args.steps:7.2f} s per one-shot, a batch is "
              f"{single * b / secs:4.2f}x faster than {b} singles", flush=True)
    report["batch"] = dict(threads=threads, steps=args.steps, rows=rows)


def _policy_child(spec: dict) -> dict:
    torch.set_num_threads(spec["threads"])
    entry = preset_model(spec["preset"], Path(spec["models"]))
    net = load_net(entry, torch.device("cpu"))
    x, t = inputs(1, entry.config.length)
    with torch.inference_mode():
        med = interleaved({"f": lambda: net(x, t)}, spec["repeats"], progress=False)
    return {"seconds": med["f"]}


def policy(args, entry, report) -> None:
    rows = []
    print("OpenMP wait policy (torch, one process each):", flush=True)
    for threads in args.threads:
        for rnd in range(2):
            for pol in ("ACTIVE", "PASSIVE"):
                env = dict(os.environ, OMP_WAIT_POLICY=pol)
                spec = dict(threads=threads, preset=args.preset, models=str(args.models), repeats=args.repeats)
                done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                                      capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-2000:])
                    continue
                secs = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
                rows.append(dict(threads=threads, policy=pol, round=rnd, seconds=secs))
                print(f"  {threads} thread(s) {pol:7s} {secs:7.3f} s/forward", flush=True)
    summary = {}
    for threads in args.threads:
        for pol in ("ACTIVE", "PASSIVE"):
            got = [r["seconds"] for r in rows if r["threads"] == threads and r["policy"] == pol]
            if got:
                summary[f"{threads}:{pol}"] = statistics.median(got)
    report["policy"] = dict(rows=rows, median=summary)


def bf16(args, entry, report) -> None:
    torch.set_num_threads(args.threads[-1])
    ours = load_net(entry, torch.device("cpu"))
    onnx_net = onnxrt.prepare(entry, ours, args.cache, args.threads[-1])
    x, t = inputs(1, entry.config.length)

    def run(net, dtype):
        def f(x, t):
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                return net(x, t).float()
        return f

    fp32, half = run(ours, None), run(ours, torch.bfloat16)
    print("bf16 autocast against fp32:", flush=True)
    with torch.inference_mode():
        med = interleaved({"fp32": lambda: fp32(x, t), "bf16": lambda: half(x, t)}, max(1, args.repeats // 2))
        v32, v16 = fp32(x, t), half(x, t)
        noise = sampling.noise([0], 2, entry.config.length)
        times = sampling.times_for("logsnr", args.steps)
        y32 = sampling.run("dpmpp-2m", fp32, noise.clone(), times)[0]
        y16 = sampling.run("dpmpp-2m", half, noise.clone(), times)[0]
        yox = sampling.run("dpmpp-2m", onnx_net, noise.clone(), times)[0]
    rel = float(torch.linalg.norm(v16 - v32) / torch.linalg.norm(v32))
    row = dict(native_bf16=machine()["native_bf16"], fp32_seconds=med["fp32"], bf16_seconds=med["bf16"],
               bf16_speedup=med["fp32"] / med["bf16"], velocity_relative_error=rel,
               oneshot_mrstft_bf16_vs_fp32=mrstft(y16, y32), oneshot_mrstft_onnx_vs_fp32=mrstft(yox, y32),
               oneshot_max_abs_bf16_vs_fp32=float((y16 - y32).abs().max()),
               oneshot_max_abs_onnx_vs_fp32=float((yox - y32).abs().max()))
    for k, v in row.items():
        print(f"  {k}: {v:.4g}" if isinstance(v, float) else f"  {k}: {v}", flush=True)
    report["bf16"] = row


def export(args, entry, report) -> None:
    ours = load_net(entry, torch.device("cpu"))
    threads = args.threads[-1]
    fresh = Path(tempfile.mkdtemp(prefix="tad-export-"))
    try:
        t0 = time.perf_counter()
        onnxrt.prepare(entry, ours, fresh, threads)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        onnxrt.prepare(entry, ours, fresh, threads)
        cached = time.perf_counter() - t0
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    report["export"] = dict(first_seconds=first, cached_load_seconds=cached)
    print(f"ONNX: export + check {first:.1f} s once; cached load + check {cached:.1f} s", flush=True)


def compile_(args, entry, report) -> None:
    torch.set_num_threads(args.threads[-1])
    ours = load_net(entry, torch.device("cpu"))
    compiled = torch.compile(load_net(entry, torch.device("cpu")))
    x, t = inputs(1, entry.config.length)
    with torch.inference_mode():
        t0 = time.perf_counter()
        compiled(x, t)
        compile_s = time.perf_counter() - t0
        med = interleaved({"eager": lambda: ours(x, t), "compiled": lambda: compiled(x, t)}, args.repeats)
    saved = med["eager"] - med["compiled"]
    report["compile"] = dict(compile_seconds=compile_s, eager_seconds=med["eager"], compiled_seconds=med["compiled"],
                             speedup=med["eager"] / med["compiled"],
                             forwards_to_pay_back=compile_s / saved if saved > 0 else None)
    print(f"torch.compile: {compile_s:.0f} s to compile; {med['eager']:.3f} -> {med['compiled']:.3f} s/forward "
          f"({med['eager'] / med['compiled']:.2f}x)", flush=True)


def profile(args, entry, report) -> None:
    torch.set_num_threads(args.threads[-1])
    ours = load_net(entry, torch.device("cpu"))
    x, t = inputs(1, entry.config.length)
    with torch.inference_mode():
        ours(x, t)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            ours(x, t)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [dict(op=e.key, share=e.self_cpu_time_total / total, calls=e.count) for e in events[:10]]
    report["profile"] = rows
    print("torch forward, top operators by own time:")
    for r in rows:
        print(f"  {r['share']:6.1%}  {r['calls']:4d} calls  {r['op']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny-audio-diffusion")
    p.add_argument("--sections", default="forward,batch,policy,bf16,export",
                   help=f"comma separated, from {', '.join(SECTIONS)}")
    p.add_argument("--threads", default="1,2", help="thread counts to compare (the last one is used elsewhere)")
    p.add_argument("--batches", default="1,2,4,8")
    p.add_argument("--steps", type=int, default=12, help="steps per one-shot (our default sampler's)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cache", type=Path, default=BENCH_CACHE, help="ONNX export cache (kept between runs)")
    p.add_argument("--json", type=Path)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(_policy_child(json.loads(args.child))))
        return
    args.threads = [int(n) for n in args.threads.split(",")]
    args.batches = [int(n) for n in args.batches.split(",")]
    args.models = args.cache / "models"
    args.models.mkdir(parents=True, exist_ok=True)
    entry = preset_model(args.preset, args.models)
    info = machine()
    report = dict(preset=args.preset, machine=info, omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
                  command=" ".join([Path(sys.executable).name, *sys.argv]))
    print(f"# {args.preset}; {info['cpu']}; torch {info['torch']}, onnxruntime {info['onnxruntime']}; "
          f"OMP_WAIT_POLICY={report['omp_wait_policy']}", flush=True)
    steps = {"forward": forward, "batch": batch, "policy": policy, "bf16": bf16, "export": export,
             "compile": compile_, "profile": profile}
    for name in args.sections.split(","):
        if name not in steps:
            sys.exit(f"unknown section {name!r} ({', '.join(SECTIONS)})")
        try:
            steps[name](args, entry, report)
        except Exception as e:  # one failed section must not lose the others
            report[name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"{name}: failed: {e}", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
