"""The daemon under hostile use, at full size (SPEC section 9): one command, figures printed and written to
OUT/robustness.json. The tests run the same checks at a small count (tests/test_daemon_robust.py).

    python bench/robustness.py OUT                          # 100,000 packets, 1,000 requests, 30 kills
    python bench/robustness.py OUT --packets 5000 --kills 3 # a quick look

  fuzz     packets at a set rate from 4 sockets (random, mutated, every OSC type, bundles nested up to
           1,000 deep, variations of hostile sound files), hostile model files dropped into the watched
           folder meanwhile; then: alive, RSS before and after, tracebacks in the log, 20 well-formed
           requests each answered exactly once
  burst    1,000 requests from 10 sockets at once: terminal replies per request (done, busy, other), the
           longest queue /tad/status saw, the time until the last answer
  kills    SIGKILL while a batch of 64 is being written, then a restart, N times: files written, any file
           not whole, any temporary file in sight, any restart that was not clean
  sources  hostile sound files as vary, repaint and morph sources (1,024 channels, samples near 3e38, a FIFO,
           ...) and hostile arguments (a repaint's end of 1e308, a NaN start, a tune with a newline), one at a
           time: the answer, its seconds, the rise of the daemon's peak memory
  files    hostile model files (`generate` from the CLI) and checkpoints (`models import`), each in its own
           process: exit code, the first line of the error, the process's peak memory beside a good file's
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tad_daemon.protocol.table import DONE, FAIL  # noqa: E402
from tests.daemon_util import (  # noqa: E402
    Daemon,
    answered_exactly_once,
    barrier,
    check_sample_folder,
    make_models,
    status,
    tad_env,
    terminal_by_tag,
    wait_status,
)
from tests.fuzz import (  # noqa: E402
    fuzz_packets,
    hostile_checkpoints,
    hostile_models,
    hostile_requests,
    hostile_sounds,
)


def fuzz(home: Path, packets: int, rate: float) -> dict:
    make_models(home / "models", {"kick": "kick", "snare": "snare"})
    d = Daemon(home, pool=2).start()
    checker, senders = d.client(), [d.client() for _ in range(4)]
    try:
        checker.request("/tad/generate", "snare", 64, 1)  # the largest batch the fuzz can ask for: RSS at its peak
        rss_before = d.rss_kb()
        hostile = hostile_models(home / "hostile-models", home / "models" / "snare.safetensors")
        dropped, every = [p.name for p in hostile], max(1, packets // len(hostile))
        sounds = hostile_sounds(home / "hostile-sounds")
        started, rss_half = time.monotonic(), None
        for i, packet in enumerate(fuzz_packets(packets, seed=7, sounds=sounds)):
            if i == packets // 2:  # growth in the second half, after the first has warmed every path, is a leak
                barrier(checker, timeout=600)
                wait_status(checker, "queue", 0, timeout=600)
                rss_half = d.rss_kb()
            if i % every == 0 and hostile:
                bad = hostile.pop()
                os.replace(bad, home / "models" / bad.name)
            senders[i % 4].send_raw(packet)  # replies are checked as they come: OSC, i/f/s, < 1,400 bytes
            if i % 200 == 199:
                for s in senders:
                    s.quiet(0.001)
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        sent_seconds = time.monotonic() - started  # the pause at half-time included
        barrier(checker, timeout=600)
        wait_status(checker, "queue", 0, timeout=600)
        alive = d.proc.poll() is None
        rss_after = d.rss_kb()
        checker.request("/tad/notify", 0)
        answered_exactly_once(checker, [(f"t{i}", req) for i, req in enumerate(
            [("/tad/ping",), ("/tad/status",), ("/tad/models",), ("/tad/generate", "snare", 1)] * 5)])
        deadline = time.monotonic() + 60  # the folder watcher reports each file once it has settled
        while sum(n in d.output() for n in dropped) < len(dropped) and time.monotonic() < deadline:
            time.sleep(0.2)
        log = d.output()
        return {"packets": packets, "seconds": round(sent_seconds, 1), "per_second": round(packets / sent_seconds),
                "alive": alive, "rss_before_mb": round(rss_before / 1024),
                "rss_half_mb": round(rss_half / 1024) if rss_half else None, "rss_after_mb": round(rss_after / 1024),
                "tracebacks": log.count("Traceback"), "hostile_models_refused": sum(n in log for n in dropped),
                "hostile_models": len(dropped), "well_formed_answered_once": 20}
    finally:
        for c in [checker, *senders]:
            c.close()
        d.stop()


def burst(home: Path, requests: int, sockets: int) -> dict:
    make_models(home / "models", {"kick": "kick", "snare": "snare"})
    d = Daemon(home).start()
    clients, watcher = [d.client() for _ in range(sockets)], d.client()
    mix = [("/tad/generate", "snare", 1), ("/tad/ping",), ("/tad/generate", "kick", 1, 3), ("/tad/status",)]
    longest, done_watching = [0], threading.Event()

    def watch() -> None:
        while not done_watching.is_set():
            try:
                longest[0] = max(longest[0], status(watcher)["queue"])
            except (AssertionError, OSError, ValueError):  # a status reply lost in the flood; the socket closed
                pass

    try:
        per = requests // sockets
        started = time.monotonic()
        for i, c in enumerate(clients):
            for j in range(per):
                address, *args = mix[j % len(mix)]
                c.send(address, *args, f"tag=c{i}-{j}")
        sent = time.monotonic() - started
        threading.Thread(target=watch, daemon=True).start()
        counts, duplicates, missing = {"done": 0, "busy": 0, "other fail": 0}, 0, 0
        for c in clients:
            got = c.until(lambda g: len(terminal_by_tag(g)) >= per, 600)
            ends = terminal_by_tag(got + c.quiet(0.3))
            missing += per - len(ends)
            for replies in ends.values():
                duplicates += len(replies) - 1
                r = replies[0]
                counts["done" if r.address == DONE else "busy" if r.args[1] == "busy" else "other fail"] += 1
        done_watching.set()
        return {"requests": per * sockets, "sockets": sockets, "sent_in_ms": round(sent * 1000),
                "answered_in_s": round(time.monotonic() - started, 1), **counts, "duplicates": duplicates,
                "unanswered": missing, "longest_queue_seen": longest[0]}
    finally:
        done_watching.set()
        for c in [*clients, watcher]:
            c.close()
        d.stop()


def kills(home: Path, n: int) -> dict:
    make_models(home / "models", {"snare": "snare"})
    unclean = 0
    for _ in range(n):
        d = Daemon(home).start()
        log_before = len(d.output())
        c = d.client()
        c.send("/tad/generate", "snare", 64, 1)
        assert c.receive(120).address in (DONE, FAIL)
        time.sleep(0.05 * (_ % 5))  # somewhere else in the batch each time
        d.signal(signal.SIGKILL)
        c.close()
        check_sample_folder(home / "samples")  # raises on a file that is not whole, or a temporary in sight
        unclean += "Traceback" in d.output()[log_before:]
    d = Daemon(home).start()  # the last restart cleans what the last kill left
    d.stop()
    left = list((home / "samples" / ".tad-tmp").glob("*")) if (home / "samples" / ".tad-tmp").exists() else []
    return {"kills": n, "files": check_sample_folder(home / "samples"), "partial_files_in_sight": 0,
            "tracebacks": unclean, "temporaries_left_after_restart": len(left)}


def sources(home: Path) -> dict:
    """Each hostile sound file as vary, repaint and morph read it, then each hostile request, one at a
    time: the answer, the seconds until it, and how far it raised the daemon's peak memory (VmHWM)."""
    make_models(home / "models", {"kick": "kick"})
    d = Daemon(home).start()
    c = d.client()

    def peak_mb() -> float:
        line = next(ln for ln in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines() if ln.startswith("VmHWM"))
        return int(line.split()[1]) / 1024

    def answer(send) -> dict:
        before, started = peak_mb(), time.monotonic()
        replies = send()
        ends = [m for m in replies if m.address in (DONE, FAIL)]
        return {"answers": len(ends), "reply": ends[-1].address if ends else None,
                "message": ends[-1].args[1][:120] if ends and ends[-1].address == FAIL else "",
                "seconds": round(time.monotonic() - started, 2), "peak_rise_mb": round(peak_mb() - before)}

    try:
        good = c.request("/tad/generate", "kick", 1, 3, 2)[-1].args[1]
        out = {"peak_before_mb": round(peak_mb())}
        for sound in hostile_sounds(home / "hostile-sounds"):
            for request in (("/tad/vary", "kick", str(sound), 0.5, 1, -1, "steps=2"),
                            ("/tad/repaint", "kick", str(sound), 0.1, 0.3, 1.0, 1, -1, "steps=2"),
                            ("/tad/morph", "kick", good, str(sound), 0.5, 1, "steps=2")):
                out[f"{request[0]} {sound.name}"] = answer(lambda r=request: c.request(*r, timeout=600))
        for what, packet in hostile_requests("kick", good).items():
            def send(p=packet):
                c.send_raw(p)
                return c.until(lambda got: any(m.address in (DONE, FAIL) for m in got), 600)
            out[what] = answer(send)
        out["tracebacks"] = d.output().count("Traceback")
        return out
    finally:
        c.close()
        d.stop()


