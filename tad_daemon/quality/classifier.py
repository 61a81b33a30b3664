"""A small drum-class classifier over `features.extract` vectors: standardise, one tanh layer, softmax.

Trained full-batch with L-BFGS (deterministic for a seed, a few seconds on one core for thousands of sounds),
with balanced class weights so a class with few examples counts as much as a large one. Saved as a plain
`.npz` of arrays (loaded with allow_pickle=False).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from tad_daemon.quality.features import feature_names

FORMAT = "tad-daemon/drum-classifier/1"


def _features_id() -> int:
    """Checksum of the feature layout: a saved classifier refuses features of another layout."""
    return zlib.crc32(",".join(feature_names()).encode())


class DrumClassifier:
    def __init__(self, hidden: int = 32, l2: float = 1e-3, seed: int = 0, max_iter: int = 400) -> None:
        self.hidden, self.l2, self.seed, self.max_iter = hidden, l2, seed, max_iter
        self.classes: tuple[str, ...] = ()
        self.mean = self.scale = None
        self.params: list[np.ndarray] = []

    # -- model -------------------------------------------------------------------------------------------
    def _shapes(self, d: int, c: int) -> list[tuple[int, ...]]:
        if self.hidden:
            return [(d, self.hidden), (self.hidden,), (self.hidden, c), (c,)]
        return [(d, c), (c,)]

    def _forward(self, params: list[np.ndarray], xs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.hidden:
            w1, b1, w2, b2 = params
            h = np.tanh(xs @ w1 + b1)
            return h @ w2 + b2, h
        w, b = params
        return xs @ w + b, None

    def _loss(
        self, flat: np.ndarray, xs: np.ndarray, onehot: np.ndarray, w: np.ndarray
    ) -> tuple[float, np.ndarray]:
        params = self._unflatten(flat, xs.shape[1], onehot.shape[1])
        logits, h = self._forward(params, xs)
        logits = logits - logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        weights = [p for p in params if p.ndim == 2]
        loss = -(w[:, None] * onehot * logp).sum() + 0.5 * self.l2 * sum((p * p).sum() for p in weights)
        dz = (np.exp(logp) - onehot) * w[:, None]
        if self.hidden:
            w1, _, w2, _ = params
            dh = (dz @ w2.T) * (1.0 - h * h)
            grads = [xs.T @ dh + self.l2 * w1, dh.sum(0), h.T @ dz + self.l2 * w2, dz.sum(0)]
        else:
            grads = [xs.T @ dz + self.l2 * params[0], dz.sum(0)]
        return float(loss), np.concatenate([g.ravel() for g in grads])

    def _unflatten(self, flat: np.ndarray, d: int, c: int) -> list[np.ndarray]:
        out, i = [], 0
        for shape in self._shapes(d, c):
            size = int(np.prod(shape))
            out.append(flat[i : i + size].reshape(shape))
            i += size
        return out

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("the classifier is not trained: call fit() or load() first")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.size:
            raise ValueError(f"expected features of shape (n, {self.mean.size}), got {x.shape}")
        return np.clip((x - self.mean) / self.scale, -10.0, 10.0)

    # -- public ------------------------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: Sequence[str], classes: Sequence[str] | None = None) -> DrumClassifier:
        """Train on features `x` (n, d) with class names `y`; `classes` fixes the output order."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        self.classes = tuple(classes) if classes is not None else tuple(sorted(set(y.tolist())))
        index = {c: i for i, c in enumerate(self.classes)}
        if any(label not in index for label in y.tolist()):
            raise ValueError(f"labels must be among {self.classes}")
        labels = np.array([index[label] for label in y.tolist()])
        self.mean = x.mean(axis=0)
        self.scale = np.maximum(x.std(axis=0), 1e-3 * (np.abs(self.mean) + 1.0))
        xs = self._standardise(x)
        onehot = np.eye(len(self.classes))[labels]
        counts = np.bincount(labels, minlength=len(self.classes)).astype(np.float64)
        w = 1.0 / (len(self.classes) * counts[labels])  # balanced: every class weighs 1/C in total

        rng = np.random.default_rng(self.seed)
        init = [
            rng.standard_normal(s) / np.sqrt(s[0]) if len(s) == 2 else np.zeros(s)
            for s in self._shapes(xs.shape[1], len(self.classes))
        ]
        res = minimize(
            self._loss,
            np.concatenate([p.ravel() for p in init]),
            args=(xs, onehot, w),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        self.params = self._unflatten(res.x, xs.shape[1], len(self.classes))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(n, len(classes)) class probabilities of features `x`."""
        logits, _ = self._forward(self.params, self._standardise(x))
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.array(self.classes)[np.argmax(self.predict_proba(x), axis=1)]

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Standardised features (n, d): every feature weighs alike, for Fréchet distance and diversity.

        Deliberately not the hidden layer, which is trained to forget everything but the class.
        """
        return self._standardise(x)

    def save(self, path: str | os.PathLike) -> None:
        arrays = {f"param_{i}": p for i, p in enumerate(self.params)}
        np.savez(
            path,
            format=np.array(FORMAT),
            features_id=np.array(_features_id()),
            classes=np.array(self.classes),
            mean=self.mean,
            scale=self.scale,
            config=np.array([self.hidden, self.seed, self.max_iter]),
            l2=np.array(self.l2),
            **arrays,
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> DrumClassifier:
        with np.load(path, allow_pickle=False) as f:
            if str(f["format"]) != FORMAT:
                raise ValueError(f"{path}: not a drum classifier file")
            if int(f["features_id"]) != _features_id():
                raise ValueError(f"{path}: made for another feature layout; retrain it")
            hidden, seed, max_iter = (int(v) for v in f["config"])
            clf = cls(hidden=hidden, l2=float(f["l2"]), seed=seed, max_iter=max_iter)
            clf.classes = tuple(str(c) for c in f["classes"])
            clf.mean, clf.scale = f["mean"], f["scale"]
            n = len([k for k in f.files if k.startswith("param_")])
            clf.params = [f[f"param_{i}"] for i in range(n)]
        return clf
