"""The real-drum corpus: every drum kit of Debian's General MIDI soundfonts rendered note by note, labelled by
the General MIDI drum map, plus the CC0 one-shots of sonic-pi-samples; split by recording into training and
held-out sets.

    python bench/real_drums.py data/real                     # render, label, de-duplicate, split, write
    python bench/real_drums.py data/real --summary           # what is there, by kind, source and split

Sources (Debian packages; install them first, with fluidsynth to render):
    fluid-soundfont-gm           FluidR3_GM.sf2, MIT (31 kits)
    musescore-general-soundfont  MuseScore_General_Full.sf3, MIT (FluidR3's kits in mono, plus marching kits)
    sonic-pi-samples             CC0 one-shots (tad_daemon/quality/reference.py lists the drum ones)
Never hydrogen-drumkits, hydrogen-drumkits-effects or avldrums.lv2-soundfont: the independent evaluation
shares recordings with them.

Why split by recording and not by kit name: the kits of these soundfonts share recordings (one closed
hi-hat recording serves 29 FluidR3 kits, and MuseScore's kits are FluidR3's in mono), so a kit held out by
name would still be heard in training. Each soundfont's presets are read (their zones name the samples each
note plays), notes that share a sample are one recording group (across both soundfonts, by sample name), and
whole groups go to one side. sonic-pi's one-shots are each their own recording.

Out: OUT/train/<kind>/*.flac and OUT/heldout/<kind>/*.flac (24-bit, 44.1 kHz stereo, onset at the start, cut
at 32768 samples with a 20 ms fade where still sounding), OUT/manifest.csv (file, kind, General MIDI note,
source, licence, kit, velocity, samples, group, split) and OUT/LICENSES.md (the notices MIT asks to carry).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tad_daemon.kinds import GM_NOTES  # noqa: E402

RATE = 44100
LENGTH = 32768
VELOCITIES = (45, 75, 105, 127)
SPACING = 1.0  # seconds between notes in a render; each note is silenced (CC 120) just before the next
HELD_OUT = 0.25  # share of each kind's recording groups held out for judging

SOUNDFONTS = (
    # (path, source name, licence): MuseScore's kits after FluidR3's, so de-duplication keeps FluidR3's stereo.
    (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), "FluidR3_GM", "MIT"),
    (Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"), "MuseScore_General", "MIT"),
)

# General MIDI percussion key map (keys 27-34 and 82-87 are GS additions most kits carry); the kind each note
# is filed under is tad_daemon.kinds.GM_NOTES's (notes it does not list: sound effects, whistles, clicks,
# tuned bells, not drum one-shots we learn).
GM_DRUMS: dict[int, str] = {
    27: "High Q", 28: "Slap", 29: "Scratch Push", 30: "Scratch Pull", 31: "Sticks", 32: "Square Click",
    33: "Metronome Click", 34: "Metronome Bell", 35: "Acoustic Bass Drum", 36: "Bass Drum 1", 37: "Side Stick",
    38: "Acoustic Snare", 39: "Hand Clap", 40: "Electric Snare", 41: "Low Floor Tom", 42: "Closed Hi-Hat",
    43: "High Floor Tom", 44: "Pedal Hi-Hat", 45: "Low Tom", 46: "Open Hi-Hat", 47: "Low-Mid Tom", 48: "Hi-Mid Tom",
    49: "Crash Cymbal 1", 50: "High Tom", 51: "Ride Cymbal 1", 52: "Chinese Cymbal", 53: "Ride Bell",
    54: "Tambourine", 55: "Splash Cymbal", 56: "Cowbell", 57: "Crash Cymbal 2", 58: "Vibraslap",
    59: "Ride Cymbal 2", 60: "Hi Bongo", 61: "Low Bongo", 62: "Mute Hi Conga", 63: "Open Hi Conga", 64: "Low Conga",
    65: "High Timbale", 66: "Low Timbale", 67: "High Agogo", 68: "Low Agogo", 69: "Cabasa", 70: "Maracas",
    71: "Short Whistle", 72: "Long Whistle", 73: "Short Guiro", 74: "Long Guiro", 75: "Claves", 76: "Hi Wood Block",
    77: "Low Wood Block", 78: "Mute Cuica", 79: "Open Cuica", 80: "Mute Triangle", 81: "Open Triangle",
    82: "Shaker", 83: "Jingle Bell", 84: "Belltree", 85: "Castanets", 86: "Mute Surdo", 87: "Open Surdo",
}
KIND_OF_NOTE = {note: kind for kind, notes in GM_NOTES.items() for note in notes}
# The bundled models' classes, made of the finer kinds above. Perc is the drum and wood percussion that is
# neither kick, snare nor hat (toms, hand drums, cowbells, wood): what the seed's percussion model makes.
CLASS_OF_KIND = {"kick": "kick", "snare": "snare", "closed-hat": "hat", "open-hat": "hat", "tom": "perc",
                 "hand-drum": "perc", "cowbell": "perc", "wood": "perc"}
# Presets that are not drum kits in the usual sense, and notes a kit maps to something else than the GM name.
# The marching kits (MuseScore_General 56-96) give the General MIDI keys to their own articulations (rim
# clicks and shots on the cymbal keys), so the drum map's names do not hold there.
SKIP_PRESETS = ("Metronome", "March", "OldMarch")  # preset names starting so
ORCHESTRA_KINDS = {35: "kick", 36: "kick", 38: "snare", 40: "snare", 49: "crash", 57: "crash"}  # the rest: timpani

# sonic-pi-samples: the finer kind of each one-shot tad_daemon.quality.reference files under the four classes.
SONIC_PI_KINDS = {"drum_cymbal_closed": "closed-hat", "drum_cymbal_pedal": "closed-hat",
                  "drum_cymbal_open": "open-hat", "drum_cymbal_soft": "crash", "drum_cymbal_hard": "crash",
                  "drum_splash_hard": "crash", "drum_splash_soft": "crash", "elec_cymbal": "crash",
                  "drum_cowbell": "cowbell", "perc_snap": "clap", "perc_snap2": "clap", "elec_wood": "wood",
                  "elec_tick": "wood"}
SONIC_PI_DEFAULT = {"kick": "kick", "snare": "snare", "hat": "closed-hat", "perc": "tom"}


# -- reading a soundfont's drum presets (SF2, and SF3, which differs only in how samples are stored) ----------
@dataclass
class Preset:
    number: int
    name: str
    zones: list[dict]  # generator -> amount; instrument (41) and key/velocity ranges (43, 44)


@dataclass
class SoundFont:
    presets: dict[int, Preset] = field(default_factory=dict)  # bank 128 only
    instruments: list[list[dict]] = field(default_factory=list)  # zones: sampleID (53) and key/velocity ranges
    samples: list[str] = field(default_factory=list)

    def samples_for(self, preset: int, key: int, velocity: int) -> list[str]:
        """The sample names `key` at `velocity` plays in drum preset `preset` (empty: the note is silent)."""
        out = set()
        for pz in self.presets[preset].zones:
            if 41 in pz and _covers(pz, key, velocity):
                for iz in self.instruments[pz[41]]:
                    if 53 in iz and _covers(iz, key, velocity):
                        out.add(self.samples[iz[53]])
        return sorted(out)


def _covers(zone: dict, key: int, velocity: int) -> bool:
    lo, hi = _range(zone.get(43))
    vlo, vhi = _range(zone.get(44))
    return lo <= key <= hi and vlo <= velocity <= vhi


def _range(amount: int | None) -> tuple[int, int]:
    return (0, 127) if amount is None else (amount & 0xFF, amount >> 8)


def _chunks(data: bytes, start: int, end: int):
    while start + 8 <= end:
        cid, size = data[start:start + 4], struct.unpack_from("<I", data, start + 4)[0]
        yield cid, start + 8, size
        start += 8 + size + (size & 1)


def read_soundfont(path: Path) -> SoundFont:
    """The drum presets of an SF2/SF3 file, from its preset, instrument and sample headers (the pdta chunk).

    Written out because it is 40 lines; the soundfont libraries on PyPI either need fluidsynth's C library
    or read SF2 only."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError(f"{path}: not a soundfont")
    pdta = {}
    for cid, off, size in _chunks(data, 12, len(data)):
        if cid == b"LIST" and data[off:off + 4] == b"pdta":
            pdta = {c.decode(): data[o:o + s] for c, o, s in _chunks(data, off + 4, off + size)}

    def records(name: str, fmt: str) -> list[tuple]:
        size = struct.calcsize(fmt)
        return [struct.unpack_from(fmt, pdta[name], i) for i in range(0, len(pdta[name]) - size + 1, size)]

    def zones(bags: list[tuple], gens: list[tuple], start: int, end: int) -> list[dict]:
        return [{gens[g][0]: gens[g][1] for g in range(bags[b][0], bags[b + 1][0])} for b in range(start, end)]

    phdr, pbag, pgen = records("phdr", "<20sHHHIII"), records("pbag", "<HH"), records("pgen", "<HH")
    inst, ibag, igen = records("inst", "<20sH"), records("ibag", "<HH"), records("igen", "<HH")
    shdr = records("shdr", "<20sIIIIIBbHH")
    font = SoundFont(samples=[s[0].split(b"\0")[0].decode("latin-1") for s in shdr])
    font.instruments = [zones(ibag, igen, inst[i][1], inst[i + 1][1]) for i in range(len(inst) - 1)]
    for i, h in enumerate(phdr[:-1]):
        if h[2] == 128:
            name = h[0].split(b"\0")[0].decode("latin-1")
            font.presets[h[1]] = Preset(h[1], name, zones(pbag, pgen, h[3], phdr[i + 1][3]))
    return font


