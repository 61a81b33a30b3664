"""A training set: every readable sound file under a folder, prepared as the seed prepares its data.

Each file is read whatever its format, rate and channel layout (`load_oneshot`: resampled to 44.1 kHz,
stereo, cropped or padded at the end to the model's length), then loudness-normalised to -20 LUFS like the
seed's `Loudness` transform (integrated loudness of the cropped clip, no limiter). Silent files and files
that cannot be read are skipped and reported; they never stop the run. A one-shot set fits in memory
(N files are N x 2 x 32768 float32, 256 KiB each), so the whole set is one tensor, cached in the run folder
so a resumed run trains on exactly the same data even if the folder changed meanwhile.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tad_daemon.atomic import atomic_write
from tad_daemon.audio.load import AudioError, load_oneshot, sound_info
from tad_daemon.limits import TRAINING_LUFS
from tad_daemon.models.presets import LENGTH, SAMPLE_RATE

log = logging.getLogger(__name__)

# What soundfile reads; anything else in the folder (.asd analysis files, .txt, artwork) is ignored quietly.
SOUND_SUFFIXES = {".wav", ".wave", ".bwf", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3",
                  ".caf", ".w64", ".rf64", ".au", ".snd"}
CACHE_FORMAT = "tad-daemon-dataset/1"
# A one-shot set is hundreds or thousands of files; a folder far bigger is most likely the wrong folder (a whole
# disk, a home folder) and would take very long to read and more memory than a laptop has (256 KiB a file).
MAX_FILES = 20_000
MAX_ENTRIES = 200_000  # files and folders looked at, sound or not


class DatasetError(ValueError):
    """A dataset that cannot be trained on (no folder, no permission, no usable sound file), with the reason."""


@dataclass
class DataSummary:
    folder: str
    length: int = LENGTH
    files: int = 0  # used
    seconds: float = 0.0  # total duration of the used files, before cropping
    cropped: int = 0  # used files longer than the model's length: only their start is learned
    skipped: list[list[str]] = field(default_factory=list)  # [path relative to the folder, reason]
    ignored: int = 0  # hidden files and files without a sound-file suffix

    def lines(self) -> list[str]:
        clip = self.length / SAMPLE_RATE
        out = [f"data: {self.folder}",
               f"  {self.files} sound files used, {self.seconds:.1f} s in all, as {clip:.2f} s one-shots"
               + (f" ({self.cropped} longer files cut at {clip:.2f} s)" if self.cropped else "")]
        if self.skipped:
            out.append(f"  {len(self.skipped)} skipped:")
            out += [f"    {path}: {reason}" for path, reason in self.skipped[:50]]
            if len(self.skipped) > 50:
                out.append(f"    ... and {len(self.skipped) - 50} more")
        if self.ignored:
            out.append(f"  {self.ignored} other files ignored (hidden, or not a sound file by their name)")
        return out

    def short(self) -> dict:
        """For a model file's header: the counts and the first reasons, not every skipped path."""
        d = asdict(self)
        d["skipped_count"] = len(self.skipped)
        d["skipped"] = self.skipped[:20]
        return d


@dataclass
class Dataset:
    audio: torch.Tensor  # (files, 2, length) float32
    summary: DataSummary
    # For a model of several kinds (KindUNet): each file's kind (an index into `kind_names`) and velocity
    # (0..1, or -1 where unknown). None for a model of one kind.
    kinds: torch.Tensor | None = None
    velocity: torch.Tensor | None = None
    kind_names: list[str] = field(default_factory=list)

    def kind_counts(self) -> dict[str, int]:
        if self.kinds is None:
            return {}
        counts = torch.bincount(self.kinds, minlength=len(self.kind_names)).tolist()
        return dict(zip(self.kind_names, counts))


LABELS_FILE = "labels.csv"  # optional, in a data folder: file (relative path), kind, velocity (0..1)


def read_labels(folder: Path) -> dict[str, dict]:
    """The rows of `folder`/labels.csv by file path (empty without one). A file's kind given there wins over
    its subfolder's name; its velocity is known only from there."""
    path = folder / LABELS_FILE
    if not path.is_file():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {row["file"]: row for row in csv.DictReader(f) if row.get("file")}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError) as e:
        raise DatasetError(f"{path}: cannot be read as file,kind,velocity ({e})") from None


