"""Daemon latency benchmark: OSC request to file on disk (pool empty, pool hit, an audition of 8 presses half
a second apart, the first presses after a fresh install), `tad-daemon send` start-up, and simultaneous
requests with and without batching, against the targets in docs/benchmarks.md, in one run.

    python bench/latency.py                                   # the bundled snare
    python bench/latency.py --model path/to/model.safetensors --n 20 --json out/latency.json

Each case starts its own `tad-daemon serve` on a free port with a temporary TAD_DAEMON_HOME holding only
the model (as `snare`). Times are measured by a client on this machine: from sending the request to
receiving its /tad/done, which the daemon sends after the file is complete on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tad_daemon.config import DEFAULTS  # noqa: E402
from tad_daemon.protocol import osc  # noqa: E402

BUNDLED_SNARE = REPO / "tad_daemon" / "models" / "bundled" / "snare.safetensors"
TARGETS = {"pool_empty_median_s": 0.35, "pool_hit_p95_s": 0.050, "send_startup_median_s": 0.300}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ONNX exports kept between runs: a user's daemon exports a model once, at its first start, not per request.
CACHE = Path(tempfile.gettempdir()) / "tad-bench-latency-cache"


def env_for(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAD_DAEMON_")}
    env["TAD_DAEMON_HOME"] = str(home)
    env["TAD_DAEMON_MODELS_BUNDLED"] = "0"  # only the model under test: no other model's pool or export
    env["TAD_DAEMON_PATHS_CACHE"] = str(CACHE)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


EXTRA: list[str] = []  # --set KEY=VALUE for every daemon of the run


class Daemon:
    def __init__(self, model: Path, *settings: str):
        settings = (*EXTRA, *settings)
        self.home = Path(tempfile.mkdtemp(prefix="tad-bench-"))
        (self.home / "models").mkdir()
        shutil.copy(model, self.home / "models" / "snare.safetensors")
        self.port = free_port()
        args = ["--port", str(self.port)] + [a for s in settings for a in ("--set", s)]
        self.proc = subprocess.Popen([sys.executable, "-m", "tad_daemon", "serve", *args, "--log-level", "warning"],
                                     env=env_for(self.home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"daemon exited with code {self.proc.returncode}")
            if self.ask("/tad/ping", timeout=0.5):
                return
        sys.exit("daemon did not start")

    def ask(self, address: str, *args, timeout: float = 120.0) -> list:
        """Send and return the replies up to the first terminal one (or [] on timeout)."""
        self.sock.sendto(osc.encode(address, *args), ("127.0.0.1", self.port))
        return self.wait(address, timeout)

    def wait(self, address: str, timeout: float = 120.0) -> list:
        got = []
        self.sock.settimeout(timeout)
        try:
            while True:
                msg = osc.parse(self.sock.recv(65535))[0]
                got.append(msg)
                if msg.address in ("/tad/done", "/tad/fail") and msg.args[0] == address:
                    return got
        except TimeoutError:
            return []

    def status(self) -> list:
        return self.ask("/tad/status")[-1].args

    def cpu_s(self) -> float | None:
        """CPU seconds the daemon has used (Linux): a fairer measure than wall time on a busy machine."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.sock.close()
        shutil.rmtree(self.home, ignore_errors=True)


def summary(times: list[float]) -> dict:
    times = sorted(times)
    return {"n": len(times), "median_s": statistics.median(times),
            "p95_s": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], "min_s": times[0],
            "max_s": times[-1]}


def timed_generate(d: Daemon, *args) -> float:
    t0 = time.perf_counter()
    (done,) = d.ask("/tad/generate", "snare", *args)[-1:]
    elapsed = time.perf_counter() - t0
    if done.address != "/tad/done" or not os.path.isfile(done.args[1]):
        sys.exit(f"generate failed: {done.args}")
    return elapsed


def pool_empty(model: Path, n: int) -> tuple[dict, float | None]:
    d = Daemon(model, "pool.size=0")
    try:
        timed_generate(d)  # warm-up (first-call allocations)
        return summary([timed_generate(d) for _ in range(n)]), d.rss_mb()
    finally:
        d.close()