def run_measured(home: Path, *args: str) -> tuple[int, str, int]:
    """A CLI command in its own process: exit code, first line of its error output, peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, "-m", "tad_daemon", *args], env=tad_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, code, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(code)
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    errors = [ln for ln in err.splitlines() if ln.startswith("Error")]  # the CLI's one error line
    return proc.returncode, (errors[-1] if errors else "")[:200], round(usage.ru_maxrss / scale)


def files(home: Path) -> dict:
    make_models(home / "models", {"snare": "snare"})
    good = home / "models" / "snare.safetensors"
    out = {"good model": run_measured(home, "generate", "snare", "-n", "1", "--steps", "2")}
    for path in hostile_models(home / "hostile", good):
        os.replace(path, home / "models" / path.name)
        out[f"model {path.name}"] = run_measured(home, "generate", path.stem, "-n", "1", "--steps", "2")
    marker = home / "code-ran"
    for path in hostile_checkpoints(home / "checkpoints", marker):
        out[f"checkpoint {path.name}"] = run_measured(home, "models", "import", str(path), "--name", "x",
                                                      "--force")
    return {"code_ran": marker.exists(), **{k: {"exit": c, "error": e, "peak_rss_mb": m}
                                            for k, (c, e, m) in out.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--packets", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=4000, help="fuzz packets per second")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--sockets", type=int, default=10)
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--only", default="fuzz,burst,kills,files,sources")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stages = {"fuzz": lambda h: fuzz(h, args.packets, args.rate), "kills": lambda h: kills(h, args.kills),
              "burst": lambda h: burst(h, args.requests, args.sockets), "files": files, "sources": sources}
    results = {}
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory(prefix=f"tad-robust-{name}-") as tmp:
            started = time.monotonic()
            results[name] = stages[name](Path(tmp))
            results[name]["stage_seconds"] = round(time.monotonic() - started)
        print(name, json.dumps(results[name], indent=1), flush=True)
        (args.out / "robustness.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
