"""YOLOv8 from scratch: readable modules, the n/s/m/l/x model, the TAL assigner and the v8 loss.

Everything here is checked against the installed Ultralytics (see ``tests/test_yolov8_*.py``); the
range of Ultralytics versions verified is :data:`VERIFIED_ULTRALYTICS`.

>>> from labkit.yolov8 import YOLOv8, DetectionLoss
>>> model = YOLOv8("n", nc=3)
"""
from .assigner import Assignment, TaskAlignedAssigner
from .flops import count_params, model_flops, scale_table, scale_summary
from .loss import DetectionLoss, LossGains, dfl_loss
from .model import (LAYER_NAMES, SCALES, YOLOv8, convert_ultralytics_state_dict, from_ultralytics, scale_spec,
                    ultralytics_head_outputs)
from .modules import C2f, C3, DFL, SPP, SPPF, Bottleneck, Conv, Detect, bbox2dist, dist2bbox, make_anchors
from . import lessons, smoke  # noqa: E402  (notebook 04's and 00's measured lessons)

#: Ultralytics versions whose module semantics the tests have confirmed (see docs in the notebook).
VERIFIED_ULTRALYTICS = ("8.4.190",)

__all__ = [
    "Assignment", "TaskAlignedAssigner", "count_params", "model_flops", "scale_table", "scale_summary",
    "DetectionLoss", "LossGains", "dfl_loss", "LAYER_NAMES", "SCALES", "YOLOv8", "convert_ultralytics_state_dict",
    "from_ultralytics", "scale_spec", "ultralytics_head_outputs", "C2f", "C3", "DFL", "SPP", "SPPF", "Bottleneck", "Conv", "Detect",
    "bbox2dist", "dist2bbox", "make_anchors", "VERIFIED_ULTRALYTICS",
]
