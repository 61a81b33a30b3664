"""Encode, morph, tweak, repaint and kit on the bundled models, on this CPU: the round trip's error and what
each takes (docs/daw.md, "How well and how fast").

    python bench/transform.py [REAL_DIR]     # REAL_DIR: python bench/real_drums.py's folder (default data/real)

The round trip is `encode` then `decode` (the deterministic sampler backwards, then forwards), measured as the
error's level in dB re the sound's (both at the level the model learned, where encode puts a sound): on 4 of
each model's own outputs and on 4 held-out real drums of its class
(never trained on). Times are medians of 3, request to audio (no file writing), ONNX Runtime as the daemon runs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (the machine's setup: threads, OMP)
import numpy as np

from tad_daemon.audio.load import load_oneshot
from tad_daemon.engine import Engine, model_level_gain
from tad_daemon.models.registry import model_folders, scan

REAL_KIND = {"kick": ["kick"], "snare": ["snare"], "hat": ["closed-hat"], "perc": ["tom", "hand-drum", "cowbell"]}


def error_db(x: np.ndarray, reference: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(((x - reference) ** 2).mean() / (reference**2).mean())))


def real_drums(folder: Path, kinds: list[str], n: int) -> np.ndarray:
    files = sorted(f for k in kinds for f in (folder / "heldout" / k).glob("*.flac"))
    picked = [files[i] for i in np.linspace(0, len(files) - 1, n).round().astype(int)]
    return np.stack([load_oneshot(f) for f in picked])


def median_time(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(real: Path) -> None:
    info = common.machine()
    print(f"# {info['cpu']}, {info['cores']} threads, {info['date']}")
    entries, _ = scan(model_folders(None))
    engine = Engine("cpu", backend="auto", cache_dir=Path(tempfile.gettempdir()) / "tad-bench-transform")
    print("\n| model | own outputs, dB | real held-out drums, dB | steps |")
    print("| --- | --- | --- | --- |")
    for name, kinds in REAL_KIND.items():
        engine.load(entries[name], wait=True)
        own = np.stack([s.audio for s in engine.generate(name, 4, seed=20000)])
        sounds = np.concatenate([own, real_drums(real, kinds, 4)])
        for steps in (15, 30, 50) if name == "kick" else (30,):
            back = engine.decode(name, engine.encode(name, sounds, steps), steps)
            errors = [error_db(b, s * model_level_gain(s, 44100)) for b, s in zip(back, sounds)]
            print(f"| {name} | {np.median(errors[:4]):.1f} ({min(errors[:4]):.1f} to {max(errors[:4]):.1f}) | "
                  f"{np.median(errors[4:]):.1f} ({min(errors[4:]):.1f} to {max(errors[4:]):.1f}) | {steps} |")

    a, b = (s.audio for s in engine.generate("snare", 2, seed=7))
    first = median_time(lambda: (engine.encoded.clear(), engine.morph("snare", a, b, 0.5)), 2)
    again = median_time(lambda: engine.morph("snare", a, b, 0.3))
    print("\n| what (snare, one sound) | median seconds |")
    print("| --- | --- |")
    for what, seconds in [
        ("generate (its default sampler and steps)", median_time(lambda: engine.generate("snare", 1, seed=3))),
        ("tweak", median_time(lambda: engine.tweak("snare", 3, 0.15))),
        ("repaint 0.05-0.74 s", median_time(lambda: engine.repaint("snare", a, 0.05, 0.74, seed=3))),
        ("morph, two new files (both encoded)", first),
        ("morph, a new position between the same two", again),
        ("kit: kick, snare, hat, perc", median_time(lambda: [engine.generate(m, 1, seed=3) for m in REAL_KIND])),
    ]:
        print(f"| {what} | {seconds:.2f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data/real"))
