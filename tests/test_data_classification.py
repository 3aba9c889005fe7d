"""labkit.data.classification: the offline digits set, the clear offline error for MNIST, class subsets, shifts."""
import numpy as np
import pytest

from labkit.data import classification as CD


@pytest.fixture(scope="module")
def digits():
    return CD.load_dataset("digits", seed=0)


def test_digits_and_offline_error(digits, monkeypatch):
    assert digits.X_train.shape[1] == 64 and digits.n_classes == 10
    assert 0.0 <= digits.X_train.min() and digits.X_train.max() <= 1.0
    assert len(digits.X_train) + len(digits.X_test) == 1797
    from labkit import env

    monkeypatch.setattr(env, "is_online", lambda *a, **k: False)
    monkeypatch.setattr(CD, "_keras_cached", lambda name: False)
    with pytest.raises(RuntimeError, match="offline"):
        CD.load_dataset("mnist")
    with pytest.raises(ValueError, match="unknown DATASET"):
        CD.load_dataset("cifar")


def test_subset_and_augment(digits):
    sub = CD.subset_classes(digits, [5, 6, 7], n_per_class=10)
    assert sub.n_classes == 3 and len(sub.X_train) == 30 and set(sub.y_train) == {0, 1, 2}
    assert set(sub.y_test) == {0, 1, 2} and len(sub.X_test) == int(np.isin(digits.y_test, [5, 6, 7]).sum())
    img = np.zeros((1, 64), dtype="float32")
    img[0, 3 * 8 + 3] = 1.0
    assert np.array_equal(CD.shift_augment(img, (8, 8), max_shift=0), img)
    out = CD.shift_augment(np.repeat(img, 50, 0), (8, 8), max_shift=1, rng=np.random.default_rng(0))
    pos = set(np.argmax(out, axis=1))
    assert out.sum() == 50 and pos <= {r * 8 + c for r in (2, 3, 4) for c in (2, 3, 4)} and len(pos) > 3
