"""Drum-class realism toolkit: features, classifier (fit, save/load), augmentation, Fréchet distance."""

from __future__ import annotations

import numpy as np
import pytest

from tad_daemon.quality import (
    DrumClassifier,
    augment,
    extract,
    extract_batch,
    feature_names,
    frechet_distance,
)
from tad_daemon.quality.reference import REAL_CLASSES, available, bundled_classifier
from tad_daemon.synth import CLASSES, render, render_batch


@pytest.fixture(scope="module")
def synth_features() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test features of synthetic one-shots, from different seeds."""
    n = 10
    train = np.concatenate([extract_batch(render_batch(k, n, seed=100)) for k in CLASSES])
    test = np.concatenate([extract_batch(render_batch(k, n, seed=200)) for k in CLASSES])
    labels = np.repeat(CLASSES, n)
    return train, labels, test, labels


def test_features_shape_and_invariances() -> None:
    x = render("snare", np.random.default_rng(0), "acoustic")
    f = extract(x)
    assert f.shape == (len(feature_names()),) and np.isfinite(f).all()
    assert np.allclose(extract(0.1 * x), f, atol=1e-6)  # gain does not matter
    shifted = np.pad(x, ((0, 0), (132, 0)))[:, : x.shape[1]]  # 3 ms later
    assert np.abs(extract(shifted) - f).mean() < 0.5
    assert np.allclose(extract(x.mean(axis=0)), f)  # mono input works the same
    silent = extract(np.zeros((2, 32768), np.float32))
    assert np.isfinite(silent).all()


def test_features_tell_classes_apart() -> None:
    names = feature_names()
    kick = extract(render("kick", np.random.default_rng(1), "808"))
    hat = extract(render("hat", np.random.default_rng(1), "closed"))
    c = names.index("centroid_s1")
    assert 2 ** hat[c] > 4000 > 300 > 2 ** kick[c]


def test_classifier_separates_synthetic_classes(synth_features) -> None:
    train, y_train, test, y_test = synth_features
    clf = DrumClassifier(hidden=16, seed=0).fit(train, y_train, classes=CLASSES)
    assert clf.classes == CLASSES
    proba = clf.predict_proba(test)
    assert proba.shape == (len(test), 4) and np.allclose(proba.sum(axis=1), 1.0)
    accuracy = np.mean(clf.predict(test) == y_test)
    assert accuracy >= 0.85, accuracy
    for c in CLASSES:
        assert np.mean(clf.predict(test[y_test == c]) == c) >= 0.6, c


def test_classifier_save_load_round_trip(synth_features, tmp_path) -> None:
    train, y_train, test, _ = synth_features
    clf = DrumClassifier(hidden=8, seed=3, max_iter=50).fit(train, y_train)
    path = tmp_path / "clf.npz"
    clf.save(path)
    with np.load(path, allow_pickle=False) as f:  # plain arrays only
        assert "classes" in f.files
    again = DrumClassifier.load(path)
    assert again.classes == clf.classes
    assert np.array_equal(again.predict_proba(test), clf.predict_proba(test))
    assert np.array_equal(again.embed(test), clf.embed(test))
    linear = DrumClassifier(hidden=0, max_iter=50).fit(train, y_train)
    linear.save(tmp_path / "linear.npz")
    assert np.array_equal(DrumClassifier.load(tmp_path / "linear.npz").predict(test), linear.predict(test))


def test_classifier_is_deterministic_and_checks_input(synth_features, tmp_path) -> None:
    train, y_train, test, _ = synth_features
    a = DrumClassifier(hidden=8, seed=1, max_iter=30).fit(train, y_train).predict_proba(test)
    b = DrumClassifier(hidden=8, seed=1, max_iter=30).fit(train, y_train).predict_proba(test)
    assert np.array_equal(a, b)
    with pytest.raises(RuntimeError):
        DrumClassifier().predict(test)
    with pytest.raises(ValueError):
        DrumClassifier(max_iter=5).fit(train, y_train).predict(test[:, :10])
    with pytest.raises(ValueError):
        DrumClassifier(max_iter=5).fit(train, y_train, classes=("kick", "snare"))
    bad = tmp_path / "other.npz"
    np.savez(bad, format=np.array("something else"))
    with pytest.raises(ValueError):
        DrumClassifier.load(bad)


def test_embedding_and_frechet_distance(synth_features) -> None:
    train, y_train, test, y_test = synth_features
    clf = DrumClassifier(hidden=0, max_iter=30).fit(train, y_train)
    e = clf.embed(test)
    assert e.shape == test.shape
    kicks, hats = e[y_test == "kick"], e[y_test == "hat"]
    more_kicks = clf.embed(train[y_train == "kick"])
    assert frechet_distance(kicks, kicks) == pytest.approx(0.0, abs=1e-3)
    assert frechet_distance(kicks, more_kicks) < frechet_distance(kicks, hats)
    with pytest.raises(ValueError):
        frechet_distance(kicks, hats[:, :5])


def test_augment_keeps_format() -> None:
    x = render("kick", np.random.default_rng(0))
    y = augment(x, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert not np.allclose(x, y)
    assert np.array_equal(y, augment(x, np.random.default_rng(1)))


def test_reference_lists() -> None:
    names = [n for v in REAL_CLASSES.values() for n in v]
    assert len(names) == len(set(names)) and set(REAL_CLASSES) == set(CLASSES)
    found = available()
    assert set(found) == set(CLASSES)  # empty lists where sonic-pi-samples is not installed


def test_bundled_classifier_recognises_synthetic_drums(synth_features) -> None:
    """The shipped classifier was trained on real CC0 one-shots only: our drums must look real to it."""
    _, _, test, y_test = synth_features
    clf = bundled_classifier()
    assert clf.classes == CLASSES
    pred = clf.predict(test)
    assert np.mean(pred == y_test) >= 0.8
    for c in ("kick", "snare", "hat"):
        assert np.mean(pred[y_test == c] == c) >= 0.7, c
