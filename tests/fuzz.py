"""Hostile input, shared by the robustness tests and bench/robustness.py: fuzzed OSC packets (random,
mutated, wrong types, nested bundles), and files made to hurt whoever reads them (model files, sounds,
checkpoints). Everything is drawn from a seed: the same count gives the same packets and files."""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
from pythonosc.osc_message_builder import OscMessageBuilder

from tad_daemon.protocol import osc
from tad_daemon.protocol.table import PROTOCOL


def random_string(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(30)))
    if kind == 1:
        return rng.choice(["snare", "kick", "../x", "/etc/passwd", "con", "", "tag=z", "post=1", "sampler=x"])
    if kind == 2:
        return "/" + "/".join("".join(rng.choices("abc./~", k=5)) for _ in range(rng.randrange(5)))
    return "x" * rng.choice([0, 1, 63, 64, 65, 129, 4097])


def random_message(rng: random.Random) -> bytes:
    addresses = [a for a in PROTOCOL if a != "/tad/notify"]  # registrations would spray other local ports
    b = OscMessageBuilder(rng.choice(addresses + ["/tad/x", "/", "/tad/done"]))
    for _ in range(rng.randrange(7)):
        t = rng.choice("iiiffssssdhTFNb")
        value = {
            "i": lambda: rng.choice([0, 1, -1, 2, 64, 65, 2**31 - 1, -(2**31), rng.randrange(-99, 99)]),
            "h": lambda: rng.choice([0, 2**40, -(2**62)]),
            "f": lambda: rng.choice([0.5, 1.0, float("nan"), float("inf"), -float("inf"), 1e30, -0.0, 2.5]),
            "d": lambda: rng.choice([0.5, float("nan"), 1e300]),
            "s": lambda: random_string(rng),
            "b": lambda: rng.randbytes(rng.randrange(1, 16)),
        }.get(t, lambda: None)()
        b.add_arg(value, t)
    return b.build().dgram


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(4)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(i, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:
            del data[i:i + rng.randint(1, 8)]
        else:
            data = data[:i]
    return bytes(data)


def bundle(*packets: bytes) -> bytes:
    return b"#bundle\0" + bytes(8) + b"".join(len(p).to_bytes(4, "big") + p for p in packets)


def nested_bundle(depth: int, inner: bytes) -> bytes:
    for _ in range(depth):
        inner = bundle(inner)
    return inner


VALID = [osc.encode(*m) for m in [
    ("/tad/ping",), ("/tad/status",), ("/tad/models",), ("/tad/generate", "snare", 1, -1, 0, "tag=f"),
    ("/tad/generate", "kick", 2, 5), ("/tad/vary", "kick", "/nonexistent.wav", 0.5),
    ("/tad/train", "x", "/nonexistent"), ("/tad/jobs",), ("/tad/cancel", "j"),
    ("/tad/distill", "x", "no-such-model", 4, 0, "/nonexistent"),
    ("/tad/generate", "snare", "post=0"), ("/tad/tweak", "kick", 3, 0.1, 2, "tune=A1"),
    ("/tad/morph", "kick", "/nonexistent.wav", "/nonexistent2.wav", 0.5), ("/tad/kit", "kick,snare", 4),
    ("/tad/repaint", "snare", "/nonexistent.wav", 0.1, 0.5)]]


def fuzz_packets(n: int, seed: int = 1, sounds: list[Path] = ()):
    """n packets: random bytes, mutated valid requests, random messages of every type, bundles nested
    2 to 1,000 deep (a 1,000-deep one is 16 KB), and, given `sounds`, variations of hostile sound files."""
    rng = random.Random(seed)
    for i in range(n):
        kind = i % 6
        if kind == 0:
            yield rng.randbytes(rng.randrange(1500))
        elif kind == 1:
            yield mutate(rng.choice([*VALID, bundle(VALID[0])]), rng)
        elif kind == 2:
            yield random_message(rng)
        elif kind == 3:
            yield b"/tad/" + rng.randbytes(rng.randrange(64))
        elif kind == 4:
            inner = rng.choice([rng.choice(VALID), random_message(rng), bundle(*rng.sample(VALID, 3))])
            yield nested_bundle(rng.choice([2, 3, 4, 5, 16, 1000]), inner)
        elif sounds:  # every request that reads a sound file, and hostile arguments with a good one
            model, sound = rng.choice(["kick", "snare"]), str(rng.choice(sounds))
            yield rng.choice([osc.encode("/tad/vary", model, sound, 0.5, 1),
                              osc.encode("/tad/repaint", model, sound, 0.05, 0.5, 1.0, 1, -1, "steps=2"),
                              osc.encode("/tad/morph", model, sound, str(rng.choice(sounds)), 0.5, 1, "steps=2"),
                              *hostile_requests(model, sound).values()])
        else:
            yield random_message(rng)


def hostile_requests(model: str, sound: str) -> dict[str, bytes]:
    """Requests with hostile arguments, by what each is (`sound`: a source file, good or not): a repaint's
    end as a double of 1e308 (the end of the sound), a start of NaN and infinity (refused), a note with
    spaces and a newline around it (written as a note), a tune of 4 KB."""
    def message(address: str, *args: tuple) -> bytes:
        b = OscMessageBuilder(address)
        for value, kind in args:
            b.add_arg(value, kind)
        return b.build().dgram

    repaint = ("/tad/repaint", (model, "s"), (sound, "s"))
    return {"repaint end 1e308 (double)": message(*repaint, (0.5, "f"), (1e308, "d"), (1.0, "f"), (1, "i"),
                                                  (-1, "i"), ("steps=2", "s")),
            "repaint start NaN": message(*repaint, (float("nan"), "f"), (0.5, "f")),
            "repaint start inf (double)": message(*repaint, (float("inf"), "d"), (0.5, "f")),
            "tune with spaces and a newline": osc.encode("/tad/generate", model, 1, -1, 2, "tune= a1\n"),
            "tune of 4 KB": osc.encode("/tad/generate", model, 1, -1, 2, "tune=" + "A" * 4000)}


# -- hostile files --------------------------------------------------------------------------------------

def hostile_models(folder: Path, good: Path) -> list[Path]:
    """Model files that must be refused, each with a clear reason, from a good model file: cut short, a
    header length of 2^62, a header that is not JSON, a header asking for a 40-billion-parameter U-Net,
    NaN weights, a safetensors file with no model config."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()
    weights = load_file(str(good))
    out = {}
    out["cut-short"] = data[: len(data) // 2]
    out["header-bomb"] = struct.pack("<Q", 2**62) + b"{}"
    out["header-not-json"] = struct.pack("<Q", 64) + b"\xff" * 64
    files = [folder / f"{name}.safetensors" for name in out]
    for path, body in zip(files, out.values()):
        path.write_bytes(body)
    config = json.loads(meta["tad"])
    config["arch"] = {**config["arch"], "channels": [65536] * len(config["arch"]["channels"])}
    giant = folder / "giant-net.safetensors"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(giant), metadata={**meta, "tad": json.dumps(config)})
    nan = folder / "nan-weights.safetensors"
    broken = {k: v.contiguous() for k, v in weights.items()}
    first = next(k for k, v in broken.items() if v.is_floating_point())
    broken[first] = torch.full_like(broken[first], float("nan"))
    save_file(broken, str(nan), metadata=meta)
    bare = folder / "no-config.safetensors"
    save_file({"w": torch.zeros(4)}, str(bare))
    return [*files, giant, nan, bare]


def wav_header(frames: int, channels: int = 2, rate: int = 44100) -> bytes:
    size = frames * channels * 2
    return (b"RIFF" + struct.pack("<I", min(36 + size, 2**32 - 1)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16) +
            b"data" + struct.pack("<I", min(size, 2**32 - 1)))


def hostile_sounds(folder: Path, seed: int = 1) -> list[Path]:
    """Sound files a variation or a training set must refuse, not hang or crash on: a FIFO (POSIX), a WAV
    cut after its header, a header claiming 4 GB of samples, random bytes, an empty file, a folder named
    like a sound, a symbolic link to itself, 1,024 channels at 192 kHz (sparse: no disk space), float
    samples near 3e38 (a loudness that overflows)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, body in (("cut-short.wav", wav_header(32768) + bytes(100)), ("claims-4gb.wav", wav_header(2**30)),
                       ("noise.wav", rng.randbytes(5000)), ("empty.wav", b"")):
        (folder / name).write_bytes(body)
        made.append(folder / name)
    wide = folder / "1024-channels.wav"
    with open(wide, "wb") as f:  # one second, all zeros: a hole in the file, 0 bytes on disk
        f.write(wav_header(192000, channels=1024, rate=192000))
        f.truncate(f.tell() + 192000 * 1024 * 2)
    made.append(wide)
    huge = folder / "3e38.wav"
    sf.write(huge, np.full((32768, 2), 3e38, np.float32), 44100, subtype="FLOAT")
    made.append(huge)
    (folder / "folder.wav").mkdir(exist_ok=True)
    made.append(folder / "folder.wav")
    loop = folder / "loop.wav"
    if not loop.is_symlink():
        loop.symlink_to(loop.name)
    made.append(loop)
    if hasattr(os, "mkfifo"):
        fifo = folder / "fifo.wav"
        if not fifo.exists():
            os.mkfifo(fifo)
        made.append(fifo)
    return made


class Payload:
    """Unpickles as a call of `fn(*args)`: what a malicious checkpoint hides."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def hostile_checkpoints(folder: Path, marker: Path) -> list[Path]:
    """Checkpoints an import must refuse before anything runs or is allocated: code that would touch
    `marker` (plain pickle and torch zip), a 2 GB bytearray (both), a zip cut short."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    run = Payload(os.system, f"touch {marker}")
    huge = Payload(bytearray, 2 * 10**9)
    made = []
    for name, obj in (("runs-code", run), ("allocates-2gb", huge)):
        plain = folder / f"{name}-plain.ckpt"
        plain.write_bytes(pickle.dumps(obj, protocol=2))
        zipped = folder / f"{name}-zip.ckpt"
        torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": obj}, zipped)
        made += [plain, zipped]
    cut = folder / "cut-short.ckpt"
    cut.write_bytes(made[-1].read_bytes()[:300])
    return [*made, cut]
