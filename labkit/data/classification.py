"""Small image-classification data sets as flat float32 arrays (notebooks 01 and 02).

:func:`load_dataset` gives scikit-learn's 8×8 digits offline (the default) or MNIST / Fashion-MNIST from
``keras.datasets`` when online or cached; :func:`subset_classes` keeps some classes, :func:`shift_augment`
shifts images by a pixel or so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labkit.env import import_keras

__all__ = ["Data", "DATASETS", "load_dataset", "subset_classes", "shift_augment"]


@dataclass
class Data:
    """A classification data set as float32 arrays; images flattened to vectors."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    def __repr__(self) -> str:
        return (f"Data({self.name!r}: train {self.X_train.shape}, test {self.X_test.shape}, "
                f"{self.n_classes} classes, images {self.image_shape})")


DATASETS = ("digits", "mnist", "fashion_mnist")


def _keras_cached(name: str) -> bool:
    import os
    from pathlib import Path

    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    if name == "mnist":
        return (home / "mnist.npz").exists()
    return (home / "fashion-mnist").is_dir()


def load_dataset(name: str = "digits", test_size: float = 0.25, seed: int = 0, n_train: int | None = None) -> Data:
    """Load a small image classification set, scaled to [0, 1], flattened.

    ``"digits"`` (default): scikit-learn's 8×8 digits, 1,797 images, shipped with scikit-learn
    (offline), split stratified into train/test with ``test_size``. ``"mnist"`` / ``"fashion_mnist"``:
    28×28 from ``keras.datasets`` — downloaded on first use, so offline (and not cached) they raise a
    clear ``RuntimeError`` right away instead of hanging. ``n_train`` keeps a random subset of the
    training images.
    """
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown DATASET {name!r}; choose one of {DATASETS}")
    rng = np.random.default_rng(seed)
    if key == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        X = (d.data / 16.0).astype("float32")
        Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=test_size, random_state=seed, stratify=d.target)
        shape = (8, 8)
    else:
        if not _keras_cached(key):
            from labkit import env

            if not env.is_online():
                raise RuntimeError(
                    f"DATASET={name!r} needs a download from keras.datasets, but this machine is offline "
                    f"and no cached copy is in ~/.keras/datasets. Use DATASET='digits' (ships with "
                    f"scikit-learn) or run once online.")
        keras = import_keras()
        mod = keras.datasets.mnist if key == "mnist" else keras.datasets.fashion_mnist
        (Xtr, ytr), (Xte, yte) = mod.load_data()
        Xtr = (Xtr.reshape(len(Xtr), -1) / 255.0).astype("float32")
        Xte = (Xte.reshape(len(Xte), -1) / 255.0).astype("float32")
        shape = (28, 28)
    if n_train is not None and n_train < len(Xtr):
        idx = rng.permutation(len(Xtr))[:n_train]
        Xtr, ytr = Xtr[idx], ytr[idx]
    return Data(key, Xtr, np.asarray(ytr, dtype="int64"), Xte, np.asarray(yte, dtype="int64"), shape,
                int(max(ytr.max(), yte.max()) + 1))


def subset_classes(data: Data, classes, n_per_class: int | None = None, seed: int = 0) -> Data:
    """Keep only ``classes`` (relabelled 0…k−1 in the given order); optionally n training images per class."""
    classes = list(classes)
    rng = np.random.default_rng(seed)
    lut = {c: i for i, c in enumerate(classes)}

    def pick(X, y, n):
        idx = []
        for c in classes:
            ids = np.flatnonzero(y == c)
            if n is not None:
                ids = rng.permutation(ids)[:n]
            idx.append(ids)
        idx = np.sort(np.concatenate(idx))
        return X[idx], np.array([lut[v] for v in y[idx]], dtype="int64")

    Xtr, ytr = pick(data.X_train, data.y_train, n_per_class)
    Xte, yte = pick(data.X_test, data.y_test, None)
    return Data(f"{data.name}{classes}", Xtr, ytr, Xte, yte, data.image_shape, len(classes))


def shift_augment(X: np.ndarray, image_shape, max_shift: int = 1, rng=None) -> np.ndarray:
    """Shift each flattened image by a random (dy, dx) in [−max_shift, max_shift], filling with zeros."""
    rng = np.random.default_rng() if rng is None else rng
    h, w = image_shape
    imgs = X.reshape(len(X), h, w)
    out = np.zeros_like(imgs)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(X), 2))
    for i, (dy, dx) in enumerate(shifts):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, yd, xd] = imgs[i, ys, xs]
    return out.reshape(len(X), -1)
