"""The quality report of a model (`tad-daemon evaluate`), judged against real drums it never learned from.

Held-out real kits (whole recordings of the General MIDI soundfonts' kits and of sonic-pi's CC0 drums, split
from the training data by recording, never by file) are the yardstick: every figure of a model's outputs is
printed beside the same figure of those real drums. The figures: the class a classifier trained on real
drums only gives them; the tail level and the energy above 8 kHz (hiss); the decay time; clicks; diversity
relative to the real kits'; a Fréchet distance of features as a multiple of the distance between two halves
of the real kits (1.0x: as close as another real kit). Nothing here needs a download or the real audio: the
classifier, the held-out kits' statistics and a few of their sounds for the picture ship with the package
(built by `bench/build_real_judge.py`; the sources' licences are in reference/NOTICE.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from tad_daemon.audio.post import count_clicks
from tad_daemon.kinds import kinds_of
from tad_daemon.limits import SAMPLE_RATE, SILENT_PEAK
from tad_daemon.quality.classifier import DrumClassifier
from tad_daemon.quality.features import extract_batch
from tad_daemon.quality.frechet import gaussian_frechet
from tad_daemon.quality.measures import measure

REFERENCE = Path(__file__).parent / "reference"
REAL_CLASSIFIER = REFERENCE / "real_classifier.npz"  # trained on the real kits' training split only
REAL_KITS = REFERENCE / "real_kits.npz"  # the held-out real kits: statistics and a few sounds

CLIP_LEVEL = 0.999  # a raw output sample at or above this magnitude is clipped (the writer would clip it)
DC_LIMIT = 0.02  # |mean| above -34 dBFS: a DC offset the DC blocker has to remove
RIDGE = 1e-3  # added to covariances: the held-out kits are few per class


@dataclass
class RealKits:
    """The held-out real drums: features in a PCA space of the classifier's standardised features, class,
    recording group (whole kits or shared recordings stay together), the classifier's verdict, the listener
    measures, and a few sounds (mono, int16) to draw beside a model's."""

    mean: np.ndarray
    components: np.ndarray  # (k, d)
    z: np.ndarray  # (n, k)
    labels: np.ndarray
    groups: np.ndarray
    predicted: np.ndarray
    measures: dict[str, np.ndarray]
    examples: np.ndarray  # (m, frames) int16
    example_labels: np.ndarray

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        return (embeddings - self.mean) @ self.components.T

    def of(self, kind: str) -> np.ndarray:
        """The held-out drums of `kind` (a mixture's name, `perc`, stands for all of its kinds)."""
        return np.isin(self.labels, kinds_of(kind))

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, mean=self.mean, components=self.components, z=self.z, labels=self.labels,
                            groups=self.groups, predicted=self.predicted, examples=self.examples,
                            example_labels=self.example_labels, **{f"m_{k}": v for k, v in self.measures.items()})

    @classmethod
    def load(cls, path: str | Path = REAL_KITS) -> RealKits:
        with np.load(path, allow_pickle=False) as f:
            return cls(f["mean"], f["components"], f["z"], f["labels"].astype(str), f["groups"].astype(str),
                       f["predicted"].astype(str), {k[2:]: f[k] for k in f.files if k.startswith("m_")},
                       f["examples"], f["example_labels"].astype(str))


@lru_cache(maxsize=1)
def shipped_classifier() -> DrumClassifier:
    return DrumClassifier.load(REAL_CLASSIFIER)  # read once: a learning curve judges many snapshots


@lru_cache(maxsize=1)
def shipped_kits() -> RealKits:
    return RealKits.load()


def mean_pairwise_distance(z: np.ndarray) -> float:
    if len(z) < 2:
        return 0.0
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(z), 1)].mean())


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    ridge = RIDGE * np.eye(a.shape[1])
    return gaussian_frechet(a.mean(axis=0), np.cov(a, rowvar=False) + ridge, b.mean(axis=0),
                            np.cov(b, rowvar=False) + ridge)


