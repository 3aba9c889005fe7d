"""YOLOv1 data: the VOC reader (splits, difficult, bad files) and the tf.data pipeline and augmentation."""
import numpy as np
import pytest

import tensorflow as tf  # a hard dependency: a broken install fails, never skips

from labkit.yolov1.data import (affine_boxes, affine_image, affine_images, load_image, make_dataset,  # noqa: E402
                                python_generator_batches, random_affine, random_hsv, records_to_arrays,
                                xla_available)
from labkit.yolov1.encode import encode_targets  # noqa: E402
from labkit.yolov1.voc import VOCFormatError, parse_voc_xml, read_voc  # noqa: E402
from yolov1_helpers import make_voc, voc_xml  # noqa: E402


# ------------------------------------------------------------------------------------------------ reader
def test_reader_reads_splits_classes_difficult(tmp_path):
    root, truth = make_voc(tmp_path / "VOC", n=6)
    tr = read_voc(root, "train", verbose=False)
    va = read_voc(root, "val", verbose=False)
    assert tr.classes == ["cat", "dog"]  # from the data, sorted
    assert [r.image_id for r in tr.records] == ["000000", "000001", "000002", "000003"]
    assert len(va) == 2 and tr.skipped == []
    r = tr.records[1]
    objs = truth["000001"]
    np.testing.assert_allclose(r.boxes, [[o[1] - 1, o[2] - 1, o[3], o[4]] for o in objs])  # 1-based -> 0-based
    assert r.names == [o[0] for o in objs]
    assert r.labels.tolist() == [tr.classes.index(o[0]) for o in objs]
    assert r.difficult.tolist() == [bool(o[5]) for o in objs] and r.difficult.any()
    assert (r.width, r.height) == (80, 60)
    gt = tr.ground_truth()
    assert set(gt[1]) == {"boxes", "labels", "difficult"} and gt[1]["difficult"].dtype == bool