def recording_name(sample: str) -> str:
    """A sample's name without its channel mark: FluidR3's 'Std Kick(L)' is MuseScore's mono 'Std Kick'."""
    for mark in ("(L)", "(R)", "(L", "(R"):
        if sample.endswith(mark):
            return sample[: -len(mark)].strip()
    return sample.strip()


# -- rendering --------------------------------------------------------------------------------------------
def _varlen(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.insert(0, (n & 0x7F) | 0x80)
    return bytes(out)


def drum_midi(preset: int, notes: list[tuple[int, int]]) -> bytes:
    """A type-0 MIDI file on the drum channel: kit `preset`, then each (key, velocity) SPACING seconds apart,
    released after half a second and silenced (All Sound Off) just before the next."""
    ticks = 960  # per second: 480 per quarter note at the default 120 bpm
    events = [(0, bytes([0xC9, preset]))]
    for i, (key, velocity) in enumerate(notes):
        t = int(i * SPACING * ticks)
        events += [(t, bytes([0x99, key, velocity])), (t + ticks // 2, bytes([0x89, key, 0])),
                   (t + int((SPACING - 0.02) * ticks), bytes([0xB9, 120, 0]))]
    events.append((int((len(notes) + 0.5) * SPACING * ticks), bytes([0xB9, 121, 0])))  # keeps the last note whole
    track, now = b"", 0
    for t, message in sorted(events, key=lambda e: e[0]):
        track += _varlen(t - now) + message
        now = t
    track += b"\x00\xff\x2f\x00"
    return (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track)


def render(soundfont: Path, preset: int, notes: list[tuple[int, int]], work: Path) -> list[np.ndarray]:
    """Each note rendered by fluidsynth (no reverb or chorus), as (2, SPACING seconds) float arrays."""
    midi, wav = work / f"kit{preset}.mid", work / f"kit{preset}.wav"
    midi.write_bytes(drum_midi(preset, notes))
    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RATE), "-O", "float",
                    "-T", "wav", "-F", str(wav), str(soundfont), str(midi)], check=True, capture_output=True)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    assert rate == RATE
    step = int(SPACING * RATE)
    audio = np.pad(audio.T, ((0, 0), (0, max(0, step * len(notes) - audio.shape[0]))))
    return [audio[:, i * step:(i + 1) * step] for i in range(len(notes))]


