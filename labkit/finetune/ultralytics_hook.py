"""Ultralytics validator hook: capture exactly what ``model.val()`` scores.

It subclasses Ultralytics' ``DetectionValidator`` and calls its private ``_prepare_batch``, so it follows
Ultralytics' internals, as the rest of :mod:`labkit.finetune` does. Notebook 05 uses it to recompute
``model.val()``'s mAP with :func:`labkit.metrics.evaluate` (``convention="ultralytics"``) from the very boxes the
validator scored.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ultralytics_val_predictions"]


def ultralytics_val_predictions(model, **val_kwargs):
    """Run Ultralytics ``model.val(**val_kwargs)`` and capture exactly what it scores.

    Returns ``(metrics, gts, dets)``: Ultralytics' metrics object and, per validation image, the
    ground truth and the predictions **as the validator matches them** — in its letterboxed input
    frame, after its NMS (``conf=0.001``, multi-label), before the boxes are scaled back and clipped
    to the image for ``predictions.json``. ``evaluate(gts, dets, convention="ultralytics")`` then
    reproduces ``metrics.box.map50`` / ``metrics.box.map``.
    """
    from ultralytics.models.yolo.detect import DetectionValidator

    gts, dets = [], []

    class _CapturingValidator(DetectionValidator):
        def update_metrics(self, preds, batch):
            for si, pred in enumerate(preds):
                pb = self._prepare_batch(si, batch)
                cls = pred["cls"].detach().cpu().numpy().astype(np.int64)
                if self.args.single_cls:
                    cls = cls * 0
                gts.append({"boxes": pb["bboxes"].detach().cpu().numpy().astype(np.float64).reshape(-1, 4),
                            "labels": pb["cls"].detach().cpu().numpy().astype(np.int64).reshape(-1)})
                dets.append({"boxes": pred["bboxes"].detach().cpu().numpy().astype(np.float64).reshape(-1, 4),
                             "labels": cls, "scores": pred["conf"].detach().cpu().numpy().astype(np.float64)})
            return super().update_metrics(preds, batch)

    metrics = model.val(validator=_CapturingValidator, **val_kwargs)
    return metrics, gts, dets