def test_missing_and_corrupt_images_are_skipped_before_training(tmp_path, capsys):
    root, _ = make_voc(tmp_path / "VOC", n=6)
    (root / "JPEGImages" / "000001.jpg").unlink()
    (root / "JPEGImages" / "000002.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    data = (root / "JPEGImages" / "000003.jpg").read_bytes()
    (root / "JPEGImages" / "000003.jpg").write_bytes(data[: len(data) // 3])  # truncated JPEG
    tr = read_voc(root, "train")
    out = capsys.readouterr().out
    assert [r.image_id for r in tr.records] == ["000000"]
    assert {p.split("/")[-1] for p, _ in tr.skipped} == {"000001.jpg", "000002.jpg", "000003.jpg"}
    assert "skipped 3" in out and "000002.jpg" in out
    # and the pipeline over what is left runs a full epoch
    n = sum(int(x.shape[0]) for x, _ in make_dataset(tr, imgsz=56, batch_size=2, training=True))
    assert n == 1


def test_bad_xml_names_the_file(tmp_path):
    root, _ = make_voc(tmp_path / "VOC", n=4)
    bad = root / "Annotations" / "000001.xml"
    bad.write_text("<annotation><object><name>dog</name>")
    with pytest.raises(VOCFormatError, match="000001.xml"):
        read_voc(root, "train", verbose=False)
    bad.write_text(voc_xml("x.jpg", 10, 10, [("dog", 5, 5, 3, 9, 0)]))
    with pytest.raises(VOCFormatError, match="000001.xml.*empty box"):
        parse_voc_xml(bad)
    bad.write_text("<annotation><object><name>dog</name><bndbox><xmin>a</xmin></bndbox></object></annotation>")
    with pytest.raises(VOCFormatError, match="000001.xml.*xmin"):
        parse_voc_xml(bad)
    with pytest.raises(FileNotFoundError, match="available splits"):
        read_voc(root, "nosuchsplit", classes=["cat", "dog"], verbose=False)


def test_unknown_class_is_an_error_naming_the_file(tmp_path):
    root, _ = make_voc(tmp_path / "VOC", n=4)
    with pytest.raises(VOCFormatError, match="unknown class"):
        read_voc(root, "train", classes=["dog"], verbose=False)


# ------------------------------------------------------------------------------------------------ augmentation
def _rect_image(size, box):
    img = np.zeros((size, size, 3), np.uint8)
    x1, y1, x2, y2 = (np.asarray(box) * size).round().astype(int)
    img[y1:y2, x1:x2] = 255
    return img


def _pixel_box(img):
    ys, xs = np.nonzero(np.asarray(img)[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)


@pytest.mark.parametrize("s,tx,ty", [(1.0, 0.0, 0.0), (0.8, 0.0, 0.0), (1.2, 0.0, 0.0), (1.0, 0.2, -0.2),
                                     (0.8, -0.2, 0.15), (1.2, 0.1, 0.2)])
def test_affine_moves_boxes_with_pixels(s, tx, ty):
    size, box = 100, np.array([0.3, 0.35, 0.6, 0.55])
    out = affine_image(_rect_image(size, box), s, tx, ty, fill_value=0.0).numpy()
    want = affine_boxes(box[None], s, tx, ty).numpy()[0] * size
    np.testing.assert_allclose(_pixel_box(out), want, atol=1.01)  # within one pixel


def test_affine_image_matches_scipy_reference():
    import scipy.ndimage as ndi
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (40, 40, 3)).astype(np.float32)
    s, tx, ty = 1.15, 0.1, -0.05
    got = affine_image(img, s, tx, ty, fill_value=0.0).numpy()
    # output index u -> input index (u + .5 - W/2 - t W)/s + W/2 - .5, per axis (scipy: row, col)
    H = W = 40
    off = np.array([(0.5 - H / 2 - ty * H) / s + H / 2 - 0.5, (0.5 - W / 2 - tx * W) / s + W / 2 - 0.5])
    ref = np.stack([ndi.affine_transform(img[..., c], np.diag([1 / s, 1 / s]), offset=off, order=1,
                                         mode="constant", cval=0.0) for c in range(3)], -1)
    inner = (slice(8, 32), slice(8, 32))  # away from the border (fill handling differs at the edge)
    np.testing.assert_allclose(got[inner], ref[inner], atol=1e-2)


def test_random_affine_keeps_boxes_consistent_and_drops_lost_ones():
    tf.random.set_seed(1)
    size, box = 96, np.array([0.35, 0.4, 0.65, 0.6], np.float32)
    img = _rect_image(size, box)
    for _ in range(8):
        out, b, l = random_affine(img, box[None], np.array([0], np.int32))
        out, b = out.numpy(), b.numpy()[0]
        assert int(l[0]) == 0  # a central box never leaves the image with <= 20% moves
        np.testing.assert_allclose(_pixel_box(out), b * size, atol=1.51)
    # a box near the border that is pushed out is dropped (label -1); boxes are clipped to [0, 1]
    edge = np.array([[0.0, 0.0, 0.1, 0.1], [0.45, 0.45, 0.55, 0.55]], np.float32)
    _, b, l = random_affine(np.zeros((32, 32, 3), np.uint8), edge, np.array([1, 2], np.int32),
                            max_scale=0.0, max_translate=0.0)  # identity: both kept
    assert l.numpy().tolist() == [1, 2]
    nb = affine_boxes(edge, 1.0, -0.2, -0.2).numpy()
    assert (nb[0, 2:] < 0).all()  # shifted out completely


def test_random_hsv_equals_an_hsv_round_trip():
    """The RGB shortcut gives the same pixels as rgb_to_hsv -> scale S, V (clipped) -> hsv_to_rgb."""
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)
    img[0, :4] = 250.0  # bright, unsaturated pixels: exercise the clipping at V = 1 and S = 1
    for seed in range(4):
        tf.random.set_seed(seed)
        got = random_hsv(img, 1.5).numpy()
        tf.random.set_seed(seed)  # replay the same draws: per image one saturation, one value factor
        shape = tf.constant([2, 1, 1, 1])
        fs = tf.exp(tf.random.uniform(shape, -np.log(1.5), np.log(1.5)))
        fv = tf.exp(tf.random.uniform(shape, -np.log(1.5), np.log(1.5)))
        hsv = tf.image.rgb_to_hsv(img / 255.0)
        hsv = tf.concat([hsv[..., :1], tf.clip_by_value(hsv[..., 1:2] * fs, 0, 1),
                         tf.clip_by_value(hsv[..., 2:] * fv, 0, 1)], -1)
        np.testing.assert_allclose(got, tf.image.hsv_to_rgb(hsv).numpy(), atol=2e-5)


def test_random_hsv_keeps_hue_and_bounds_factors():
    tf.random.set_seed(3)
    rng = np.random.default_rng(0)
    img = rng.uniform(60, 160, (16, 16, 3)).astype(np.float32)  # mid values: no clipping at x1.5
    hsv0 = tf.image.rgb_to_hsv(img / 255.0).numpy()
    for _ in range(10):
        out = random_hsv(img, 1.5).numpy()
        assert out.min() >= 0 and out.max() <= 1
        hsv1 = tf.image.rgb_to_hsv(out).numpy()
        dh = np.abs(hsv1[..., 0] - hsv0[..., 0])
        assert np.minimum(dh, 1 - dh).max() < 2e-3
        rs = hsv1[..., 1] / hsv0[..., 1]
        rv = hsv1[..., 2] / hsv0[..., 2]
        for r in (rs, rv):
            assert np.ptp(r) < 1e-3  # one factor per image
            assert 1 / 1.5 - 1e-4 <= r.mean() <= 1.5 + 1e-4


# ------------------------------------------------------------------------------------------------ pipeline
def test_pipeline_targets_and_images_match_reference(tmp_path):
    root, _ = make_voc(tmp_path / "VOC", n=6)
    tr = read_voc(root, "trainval", verbose=False)
    C = len(tr.classes)
    ds = make_dataset(tr, imgsz=56, S=7, B=2, batch_size=4, training=False)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (6, 56, 56, 3) and y.shape == (6, 7, 7, 2 * 5 + C) and x.dtype == np.float32
    paths, boxes, labels = records_to_arrays(tr)
    for k, r in enumerate(tr.records):
        keep = ~r.difficult  # difficult objects are not training targets
        norm = r.boxes[keep] / np.array([80, 60, 80, 60], np.float32)
        np.testing.assert_allclose(y[k], encode_targets(norm, r.labels[keep], 7, 2, C), atol=1e-5)
        ref = tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(r.image_path)), (56, 56), antialias=True).numpy()
        np.testing.assert_allclose(x[k] * 255, ref, atol=1.0)  # uint8 cache rounds
    # the per-item generator (the source's way) produces the same targets
    gy = np.concatenate([b for _, b in python_generator_batches(tr, imgsz=56, batch_size=4)])
    np.testing.assert_allclose(gy, y, atol=1e-5)
    # training mode augments: images differ between two epochs, targets stay well-formed
    dtr = make_dataset(tr, imgsz=56, batch_size=6, training=True, seed=0)
    e1, t1 = next(iter(dtr))
    e2, _ = next(iter(dtr))
    assert not np.allclose(e1.numpy(), e2.numpy())
    # ... and reproducibly so: the same seed gives the same augmented epochs, whatever the thread order
    again = make_dataset(tr, imgsz=56, batch_size=6, training=True, seed=0)
    np.testing.assert_array_equal(next(iter(again))[0].numpy(), e1.numpy())
    t1 = t1.numpy()
    assert set(np.unique(t1[..., 4])) <= {0.0, 1.0}
    assert ((t1[..., 0:4] >= 0) & (t1[..., 0:4] <= 1)).all()