def one_shot(x: np.ndarray, floor_db: float = -60.0) -> np.ndarray | None:
    """The hit from its onset (1 ms before the first sample within 30 dB of the peak), LENGTH samples, with
    a 20 ms fade where it still sounds at the cut; None for a silent or near-silent render."""
    peak = float(np.abs(x).max())
    if peak < 10 ** (floor_db / 20):
        return None
    onset = int(np.argmax(np.abs(x).max(axis=0) >= peak * 10 ** (-30 / 20)))
    y = x[:, max(0, onset - RATE // 1000):][:, :LENGTH]
    y = np.pad(y, ((0, 0), (0, LENGTH - y.shape[1])))
    fade = int(0.02 * RATE)
    if np.abs(y[:, -fade:]).max() > peak * 10 ** (-80 / 20):
        y[:, -fade:] *= np.linspace(1.0, 0.0, fade)
    return y.astype(np.float32)


# -- the corpus ---------------------------------------------------------------------------------------------
@dataclass
class Hit:
    audio: np.ndarray
    kind: str
    note: int | None
    source: str
    licence: str
    kit: str
    velocity: int | None
    samples: list[str]
    group: str = ""
    split: str = ""
    file: str = ""


def soundfont_hits(work: Path) -> list[Hit]:
    hits = []
    for path, source, licence in SOUNDFONTS:
        if not path.is_file():
            print(f"missing {path}: install its Debian package", file=sys.stderr)
            continue
        font = read_soundfont(path)
        for number, preset in sorted(font.presets.items()):
            if preset.name.startswith(SKIP_PRESETS):
                continue
            notes, meta = [], []
            for key in GM_DRUMS:
                kind = ORCHESTRA_KINDS.get(key) if preset.name.startswith("Orchestra") else KIND_OF_NOTE.get(key)
                for velocity in VELOCITIES:
                    samples = font.samples_for(number, key, velocity)
                    if kind and samples:
                        notes.append((key, velocity))
                        meta.append((key, kind, velocity, samples))
            if not notes:
                continue
            for (key, kind, velocity, samples), x in zip(meta, render(path, number, notes, work)):
                y = one_shot(x)
                if y is not None:
                    hits.append(Hit(y, kind, key, source, licence, f"{number} {preset.name}", velocity, samples))
            print(f"{source} {number:3d} {preset.name}: {len(notes)} notes", flush=True)
    return hits


def sonic_pi_hits() -> list[Hit]:
    from tad_daemon.audio.load import load_oneshot
    from tad_daemon.quality.reference import available

    hits = []
    for cls, paths in available().items():
        for p in paths:
            kind = SONIC_PI_KINDS.get(p.stem, SONIC_PI_DEFAULT[cls])
            y = one_shot(load_oneshot(p, 2 * LENGTH))
            if y is not None:
                hits.append(Hit(y, kind, None, "sonic-pi-samples", "CC0-1.0", p.stem, None, [p.name]))
    return hits


def remove_duplicates(hits: list[Hit], threshold: float = 0.995) -> list[Hit]:
    """Drop renders that sound the same as an earlier one of the same kind and velocity (the same sample
    played by another kit with the same settings, or its mono copy in MuseScore's font): peak-normalised mono
    waveforms whose correlation over the first 0.37 s is above `threshold`. A sample's layers at other
    velocities stay: they are what velocity layers are learned from."""
    kept: list[Hit] = []
    seen: dict[tuple, list[np.ndarray]] = defaultdict(list)
    for hit in hits:
        mono = hit.audio.mean(axis=0)[: LENGTH // 2]
        v = mono / (np.linalg.norm(mono) + 1e-12)
        if any(float(v @ w) > threshold for w in seen[(hit.kind, hit.velocity)]):
            continue
        seen[(hit.kind, hit.velocity)].append(v)
        kept.append(hit)
    return kept


def assign_groups(hits: list[Hit]) -> None:
    """Recording groups: hits that share a sample (by name, across soundfonts) are one group."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for hit in hits:
        names = [f"{hit.source if hit.source == 'sonic-pi-samples' else 'gm'}:{recording_name(s)}"
                 for s in hit.samples]
        for other in names[1:]:
            parent[find(other)] = find(names[0])
    for hit in hits:
        first = hit.samples[0]
        hit.group = find(f"{hit.source if hit.source == 'sonic-pi-samples' else 'gm'}:{recording_name(first)}")


def split(hits: list[Hit], share: float = HELD_OUT) -> None:
    """Whole recording groups held out, about `share` of each kind's groups (at least one where a kind has
    two or more), chosen by a hash of the group's name (stable when sources are added). A group is held out
    for every kind it holds, so no recording is on both sides; the kinds with fewest groups choose first,
    and a later kind passes over a group that would hold out more of an earlier kind than its share."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for hit in hits:
        by_kind[hit.kind].add(hit.group)
    target = {k: max(1, round(share * len(g))) if len(g) > 1 else 0 for k, g in by_kind.items()}
    held: set[str] = set()
    for kind in sorted(by_kind, key=lambda k: (len(by_kind[k]), k)):
        groups = by_kind[kind]
        for g in sorted(groups, key=lambda g: hashlib.sha256(f"{kind}|{g}".encode()).hexdigest()):
            if len(groups & held) >= target[kind]:
                break
            others = [k for k in by_kind if g in by_kind[k] and k != kind]
            if all(len(by_kind[k] & (held | {g})) <= target[k] for k in others):
                held.add(g)
    for hit in hits:
        hit.split = "heldout" if hit.group in held else "train"


def write(hits: list[Hit], out: Path) -> None:
    for sub in ("train", "heldout"):
        shutil.rmtree(out / sub, ignore_errors=True)
    names: Counter = Counter()
    for hit in hits:
        kit = "".join(c if c.isalnum() else "-" for c in hit.kit).strip("-")
        note = f"-n{hit.note}" if hit.note is not None else ""
        vel = f"-v{hit.velocity}" if hit.velocity is not None else ""
        stem = f"{hit.source}-{kit}{note}{vel}"
        names[stem] += 1
        path = out / hit.split / hit.kind / f"{stem}{'' if names[stem] == 1 else f'-{names[stem]}'}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, hit.audio.T, RATE, subtype="PCM_24")
        hit.file = path.relative_to(out).as_posix()
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "kind", "class", "gm_note", "gm_name", "source", "licence", "kit", "velocity",
                    "samples", "group", "split"])
        for h in hits:
            w.writerow([h.file, h.kind, CLASS_OF_KIND.get(h.kind, ""), h.note or "",
                        GM_DRUMS[h.note] if h.note else "", h.source, h.licence, h.kit, h.velocity or "",
                        "|".join(h.samples), h.group, h.split])
    (out / "LICENSES.md").write_text(LICENSES, encoding="utf-8")