def label_of(rel: str, labels: dict[str, dict], kinds: list[str], kind: str) -> tuple[int, float]:
    """(kind index, velocity) of the file at `rel`: labels.csv's kind, else its first subfolder's name if
    that is a kind, else `kind`; raises ValueError (the file is skipped) when none of those is a kind."""
    row = labels.get(rel, {})
    top = rel.split("/")[0] if "/" in rel else ""
    name = row.get("kind") or (top if top in kinds else kind)
    if name not in kinds:
        raise ValueError(f"no kind: put it in a folder named after one of {', '.join(kinds)}")
    try:
        velocity = float(row.get("velocity") or -1.0)
    except ValueError:
        raise ValueError(f"velocity {row.get('velocity')!r} in {LABELS_FILE} is not a number") from None
    if not (velocity == -1.0 or 0.0 <= velocity <= 1.0):
        raise ValueError(f"velocity {velocity} in {LABELS_FILE} is not within 0..1")
    return kinds.index(name), velocity


def _reason(error: Exception, path: Path) -> str:
    text = str(error)
    return text[len(str(path)) + 2:] if text.startswith(f"{path}: ") else text


def find_sound_files(folder: Path, max_files: int = MAX_FILES) -> tuple[list[Path], list[list[str]], int]:
    """(sound files in sorted order, [path, reason] of entries that cannot be used, count of other files).

    Raises DatasetError beyond `max_files` sound files or MAX_ENTRIES entries in all."""
    files, skipped, ignored = [], [], 0
    seen = 0

    def unreadable(e: OSError) -> None:
        skipped.append([Path(e.filename).relative_to(folder).as_posix() or ".",
                        f"cannot open the folder ({e.strerror.lower() if e.strerror else e})"])

    for root, dirs, names in os.walk(folder, onerror=unreadable):
        root = Path(root)
        seen += len(dirs) + len(names)
        if seen > MAX_ENTRIES:
            raise DatasetError(f"{folder}: more than {MAX_ENTRIES} files and folders; give the folder that holds "
                               "just the samples to train on")
        for d in sorted(dirs):
            if d.lower() in SOUND_SUFFIXES or Path(d).suffix.lower() in SOUND_SUFFIXES:
                skipped.append([(root / d).relative_to(folder).as_posix(), "is a folder, not a sound file"])
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or Path(name).suffix.lower() not in SOUND_SUFFIXES:
                ignored += 1  # including macOS's "._kick.wav" resource forks
                continue
            files.append(root / name)
        if len(files) > max_files:
            raise DatasetError(f"{folder}: more than {max_files} sound files; give the folder that holds just "
                               "the samples to train on")
    return files, skipped, ignored


def loudness_normalize(x: np.ndarray, lufs: float) -> np.ndarray | None:
    """`x` (channels, frames) at `lufs` integrated loudness, or None if it is silent (below the meter's
    -70 LUFS absolute gate everywhere)."""
    import pyloudnorm  # imports scipy.signal (seconds): only a run that prepares data needs it

    meter = pyloudnorm.Meter(SAMPLE_RATE, block_size=min(0.4, x.shape[-1] / SAMPLE_RATE))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loudness = meter.integrated_loudness(x.T.astype(np.float64))
    if not np.isfinite(loudness):
        return None
    return (x * 10 ** ((lufs - loudness) / 20)).astype(np.float32)


def _open_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise DatasetError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder (give the folder that holds the sound files)")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise DatasetError(f"{folder}: permission denied")
    return folder.resolve()


def _no_usable_files(folder: Path, skipped: list[list[str]]) -> DatasetError:
    why = f"; skipped: {'; '.join(f'{p}: {r}' for p, r in skipped[:5])}" if skipped else ""
    return DatasetError(f"{folder}: no usable sound files{why}")


