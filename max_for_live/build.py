"""Build "TAD Drums.amxd" (the Max for Live device) from "TAD Drums.maxpat", and read .amxd files back.

    python max_for_live/build.py                 # writes max_for_live/TAD Drums.amxd
    python max_for_live/build.py --out FOLDER    # writes FOLDER/TAD Drums.amxd and copies the .js next to it

The .amxd format (as Live and Max write it, and as Ableton's own maxdevtools `amxd_textconv.py` reads it)
is a flat sequence of chunks, each an ASCII tag of 4 bytes, a little-endian uint32 payload size, then the
payload:

    "ampf" size=4   device type: b"aaaa" audio effect, b"iiii" instrument, b"mmmm" MIDI effect
    "meta" size=4   4 bytes of flags (0 here; readers ignore it)
    "ptch" size=N   the patcher: its JSON text (UTF-8), NUL-terminated as Max writes it

(A frozen device's "ptch" payload starts with b"mx@c" and embeds its dependencies; an encrypted one adds a
"ciph" chunk. This build writes neither: the JavaScript stays a readable file next to the device.)

TAD Drums is an instrument: MIDI notes in (they play the internal [buffer~] sampler), audio out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "TAD Drums.maxpat"
TARGET = HERE / "TAD Drums.amxd"
SCRIPTS = ("tad_drums.js",)
DEVICE_TYPES = {"audio_effect": b"aaaa", "instrument": b"iiii", "midi_effect": b"mmmm"}


class AmxdError(ValueError):
    pass


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload


def write_amxd(patcher_json: str, device_type: str = "instrument") -> bytes:
    """The .amxd bytes for a patcher given as JSON text (kept byte for byte, so diffs stay readable)."""
    json.loads(patcher_json)  # refuse to wrap something Max could not open
    return (_chunk(b"ampf", DEVICE_TYPES[device_type]) + _chunk(b"meta", struct.pack("<I", 0))
            + _chunk(b"ptch", patcher_json.encode("utf-8") + b"\x00"))


def read_chunks(data: bytes) -> list[tuple[str, bytes]]:
    """Split .amxd bytes into (tag, payload) chunks."""
    chunks, pos = [], 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise AmxdError(f"truncated chunk header at byte {pos}")
        tag = data[pos:pos + 4].decode("ascii", errors="replace")
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        payload = data[pos + 8:pos + 8 + size]
        if len(payload) != size:
            raise AmxdError(f"chunk {tag!r} at byte {pos} claims {size} bytes, only {len(payload)} left")
        chunks.append((tag, payload))
        pos += 8 + size
    return chunks


def read_amxd(data: bytes) -> tuple[str, dict]:
    """(device type, patcher dict) from .amxd bytes."""
    chunks = dict(read_chunks(data))
    if "ampf" not in chunks or "ptch" not in chunks:
        raise AmxdError("not a Max for Live device: no 'ampf' or 'ptch' chunk")
    kinds = {v: k for k, v in DEVICE_TYPES.items()}
    if chunks["ampf"] not in kinds:
        raise AmxdError(f"unknown device type {chunks['ampf']!r}")
    if "ciph" in chunks or chunks["ptch"].startswith(b"mx@c"):
        raise AmxdError("encrypted or frozen device: the patcher is not plain JSON")
    text = chunks["ptch"].rstrip(b"\x00").decode("utf-8")
    return kinds[chunks["ampf"]], json.loads(text)


def build(out_dir: Path | None = None) -> Path:
    """Write the .amxd (and, for an install folder, the scripts it loads) and return its path."""
    target = TARGET if out_dir is None else Path(out_dir).expanduser() / TARGET.name
    target.parent.mkdir(parents=True, exist_ok=True)
    data = write_amxd(SOURCE.read_text(encoding="utf-8"))
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    if out_dir is not None:
        # Max finds [js] files next to the device (the patcher's dependency_cache says so).
        for name in SCRIPTS:
            shutil.copyfile(HERE / name, target.parent / name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="install folder, e.g. your Live User Library's "
                        "'Presets/Instruments/Max Instrument' (default: next to the .maxpat)")
    args = parser.parse_args(argv)
    try:
        path = build(args.out)
    except (OSError, ValueError) as e:
        print(f"build.py: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