def read_manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summary(out: Path) -> None:
    rows = read_manifest(out)
    table = Counter((r["kind"], r["split"]) for r in rows)
    groups = defaultdict(set)
    for r in rows:
        groups[(r["kind"], r["split"])].add(r["group"])
    print(f"{'kind':12s} {'train':>14s} {'held out':>14s}   (files / recording groups)")
    for kind in sorted({r["kind"] for r in rows}):
        cells = [f"{table[(kind, s)]:5d} / {len(groups[(kind, s)]):3d}" for s in ("train", "heldout")]
        print(f"{kind:12s} {cells[0]:>14s} {cells[1]:>14s}")
    print(Counter(r["source"] for r in rows))


LICENSES = """# Licences of the real-drum corpus

Every file's source and licence is in manifest.csv.

## FluidR3_GM (Debian fluid-soundfont-gm), MIT

Copyright (c) 2000-2002, 2008 Frank Wen <getfrank@gmail.com>

## MuseScore_General (Debian musescore-general-soundfont), MIT (parts PD or CC0)

Copyright (c) 2018-2021 S. Christian Collins; Fluid (R3) Mono: Copyright (c) 2014-2017 Michael Cowgill;
Fluid (R3): Copyright (c) 2000-2002, 2008 Frank Wen. MuseScore Drumline samples (CC0) by S. Christian Collins
and Amir Oosman.

Both under the MIT licence:

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without
limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the
Software, and to permit persons to whom the Software is furnished to do so, subject to the following
conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions
of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED
TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL
THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.

## sonic-pi-samples (Debian sonic-pi-samples), CC0-1.0

No rights reserved.
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--summary", action="store_true", help="only print what OUT holds")
    p.add_argument("--resplit", action="store_true", help="split OUT's one-shots again, without rendering")
    args = p.parse_args()
    out = Path(args.out)
    if args.resplit:
        hits = [Hit(sf.read(out / r["file"], dtype="float32", always_2d=True)[0].T, r["kind"],
                    int(r["gm_note"]) if r["gm_note"] else None, r["source"], r["licence"], r["kit"],
                    int(r["velocity"]) if r["velocity"] else None, r["samples"].split("|"))
                for r in read_manifest(out) if not r["kit"].split(" ", 1)[-1].startswith(SKIP_PRESETS)]
        assign_groups(hits)
        split(hits)
        write(hits, out)
    elif not args.summary:
        if not shutil.which("fluidsynth"):
            sys.exit("fluidsynth is needed to render the soundfonts (Debian: apt install fluidsynth)")
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            hits = soundfont_hits(Path(tmp)) + sonic_pi_hits()
        before = len(hits)
        hits = remove_duplicates(hits)
        print(f"{before} renders, {len(hits)} after removing duplicates")
        assign_groups(hits)
        split(hits)
        write(hits, out)
    summary(out)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
