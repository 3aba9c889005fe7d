"""YOLOv1 from scratch in TensorFlow/Keras (notebook 03).

Modules: :mod:`~labkit.yolov1.voc` (Pascal VOC reader), :mod:`~labkit.yolov1.encode` (S x S x (B*5+C)
targets and decoding), :mod:`~labkit.yolov1.model` (backbone + head), :mod:`~labkit.yolov1.loss`
(the paper's loss), :mod:`~labkit.yolov1.data` (tf.data pipeline and augmentation),
:mod:`~labkit.yolov1.train` (schedule, checkpoints, resume), :mod:`~labkit.yolov1.infer`
(prediction, NMS, evaluation with :mod:`labkit.metrics`, drawing).

Importing this package does not import TensorFlow; the submodules that need it do.
"""
from labkit.yolov1.encode import decode_predictions, decode_targets, encode_targets
from labkit.yolov1.voc import VOCDataset, VOCFormatError, read_voc

__all__ = ["read_voc", "VOCDataset", "VOCFormatError", "encode_targets", "decode_targets", "decode_predictions"]
