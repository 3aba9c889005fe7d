"""Fine-tuning with Ultralytics (notebook 06): train into run folders that are never reused, read and compare the
runs, predict and export in the BKAI submission format.

The notebook code stays short::

    from labkit import finetune
    run1 = finetune.train(data_yaml, model="yolov8n.pt", name="stage1", epochs=10, optimizer="SGD", ...)
    run2 = finetune.train(data_yaml, model=run1.best, name="stage2-AdamW", optimizer="AdamW", lr0=5e-4, ...)
    finetune.plot_curves([run1, run2]); finetune.compare([run1, run2])

Layout of the package (every public name is importable from ``labkit.finetune``):

* ``labkit/finetune/training.py`` — :func:`train` and what it sets up: the device (several GPUs: DDP in a
  subprocess, :mod:`labkit.ddp_launch`), TensorBoard, quiet logs, the run folder;
* ``labkit/finetune/runs.py`` — :class:`Run`: a run's per-epoch curves, the best epoch, plots and comparisons of
  several runs, and the training lessons' verdicts computed from them;
* ``labkit/finetune/bkai.py`` — BKAI-specific: predictions as quads, the submission files, and the lesson on boxes
  that cross the image border;
* ``labkit/finetune/ultralytics_hook.py`` — :func:`ultralytics_val_predictions`, the boxes ``model.val()`` scores
  (notebook 05 recomputes its mAP from them with :mod:`labkit.metrics`).

The confidence slider of notebook 06 is :func:`labkit.widgets.finetune.conf_widget`.
"""

from labkit.finetune.bkai import (border_report, border_verdict, draw_predictions, export_bkai, filter_predictions,
                                  predict_quads, read_bkai_submission)
from labkit.finetune.runs import (CURVE_NAMES, Run, compare, nbs_verdict, plot_curves, read_results, repeated_epochs,
                                  stage_verdicts)
from labkit.finetune.training import (enable_tensorboard, parse_device, quiet_ultralytics, runs_root,
                                      tensorboard_stopped_at_exit, train)
from labkit.finetune.ultralytics_hook import ultralytics_val_predictions

__all__ = ["Run", "train", "parse_device", "enable_tensorboard", "read_results", "plot_curves", "compare",
           "predict_quads", "export_bkai", "quiet_ultralytics", "tensorboard_stopped_at_exit", "runs_root",
           "border_report", "border_verdict", "stage_verdicts", "repeated_epochs", "nbs_verdict",
           "read_bkai_submission", "draw_predictions", "filter_predictions", "CURVE_NAMES",
           "ultralytics_val_predictions"]