def pool_hit(model: Path, n: int) -> dict:
    d = Daemon(model, "pool.size=1")
    times = []
    try:
        for _ in range(n + 1):
            deadline = time.monotonic() + 300
            while d.status()[5] < 1:  # pool_ready
                if time.monotonic() > deadline:
                    sys.exit("the pool never filled")
                time.sleep(0.05)
            times.append(timed_generate(d))
        return summary(times[1:])
    finally:
        d.close()


def audition(model: Path, rounds: int, presses: int = 8, gap: float = 0.5, cache: Path | None = None) -> dict:
    """A producer auditioning: `presses` presses of "new snare", each `gap` s after the last one was answered
    (or planned), `rounds` times with the pool full at each start; every press's time. With `cache` (the
    daemon's cache folder: empty for a fresh install), the presses begin as soon as the daemon answers, pool
    or not, and the seconds from its start to its first answer are reported."""
    started = time.monotonic()
    d = Daemon(model, *([f"paths.cache={cache}"] if cache else []))
    answering_s = time.monotonic() - started
    size = 0 if cache else DEFAULTS["pool.size"]
    times, per_round = [], []
    try:
        for _ in range(rounds):
            deadline = time.monotonic() + 600
            while size and d.status()[5] < size * d.status()[3]:  # pool_ready of every model (a pause to listen)
                if time.monotonic() > deadline:
                    sys.exit("the pool never filled")
                time.sleep(0.1)
            got, planned = [], time.monotonic()
            for _ in range(presses):
                time.sleep(max(0.0, planned - time.monotonic()))
                got.append(timed_generate(d))
                planned = max(planned + gap, time.monotonic())
            per_round.append([round(t, 3) for t in got])
            times += got
        return {**summary(times), "presses": per_round, "pool_size": size, "models": d.status()[3],
                "daemon_rss_mb": d.rss_mb(), "answering_after_s": round(answering_s, 1)}
    finally:
        d.close()


def simultaneous(model: Path, k: int, batch: int, rounds: int) -> dict:
    """k clients ask for one snare at the same moment; time until the last file is on disk."""
    d = Daemon(model, "pool.size=0", f"generate.batch={batch}")
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(k)]
    times = []
    try:
        timed_generate(d)
        cpu0 = d.cpu_s()
        for _ in range(rounds):
            t0 = time.perf_counter()
            for s in socks:
                s.sendto(osc.encode("/tad/generate", "snare"), ("127.0.0.1", d.port))
            for s in socks:
                s.settimeout(300)
                msg = osc.parse(s.recv(65535))[0]
                if msg.address != "/tad/done":
                    sys.exit(f"generate failed: {msg.args}")
            times.append(time.perf_counter() - t0)
        result = summary(times)
        if cpu0 is not None:
            result["daemon_cpu_s_per_oneshot"] = (d.cpu_s() - cpu0) / (rounds * k)
        return result
    finally:
        for s in socks:
            s.close()
        d.close()


def send_startup(model: Path, n: int) -> dict:
    d = Daemon(model, "pool.size=0")
    cmd = [sys.executable, "-m", "tad_daemon", "send", "/tad/ping", "--port", str(d.port)]
    times = []
    try:
        for _ in range(n + 1):
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env_for(d.home))
            times.append(time.perf_counter() - t0)
            if out.returncode != 0:
                sys.exit(f"send failed: {out.stderr}")
        return summary(times[1:])
    finally:
        d.close()


