"""Inference and evaluation: predict -> decode (confidence threshold + NMS) -> ``labkit.metrics``; drawing."""
from __future__ import annotations

import numpy as np

from labkit.yolov1.encode import decode_predictions

__all__ = ["predict", "evaluate", "draw_detections", "show_predictions"]


def predict(model, voc, imgsz: int | None = None, S: int = 7, B: int = 2, C: int | None = None,
            conf_thresh: float = 0.2, nms_iou: float = 0.5, max_det: int = 100, batch_size: int = 32) -> list:
    """Detections for every image of ``voc`` (a :class:`~labkit.yolov1.voc.VOCDataset`), in original
    pixel ``xyxy``: a list of ``{"boxes", "scores", "labels"}`` (the format of ``labkit.metrics.evaluate``)."""
    from labkit.yolov1.data import make_dataset

    imgsz = imgsz or int(model.input_shape[1])
    C = C if C is not None else len(voc.classes)
    ds = make_dataset(voc, imgsz, S, B, C, batch_size=batch_size, training=False, cache=False, with_targets=False)
    outs = []
    for x, _, _ in ds:
        outs.append(np.asarray(model(x, training=False)))
    grids = np.concatenate(outs) if outs else np.zeros((0, S, S, B * 5 + C), np.float32)
    dets = []
    for g, r in zip(grids, voc.records):
        d = decode_predictions(g, S, B, C, conf_thresh, nms_iou, max_det)
        d["boxes"] = d["boxes"] * np.array([r.width, r.height, r.width, r.height], np.float32)
        dets.append(d)
    return dets


def evaluate(model, voc, convention: str = "voc07", conf_thresh: float = 0.01, **kw):
    """mAP of ``model`` on ``voc`` with :func:`labkit.metrics.evaluate` (``difficult`` objects are
    ignored under the VOC conventions). A low ``conf_thresh`` is right for mAP: the precision-recall
    curve needs the low-score detections too. Returns ``(result, dets)``."""
    from labkit import metrics

    dets = predict(model, voc, conf_thresh=conf_thresh, **kw)
    res = metrics.evaluate(voc.ground_truth(), dets, convention=convention, class_names=list(voc.classes))
    return res, dets


def draw_detections(ax, image, det=None, class_names=None, gt=None, score_fmt="{:.2f}"):
    """Draw an image with predicted boxes (solid, labelled with class and score) and optionally the
    ground truth (dashed white) on a matplotlib axis. Boxes in the image's pixel coordinates."""
    import matplotlib.pyplot as plt

    ax.imshow(image)
    ax.set_axis_off()
    colors = plt.get_cmap("tab10")
    if gt is not None:
        for b in np.asarray(gt["boxes"]).reshape(-1, 4):
            ax.add_patch(plt.Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec="white", ls="--", lw=1))
    if det is not None:
        for b, s, l in zip(np.asarray(det["boxes"]).reshape(-1, 4), det["scores"], det["labels"]):
            c = colors(int(l) % 10)
            ax.add_patch(plt.Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec=c, lw=2))
            name = class_names[int(l)] if class_names is not None else str(int(l))
            ax.text(b[0], b[1], f"{name} {score_fmt.format(float(s))}", color="white", fontsize=7,
                    va="bottom", bbox=dict(fc=c, ec="none", pad=1, alpha=0.8))
    return ax


def show_predictions(voc, dets, n: int = 8, cols: int = 4, conf_thresh: float = 0.3, figsize_per=2.6):
    """A grid of the first ``n`` images of ``voc`` with their detections above ``conf_thresh``."""
    import matplotlib.pyplot as plt
    from PIL import Image

    n = min(n, len(voc.records))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(figsize_per * cols, figsize_per * rows), squeeze=False)
    gts = voc.ground_truth()
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k >= n:
            continue
        d = dets[k]
        keep = d["scores"] >= conf_thresh
        d = {key: v[keep] for key, v in d.items()}
        with Image.open(voc.records[k].image_path) as im:
            draw_detections(ax, np.asarray(im.convert("RGB")), d, voc.classes, gt=gts[k])
    fig.tight_layout()
    return fig