def kit_halves(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of two halves of the real drums, whole recording groups to a side (alternating, in name order)."""
    names = sorted(set(groups))
    first = {g for i, g in enumerate(names) if i % 2 == 0}
    a = np.array([g in first for g in groups], dtype=bool)
    return a, ~a


def defects(raw: np.ndarray) -> dict[str, float]:
    """Shares of raw (before post-processing) outputs (n, channels, frames) that are clipped, silent, DC-offset
    or have clicks (isolated spikes no real drum has: audio/post.py finds them), and the clicks per one-shot."""
    peak = np.abs(raw).max(axis=(1, 2))
    clipped = (np.abs(raw) >= CLIP_LEVEL).mean(axis=(1, 2)) > 1e-3
    clicks = np.array([count_clicks(x) for x in raw])
    return {"clipped": float(clipped.mean()), "silent": float((peak < SILENT_PEAK).mean()),
            "dc_offset": float((np.abs(raw.mean(axis=(1, 2))) > DC_LIMIT).mean()),
            "clicks": float((clicks > 0).mean()), "clicks_per_oneshot": float(clicks.mean())}


@dataclass
class QualityReport:
    model: str
    kind: str
    count: int
    steps: int
    sampler: str
    seconds_per_oneshot: float
    class_consistency: float  # share the real-drum classifier gives the model's class
    real_consistency: float  # the same for the held-out real drums of the class
    predicted: dict  # class -> count
    tail_db: float  # medians over the one-shots; each real_* the same over the held-out real drums
    real_tail_db: float
    high_band_db: float
    real_high_band_db: float
    decay_ms: float
    real_decay_ms: float
    diversity: float  # mean pairwise feature distance, as a share of the real kits' own
    frechet: float  # to the real drums of the class, as a multiple of kit-to-kit (real half against half)
    frechet_floor: float  # the kit-to-kit distance itself
    real_count: int  # held-out real drums of the class
    clipped: float
    silent: float
    dc_offset: float
    clicks: float  # share of raw outputs with at least one click (post-processing removes them)
    clicks_per_oneshot: float
    sheet: str = ""
    schedule: str = ""  # the sampler's time steps (logsnr, karras, linear)
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M"))

    def lines(self) -> list[str]:
        called = ", ".join(f"{k} {v}" for k, v in self.predicted.items())
        return [
            f"{self.model} ({self.kind}): {self.count} one-shots, {self.sampler} {self.steps} steps"
            f"{f' ({self.schedule})' if self.schedule else ''}, {self.seconds_per_oneshot:.2f} s each",
            f"  {'':30s}{'model':>9s}  {'real kits':>9s}  (held out: {self.real_count} real {self.kind}s "
            "never trained on)",
            f"  {'called ' + self.kind:30s}{self.class_consistency:9.0%}  {self.real_consistency:9.0%}  "
            f"(a classifier of real drums; called {called})",
            f"  {'tail level, last 40 % (dB)':30s}{self.tail_db:9.1f}  {self.real_tail_db:9.1f}  (re peak; median)",
            f"  {'energy above 8 kHz (dB)':30s}{self.high_band_db:9.1f}  {self.real_high_band_db:9.1f}  "
            "(re all energy; median)",
            f"  {'decay to -30 dB (ms)':30s}{self.decay_ms:9.0f}  {self.real_decay_ms:9.0f}  (median)",
            f"  {'diversity':30s}{self.diversity:9.0%}  {1:9.0%}  (of the real kits' own)",
            f"  {'Frechet distance':30s}{self.frechet:8.1f}x  {1:8.1f}x  (x the distance between two halves of "
            f"the real kits, {self.frechet_floor:.1f})",
            f"  {'clicks per raw one-shot':30s}{self.clicks_per_oneshot:9.1f}  {0:9.1f}  "
            "(post-processing removes them)",
            f"  clipped / silent / DC offset: {self.clipped:.0%} / {self.silent:.0%} / {self.dc_offset:.0%}",
        ] + ([f"  picture: {self.sheet}"] if self.sheet else [])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def judge(processed: np.ndarray, raw: np.ndarray, kind: str, kits: RealKits | None = None,
          classifier: DrumClassifier | None = None) -> dict:
    """Every figure of the report for one-shots of `kind`: `processed` as written to disk, `raw` before;
    NaN where `kind` is not one of the drum kinds the real kits hold (tad_daemon/kinds.py)."""
    clf = classifier or shipped_classifier()
    kits = kits or shipped_kits()
    feats = extract_batch(processed)
    predicted = clf.predict(feats)
    z = kits.project(clf.embed(feats))
    ours = measure(processed)
    real = kits.of(kind)
    out = {"predicted": {c: int(np.sum(predicted == c)) for c in clf.classes if np.any(predicted == c)},
           "tail_db": float(np.median(ours["tail_db"])), "high_band_db": float(np.median(ours["high_band_db"])),
           "decay_ms": float(np.median(ours["decay_ms"])), "real_count": int(real.sum()), **defects(raw)}
    if not real.any():
        nan = float("nan")
        return out | dict.fromkeys(("class_consistency", "real_consistency", "real_tail_db", "real_high_band_db",
                                    "real_decay_ms", "diversity", "frechet", "frechet_floor"), nan)
    a, b = kit_halves(kits.groups[real])
    floor = frechet(kits.z[real][a], kits.z[real][b]) if min(a.sum(), b.sum()) >= 2 else float("nan")
    distance = frechet(z, kits.z[real]) if len(z) >= 2 else float("nan")
    return out | {
        "class_consistency": float(np.mean(np.isin(predicted, kinds_of(kind)))),
        "real_consistency": float(np.mean(np.isin(kits.predicted[real], kinds_of(kind)))),
        "real_tail_db": float(np.median(kits.measures["tail_db"][real])),
        "real_high_band_db": float(np.median(kits.measures["high_band_db"][real])),
        "real_decay_ms": float(np.median(kits.measures["decay_ms"][real])),
        "diversity": mean_pairwise_distance(z) / mean_pairwise_distance(kits.z[real]),
        "frechet": distance / floor, "frechet_floor": floor,
    }


def contact_sheet(audio: np.ndarray, path: str | Path, title: str, kind: str = "",
                  sample_rate: int = SAMPLE_RATE, kits: RealKits | None = None) -> Path:
    """Waveforms and spectrograms of up to 6 one-shots, and beside them (right, shaded) up to 3 held-out real
    drums of `kind`, as a PNG to look at before listening."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kits = kits or shipped_kits()
    real = kits.examples[np.isin(kits.example_labels, kinds_of(kind))][:3].astype(np.float32) / 32767
    shown = [(x.mean(axis=0), "model") for x in audio[:6]] + [(x, "real") for x in real]
    fig, axes = plt.subplots(2, len(shown), figsize=(2.4 * len(shown), 4.4), squeeze=False)
    t = np.arange(audio.shape[-1]) / sample_rate
    for i, (mono, source) in enumerate(shown):
        mono = mono / max(float(np.abs(mono).max()), 1e-9)
        color = "#1f4e79" if source == "model" else "#7f2704"
        axes[0, i].plot(t[:len(mono)], mono, lw=0.4, color=color)
        axes[0, i].set_ylim(-1, 1)
        axes[0, i].set_xticks([])
        axes[0, i].set_title(source, fontsize=8, color=color)
        with np.errstate(divide="ignore"):  # digital silence after the tail gate: -inf dB, drawn black
            axes[1, i].specgram(mono + 1e-9, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", vmin=-130)
        axes[1, i].set_xlabel("s")
        if source == "real":
            for ax in axes[:, i]:
                ax.patch.set_alpha(0.0)
                for spine in ax.spines.values():
                    spine.set_color(color)
        if i:
            axes[0, i].set_yticks([])
            axes[1, i].set_yticks([])
    axes[1, 0].set_ylabel("Hz")
    fig.suptitle(title + ("   |   right: held-out real drums" if len(real) else ""), fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