def export_once(model: Path) -> None:
    """Make the model's ONNX export (once per model file) before timing, as a daemon's first start does."""
    from tad_daemon.engine import Engine
    from tad_daemon.models.registry import read_entry

    Engine("cpu", "fp32", backend="auto", cache_dir=CACHE / "onnx").load(read_entry(model), wait=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=BUNDLED_SNARE, help="model file (default: the bundled snare)")
    p.add_argument("--n", type=int, default=20, help="requests per case")
    p.add_argument("--clients", type=int, default=4, help="simultaneous requests in the batching case")
    p.add_argument("--cases", default="empty,hit,audition,fresh,send,batch",
                   help="which cases to run (comma-separated)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for every daemon of the run (e.g. models.bundled=1: the bundled models beside "
                        "the one under test, as a producer's daemon has them)")
    args = p.parse_args()
    EXTRA.extend(args.set)
    if not args.model.is_file():
        sys.exit(f"{args.model}: no such model file (pass --model FILE)")
    cases = set(args.cases.split(","))
    export_once(args.model)

    def ms(x: float) -> str:
        return f"{x * 1000:9.1f} ms"

    results = {"model": str(args.model), "machine": platform.machine(), "cpus": os.cpu_count(),
               "python": platform.python_version(), "load_average": os.getloadavg(), "targets": TARGETS}
    rows = []
    if "empty" in cases:
        results["pool_empty"], results["daemon_rss_mb"] = pool_empty(args.model, args.n)
        rows.append(("new snare, pool empty (request -> file)", results["pool_empty"],
                     f"median <= {TARGETS['pool_empty_median_s'] * 1000:.0f} ms"))
    if "hit" in cases:
        results["pool_hit"] = pool_hit(args.model, args.n)
        rows.append(("new snare, pool hit (request -> file)", results["pool_hit"],
                     f"p95 <= {TARGETS['pool_hit_p95_s'] * 1000:.0f} ms"))
    if "audition" in cases:
        results["audition"] = audition(args.model, max(3, args.n // 8))
        rows.append(("audition: 8 presses 0.5 s apart", results["audition"],
                     f"p95 <= {TARGETS['pool_hit_p95_s'] * 1000:.0f} ms"))
    if "fresh" in cases:  # a fresh install, then a later start: the same presses, as soon as it answers
        cache = Path(tempfile.mkdtemp(prefix="tad-bench-fresh-"))
        try:
            results["fresh_install"] = audition(args.model, 1, cache=cache)
            results["after_install"] = audition(args.model, 1, cache=cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        rows += [("first 8 presses after a fresh install", results["fresh_install"], "no slower than later"),
                 ("the same 8 presses at a later start", results["after_install"], "")]
    if "send" in cases:
        results["send_startup"] = send_startup(args.model, args.n)
        rows.append(("tad-daemon send start -> reply (ping)", results["send_startup"],
                     f"median <= {TARGETS['send_startup_median_s'] * 1000:.0f} ms"))
    if "batch" in cases:
        rounds = max(3, args.n // 4)
        results["simultaneous_batched"] = simultaneous(args.model, args.clients, 16, rounds)
        results["simultaneous_one_by_one"] = simultaneous(args.model, args.clients, 1, rounds)
        rows += [(f"{args.clients} at once, batched", results["simultaneous_batched"], ""),
                 (f"{args.clients} at once, one by one", results["simultaneous_one_by_one"], "")]

    print(f"model {args.model}, {results['cpus']} CPUs, n={args.n}, "
          f"load average {results['load_average'][0]:.1f} at the start")
    print(f"{'case':44} {'median':>12} {'p95':>12}   target")
    for name, r, target in rows:
        print(f"{name:44} {ms(r['median_s'])} {ms(r['p95_s'])}   {target}")
    if "batch" in cases:
        one, batched = results["simultaneous_one_by_one"], results["simultaneous_batched"]
        results["batching_speedup"] = one["median_s"] / batched["median_s"]
        speedup = results["batching_speedup"]
        print(f"batching, {args.clients} simultaneous requests: {speedup:.2f}x faster (wall)", end="")
        if "daemon_cpu_s_per_oneshot" in batched:
            cpu = one["daemon_cpu_s_per_oneshot"] / batched["daemon_cpu_s_per_oneshot"]
            results["batching_cpu_ratio"] = cpu
            print(f", {cpu:.2f}x less daemon CPU time per one-shot", end="")
        print()
    if results.get("daemon_rss_mb"):
        print(f"daemon RSS with this one model loaded: {results['daemon_rss_mb']:.0f} MB")
    checks = [("pool_empty", "median_s", "pool_empty_median_s"), ("pool_hit", "p95_s", "pool_hit_p95_s"),
              ("audition", "p95_s", "pool_hit_p95_s"),
              ("send_startup", "median_s", "send_startup_median_s")]
    results["meets"] = {t: results[c][k] <= TARGETS[t] for c, k, t in checks if c in results}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