def check_folder(folder: str | os.PathLike) -> int:
    """A quick look before queuing a job (file headers only): the number of readable sound files; raises
    DatasetError with the reasons if there is none. Silent files are found only when the job runs."""
    folder = _open_folder(folder)
    paths, skipped, _ = find_sound_files(folder)
    readable = 0
    for path in paths:
        if not os.access(path, os.R_OK):
            skipped.append([path.relative_to(folder).as_posix(), "permission denied"])
            continue
        try:
            info = sound_info(path)
            if info.frames > 0:
                readable += 1
                continue
            skipped.append([path.relative_to(folder).as_posix(), "the file holds no audio"])
        except AudioError as e:
            skipped.append([path.relative_to(folder).as_posix(), str(e).split(": ", 1)[-1]])
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            skipped.append([path.relative_to(folder).as_posix(), f"not a readable sound file ({e})"])
    if not readable:
        raise _no_usable_files(folder, skipped)
    return readable


def prepare(folder: str | os.PathLike, length: int = LENGTH, lufs: float = TRAINING_LUFS,
            kinds: list[str] | None = None, kind: str = "") -> Dataset:
    """Read and prepare every sound file under `folder`; raises DatasetError if none is usable.

    With `kinds` (a model of several kinds), each file is labelled as `label_of` says."""
    folder = _open_folder(folder)
    paths, skipped, ignored = find_sound_files(folder)
    summary = DataSummary(str(folder), length, skipped=skipped, ignored=ignored)
    labels = read_labels(folder) if kinds else {}
    clips, kind_of, velocity_of = [], [], []
    for path in paths:
        rel = path.relative_to(folder).as_posix()
        try:
            label = label_of(rel, labels, kinds, kind) if kinds else None
        except ValueError as e:
            skipped.append([rel, str(e)])
            continue
        try:
            x = load_oneshot(path, length)
            seconds = sound_info(path).duration
        except (AudioError, sf.LibsndfileError, RuntimeError, OSError) as e:
            log.warning("skipping %s: %s", rel, _reason(e, path))
            skipped.append([rel, _reason(e, path)])
            continue
        x = loudness_normalize(x, lufs)
        if x is None:
            log.info("skipping silent file %s", rel)
            skipped.append([rel, "silent"])
            continue
        clips.append(x)
        if label:
            kind_of.append(label[0])
            velocity_of.append(label[1])
        summary.files += 1
        summary.seconds += seconds
        summary.cropped += seconds * SAMPLE_RATE > length + 1
    if not clips:
        raise _no_usable_files(folder, skipped)
    if not kinds:
        return Dataset(torch.from_numpy(np.stack(clips)), summary)
    return Dataset(torch.from_numpy(np.stack(clips)), summary, torch.tensor(kind_of),
                   torch.tensor(velocity_of, dtype=torch.float32), list(kinds))


def save_cache(path: str | os.PathLike, data: Dataset) -> None:
    """The prepared set as one safetensors file, written atomically."""
    path = Path(path)
    meta = {"format": CACHE_FORMAT, "summary": json.dumps(asdict(data.summary)),
            "kind_names": json.dumps(data.kind_names)}
    tensors = {"audio": data.audio.contiguous()}
    if data.kinds is not None:
        tensors |= {"kinds": data.kinds.contiguous(), "velocity": data.velocity.contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_cache(path: str | os.PathLike) -> Dataset:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path}: not a prepared dataset")
        labelled = "kinds" in f.keys()
        return Dataset(f.get_tensor("audio"), DataSummary(**json.loads(meta["summary"])),
                       f.get_tensor("kinds") if labelled else None, f.get_tensor("velocity") if labelled else None,
                       json.loads(meta.get("kind_names", "[]")))


def augment(x: torch.Tensor, gen: torch.Generator, gain_db: float = 0.0, flip: bool = False,
            shift: int = 0) -> torch.Tensor:
    """Light augmentation of a (batch, channels, frames) batch, drawn from `gen`: a random gain within
    +-`gain_db`, polarity flipped half of the time, and the start delayed by up to `shift` samples."""
    b, _, n = x.shape
    if gain_db > 0:
        db = (torch.rand(b, generator=gen) * 2 - 1) * gain_db
        x = x * (10 ** (db / 20)).view(b, 1, 1)
    if flip:
        x = x * torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0).view(b, 1, 1)
    if shift > 0:
        offsets = torch.randint(0, shift + 1, (b,), generator=gen).tolist()
        delayed = torch.zeros_like(x)
        for i, o in enumerate(offsets):
            delayed[i, :, o:] = x[i, :, : n - o]
        x = delayed
    return x