def test_random_hsv_xla_and_plain_paths_agree():
    img = np.random.default_rng(2).uniform(0, 255, (3, 16, 16, 3)).astype(np.float32)
    outs = []
    for jit in (False, True):
        if jit and not xla_available():
            continue
        tf.random.set_seed(5)
        outs.append(random_hsv(img, 1.5, jit=jit).numpy())
    for o in outs[1:]:
        np.testing.assert_allclose(o, outs[0], atol=1e-5)


def test_affine_float_output_is_the_unrounded_uint8_output():
    img = np.random.default_rng(3).integers(0, 256, (2, 20, 20, 3)).astype(np.uint8)
    s, t = tf.constant([0.9, 1.1]), tf.constant([0.05, -0.1])
    u8 = affine_images(img, s, t, -t).numpy()
    f32 = affine_images(img, s, t, -t, out_dtype=tf.float32).numpy()
    assert u8.dtype == np.uint8 and f32.dtype == np.float32
    np.testing.assert_allclose(np.round(f32), u8, atol=0)


def test_python_generator_with_augmentation_gives_well_formed_batches(tmp_path):
    root, _ = make_voc(tmp_path / "VOC", n=5)
    tr = read_voc(root, "trainval", verbose=False)
    tf.random.set_seed(0)
    batches = list(python_generator_batches(tr, imgsz=32, batch_size=2, augment=True))
    assert [len(x) for x, _ in batches] == [2, 2, 1]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (5, 32, 32, 3) and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(y[..., 4])) <= {0.0, 1.0} and ((y[..., :4] >= 0) & (y[..., :4] <= 1)).all()
