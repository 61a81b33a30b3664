"""The quality report of a model (`tad-daemon evaluate`): is it making the drum it should, how close to the
reference sounds, how varied, and how often broken. Nothing here needs a download: the classifier and the
reference statistics ship with the package (built by `bench/build_report_reference.py`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tad_daemon.audio.post import count_clicks
from tad_daemon.limits import SAMPLE_RATE
from tad_daemon.quality.classifier import DrumClassifier
from tad_daemon.quality.features import extract_batch
from tad_daemon.quality.frechet import gaussian_frechet

REFERENCE = Path(__file__).parent / "reference"
REPORT_CLASSIFIER = REFERENCE / "report_classifier.npz"  # procedural corpus + CC0 one-shots
REPORT_REFERENCE = REFERENCE / "report_reference.npz"  # per-class statistics of the same sounds
REAL_CLASSIFIER = Path(__file__).parents[1] / "synth" / "reference" / "sonic_pi_classifier.npz"  # CC0 only

CLIP_LEVEL = 0.999  # a raw output sample at or above this magnitude is clipped (the writer would clip it)
SILENT_PEAK = 10 ** (-60 / 20)  # peak below -60 dBFS: silent
DC_LIMIT = 0.02  # |mean| above -34 dBFS: a DC offset the DC blocker has to remove


@dataclass
class Reference:
    """PCA basis of the classifier's embedding and each class's Gaussian in it (for Fréchet distances)."""

    mean: np.ndarray
    components: np.ndarray  # (k, d)
    classes: tuple[str, ...]
    class_mean: np.ndarray  # (classes, k)
    class_cov: np.ndarray  # (classes, k, k)
    class_diversity: np.ndarray  # (classes,) mean pairwise distance of the reference sounds

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        return (embeddings - self.mean) @ self.components.T

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, components=self.components, classes=np.array(self.classes),
                 class_mean=self.class_mean, class_cov=self.class_cov, class_diversity=self.class_diversity)

    @classmethod
    def load(cls, path: str | Path = REPORT_REFERENCE) -> Reference:
        with np.load(path, allow_pickle=False) as f:
            return cls(f["mean"], f["components"], tuple(str(c) for c in f["classes"]), f["class_mean"],
                       f["class_cov"], f["class_diversity"])

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: list[str], dims: int = 16) -> Reference:
        mean = embeddings.mean(axis=0)
        _, _, vt = np.linalg.svd(embeddings - mean, full_matrices=False)
        ref = cls(mean, vt[:dims], tuple(sorted(set(labels))), np.zeros(0), np.zeros(0), np.zeros(0))
        z, y = ref.project(embeddings), np.array(labels)
        ref.class_mean = np.stack([z[y == c].mean(axis=0) for c in ref.classes])
        ref.class_cov = np.stack([np.cov(z[y == c], rowvar=False) for c in ref.classes])
        ref.class_diversity = np.array([mean_pairwise_distance(z[y == c]) for c in ref.classes])
        return ref

    def frechet(self, kind: str, z: np.ndarray) -> float:
        """Fréchet distance of projected embeddings `z` to the stored Gaussian of class `kind`."""
        i = self.classes.index(kind)
        ridge = 1e-6 * np.eye(self.class_mean.shape[1])
        return gaussian_frechet(z.mean(axis=0), np.cov(z, rowvar=False) + ridge, self.class_mean[i],
                                self.class_cov[i] + ridge)


def mean_pairwise_distance(z: np.ndarray) -> float:
    if len(z) < 2:
        return 0.0
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(z), 1)].mean())


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
    class_consistency: float  # share the report classifier (procedural + CC0) gives the model's class
    class_consistency_real: float  # the same with the classifier trained on real CC0 drums only
    predicted: dict  # class -> count (report classifier)
    frechet: float  # to the reference sounds of the model's class; lower is closer
    diversity: float  # mean pairwise distance of the outputs
    reference_diversity: float  # the same for the reference sounds of the class
    clipped: float
    silent: float
    dc_offset: float
    clicks: float = 0.0  # share of raw outputs with at least one click (post-processing removes them)
    clicks_per_oneshot: float = 0.0
    sheet: str = ""
    schedule: str = ""  # the sampler's time steps (logsnr, karras, linear)
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M"))

    def lines(self) -> list[str]:
        return [
            f"{self.model} ({self.kind}): {self.count} one-shots, {self.sampler} {self.steps} steps"
            f"{f' ({self.schedule})' if self.schedule else ''}, "
            f"{self.seconds_per_oneshot:.2f} s each",
            f"  class consistency   {self.class_consistency:6.0%}  (real-drum classifier: "
            f"{self.class_consistency_real:.0%}); called {', '.join(f'{k} {v}' for k, v in self.predicted.items())}",
            f"  Frechet distance    {self.frechet:8.2f}  (to the {self.kind} reference sounds; lower is closer)",
            f"  diversity           {self.diversity:8.2f}  (reference sounds: {self.reference_diversity:.2f})",
            f"  clipped / silent / DC offset / clicks: {self.clipped:.0%} / {self.silent:.0%} / "
            f"{self.dc_offset:.0%} / {self.clicks:.0%}  (clicks: {self.clicks_per_oneshot:.1f} per raw one-shot; "
            "post-processing removes them)",
        ] + ([f"  picture: {self.sheet}"] if self.sheet else [])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def judge(processed: np.ndarray, raw: np.ndarray, kind: str) -> dict:
    """Every figure of the report for one-shots of `kind`: `processed` as written to disk, `raw` before."""
    report_clf = DrumClassifier.load(REPORT_CLASSIFIER)
    real_clf = DrumClassifier.load(REAL_CLASSIFIER)
    ref = Reference.load()
    feats = extract_batch(processed)
    predicted = report_clf.predict(feats)
    z = ref.project(report_clf.embed(feats))
    known = kind in ref.classes
    return {
        "class_consistency": float(np.mean(predicted == kind)) if known else float("nan"),
        "class_consistency_real": float(np.mean(real_clf.predict(feats) == kind)) if known else float("nan"),
        "predicted": {c: int(np.sum(predicted == c)) for c in report_clf.classes if np.any(predicted == c)},
        "frechet": ref.frechet(kind, z) if known and len(z) > 1 else float("nan"),
        "diversity": mean_pairwise_distance(z),
        "reference_diversity": float(ref.class_diversity[ref.classes.index(kind)]) if known else float("nan"),
        **defects(raw),
    }


def contact_sheet(audio: np.ndarray, path: str | Path, title: str, sample_rate: int = SAMPLE_RATE) -> Path:
    """Waveforms (top) and spectrograms (bottom) of up to 8 one-shots, as a PNG to look at before listening."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = audio[:8]
    fig, axes = plt.subplots(2, len(shown), figsize=(2.6 * len(shown), 4.4), squeeze=False)
    t = np.arange(audio.shape[-1]) / sample_rate
    for i, x in enumerate(shown):
        mono = x.mean(axis=0)
        axes[0, i].plot(t, mono, lw=0.4, color="#1f4e79")
        axes[0, i].set_ylim(-1, 1)
        axes[0, i].set_xticks([])
        axes[1, i].specgram(mono + 1e-9, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", vmin=-130)
        axes[1, i].set_xlabel("s")
        if i:
            axes[0, i].set_yticks([])
            axes[1, i].set_yticks([])
    axes[1, 0].set_ylabel("Hz")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
