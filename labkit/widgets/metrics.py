"""The P-R explorer of notebook 05: an ipywidgets shell around :func:`labkit.metrics.ap.threshold_view`."""

from __future__ import annotations

import numpy as np

from labkit.metrics.ap import _to_numpy, threshold_view
from labkit.widgets import figure_png, show_png, static_vbox

__all__ = ["interactive_pr"]


def interactive_pr(gts, dets, images=None, class_names=None):
    """Widget: confidence and IoU-threshold sliders (plus class and image pickers) redraw the
    matches on one image (TP green, FP red, GT dashed, detections below ``conf`` faded), the class's
    P-R curve with its envelope and the operating point, and the AP under each convention.

    ``images``: optional list of image paths (same order as ``gts``) to draw under the boxes.
    The computation is :func:`labkit.metrics.ap.threshold_view`; this is only the ipywidgets shell.
    """
    import ipywidgets as W
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    labels = sorted({int(x) for g in gts for x in _to_numpy(g["labels"]).reshape(-1)})
    names = list(class_names) if class_names else [str(c) for c in range(max(labels, default=0) + 1)]
    w_conf = W.FloatSlider(value=0.25, min=0.0, max=1.0, step=0.05, description="conf")
    w_iou = W.FloatSlider(value=0.5, min=0.5, max=0.95, step=0.05, description="IoU thr")
    w_cls = W.Dropdown(options=[(names[c], c) for c in labels], value=labels[0] if labels else None,
                       description="class")
    w_img = W.IntSlider(value=0, min=0, max=max(len(gts) - 1, 0), description="image")
    out = W.Output()
    box = static_vbox([W.HBox([w_conf, w_iou]), W.HBox([w_cls, w_img]), out])

    def redraw(*_):
        v = threshold_view(gts, dets, w_cls.value, w_iou.value, w_conf.value)
        # one figure outside pyplot: shown in the Output and kept as the box's static render
        fig = Figure(figsize=(10, 4.2))
        a0, a1 = fig.subplots(1, 2)
        i = w_img.value
        if images is not None:
            from PIL import Image

            a0.imshow(Image.open(images[i]))
        g = gts[i]
        gl = _to_numpy(g["labels"]).reshape(-1)
        for b in _to_numpy(g["boxes"], np.float64).reshape(-1, 4)[gl == w_cls.value]:
            a0.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, ls="--", ec="white", lw=2))
        here = v["image"] == i
        db = _to_numpy(dets[i]["boxes"], np.float64).reshape(-1, 4)
        for s, t, j in zip(v["score"][here], v["tp"][here], v["index"][here]):
            b = db[j]
            a0.add_patch(Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, lw=1.5,
                                   ec="lime" if t else "red", alpha=1.0 if s >= w_conf.value else 0.25))
            a0.text(b[0], b[1], f"{s:.2f}", color="lime" if t else "red", fontsize=7,
                    alpha=1.0 if s >= w_conf.value else 0.3)
        if images is None:
            a0.autoscale_view()
            a0.invert_yaxis()
        a0.set_title(f"image {i}: green TP, red FP, dashed GT", fontsize=9)
        a0.axis("off")
        a1.plot(v["recall"], v["precision"], ".-", lw=0.8, ms=3, label="P-R (raw)")
        a1.step(v["recall"], v["envelope"], where="post", lw=1.5, label="envelope")
        if v["n_above"]:
            a1.plot([v["r_at_conf"]], [v["p_at_conf"]], "o", ms=9, mfc="none", mec="k",
                    label=f"conf ≥ {w_conf.value:.2f}: P={v['p_at_conf']:.2f} R={v['r_at_conf']:.2f}")
        a1.set_xlim(0, 1.02)
        a1.set_ylim(0, 1.05)
        a1.set_xlabel("recall")
        a1.set_ylabel("precision")
        ap = v["ap"]
        a1.set_title(f"AP@{w_iou.value:.2f}: COCO {ap['coco']:.3f} · VOC07 {ap['voc07']:.3f} · "
                     f"VOC {ap['voc']:.3f} · UL {ap['ultralytics']:.3f}", fontsize=9)
        a1.legend(fontsize=8, loc="lower left")
        fig.tight_layout()
        box.static_png = figure_png(fig)
        show_png(out, box.static_png)

    for w in (w_conf, w_iou, w_cls, w_img):
        w.observe(redraw, names="value")
    box.redraw = redraw
    box.output = out
    redraw()
    return box
