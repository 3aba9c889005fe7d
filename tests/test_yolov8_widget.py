"""The notebook's scale picker: its logic (scale_summary / format_summary) without a browser."""
import pytest
import torch

from labkit.widgets.flops import scale_widget
from labkit.yolov8.flops import format_summary, scale_summary
from labkit.yolov8.model import scale_spec

import ultralytics  # noqa: F401  # a hard dependency: a broken install fails, never skips


def test_scale_summary_matches_ultralytics_channels():
    """Channel widths shown by the widget are the output channels of Ultralytics' layers."""
    from ultralytics.nn.tasks import DetectionModel

    theirs = DetectionModel("yolov8m.yaml", verbose=False).model
    s = scale_summary("m", latency=False)
    w = s["widths"]

    def out_ch(i):  # output channels of Ultralytics layer i (Conv: .conv; C2f/SPPF: their last 1x1, .cv2)
        layer = theirs[i]
        return (layer.cv2 if hasattr(layer, "cv2") else layer).conv.out_channels

    assert (w["P1/2 stem"], w["P2/4"], w["P3/8"], w["P4/16"], w["P5/32"]) == tuple(out_ch(i) for i in (0, 1, 4, 6, 9))
    assert (w["head P3"], w["head P4"], w["head P5"]) == tuple(out_ch(i) for i in (15, 18, 21))
    assert s["repeats"]["stage2"] == len(theirs[4].m) and s["repeats"]["neck C2f"] == len(theirs[12].m)
    assert s["params"] == sum(p.numel() for p in theirs.parameters())
    assert s["latency_ms"] is None


def test_scale_summary_latency_and_text():
    s = scale_summary("n", nc=3, latency=True, latency_imgsz=64, runs=1)
    assert s["latency_ms"] > 0
    text = format_summary(s)
    assert "YOLOv8n" in text and f"{s['params']:,}" in text and "ms" in text
    assert f"{s['gflops_fused']:.1f}" in text
    with pytest.raises(ValueError, match="scale"):
        scale_summary("z", latency=False)


def test_widget_switches_scale():
    box = scale_widget("n", latency=False)
    picker = box.children[0]
    assert box.summary()["scale"] == "n"
    picker.value = "s"  # what a click does
    assert box.summary()["scale"] == "s"
    assert box.summary()["widths"] == scale_spec("s").widths()
    assert box.summary()["params"] > scale_summary("n", latency=False)["params"]
