"""Notebook-04 plumbing: YOLO batch loading (checked against Ultralytics' label reader) and the plots."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from labkit.data.synthetic import make_shapes  # noqa: E402
from labkit.yolov8 import DetectionLoss, YOLOv8  # noqa: E402
from labkit.yolov8.viz import (bottleneck_grad_norms, draw_assignment, load_yolo_batch, plot_anchor_points,  # noqa: E402
                               plot_dfl_bins)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("shapes"), n_train=3, n_val=1, imgsz=64, seed=0)


def test_load_yolo_batch_matches_ultralytics_labels(shapes):
    from ultralytics.data.utils import verify_image_label

    imgs = shapes.images("train")
    x, batch = load_yolo_batch(imgs)
    assert x.shape == (3, 3, 64, 64) and 0 <= float(x.min()) and float(x.max()) <= 1
    for i, p in enumerate(imgs):
        lb = p.parent.parent.parent / "labels" / "train" / (p.stem + ".txt")
        res = verify_image_label((str(p), str(lb), "", False, len(shapes.classes), 0, 0, False))
        ref = torch.tensor(res[1])  # (n, 5) class + normalised xywh, as Ultralytics reads them
        sel = batch["batch_idx"] == i
        got = torch.cat([batch["cls"][sel], batch["bboxes"][sel]], 1)
        assert torch.allclose(got, ref, atol=1e-6)
    x2, _ = load_yolo_batch(imgs[:1], imgsz=32)
    assert x2.shape == (1, 3, 32, 32)


def test_load_yolo_batch_names_missing_label(tmp_path, shapes):
    img = shapes.images("train")[0]
    dst = tmp_path / "images" / "train"
    dst.mkdir(parents=True)
    (dst / img.name).write_bytes(img.read_bytes())
    with pytest.raises(FileNotFoundError, match=img.stem):
        load_yolo_batch([dst / img.name])


def test_plots_and_assignment_drawing(shapes):
    x, batch = load_yolo_batch(shapes.images("train"))
    model = YOLOv8("n", nc=len(shapes.classes)).train()
    res = DetectionLoss.for_model(model)(model(x), batch)
    fig, axes = plt.subplots(1, 6)
    plot_anchor_points(axes[0], x[0])
    exp = plot_dfl_bins(axes[1:5], torch.zeros(4, 16))
    assert torch.allclose(exp, torch.full((4,), 7.5))  # uniform bins -> the middle distance
    draw_assignment(axes[5], x[0], res, batch, 0, list(shapes.classes))
    # the drawing copies what it needs itself (detached, on the CPU): a tensor that requires grad draws too
    n_pos = sum(len(c.get_offsets()) for c in axes[5].collections[1:])
    assert n_pos == int(res.assignment.fg_mask[0].sum())
    draw_assignment(axes[4], x[0].clone().requires_grad_(), res, batch, 0)
    plt.close(fig)


def test_bottleneck_grad_norms():
    from labkit.yolov8 import C2f, C3

    x = torch.randn(1, 8, 8, 8)
    assert len(bottleneck_grad_norms(C2f(8, 8, 3), x)) == 3
    assert all(g > 0 for g in bottleneck_grad_norms(C3(8, 8, 2), x))
