"""Detection metrics from scratch: matching, precision/recall, AP and mAP in four conventions.

Why do the same detections get different mAP values in different tools? Because "AP" is a family
of definitions. labkit implements four of them on the same vectorised matching engine, so they can
be compared number for number:

``"coco"`` — exactly pycocotools' ``COCOeval`` (bbox):
    * per image and class, detections are sorted by score with a **stable** sort and only the top
      ``maxDets`` (100) are kept;
    * greedy matching in score order: each detection takes the **unmatched** GT with the highest IoU
      ≥ t (ties: the later GT), non-ignored GTs first, then ignored ones (crowds can be matched many
      times; a detection matched to an ignored GT is ignored);
    * ``iscrowd`` GTs are ignored and their IoU is ``intersection / detection area``;
    * area ranges all/small/medium/large = [0, 1e10], [0, 32²], [32², 96²], [96², 1e10] with
      **inclusive** edges on both sides, using the GT ``area`` field (box area when absent) and
      the detection box area;
    * for each class the detections of all images are sorted by score (ties: image order, then rank),
      precision = TP / (TP + FP), recall = TP / #non-ignored GT;
    * the precision *envelope* (max precision at any higher recall) is **sampled** at 101 recall
      points 0, 0.01, …, 1 (first detection reaching that recall; 0 if never reached); AP is the
      **mean of the 101 samples** (no trapezoid);
    * IoU thresholds 0.50:0.05:0.95, maxDets 1/10/100; the 12 summary stats are those printed by
      ``COCOeval.summarize()``;
    * one pycocotools bug is **not** copied: pycocotools stores a match as the GT's annotation ``id`` and tests
      it for truthiness, so a detection matched to the GT with ``id`` 0 counts as a false positive (a 2-box
      image scores mAP50 0.2525 with ids 0, 1 and 1.0 with ids 1, 2). Ids are labels: labkit matches by
      position, so renumbering annotations never changes a metric. It equals pycocotools run on ids shifted
      by +1 (:func:`pycocotools_stats` shows the quirk; faster-coco-eval 1.8 warns about it).
``"voc07"`` — PASCAL VOC 2007 devkit: per class, detections over all images sorted by score; each
    takes the GT of highest IoU in its image (matched or not); TP if IoU ≥ t, that GT is not yet
    detected and not ``difficult``; ``difficult`` GTs are neither TP nor FP and do not count in
    recall; AP = mean over recall r ∈ {0, 0.1, …, 1} of max precision at recall ≥ r (**11 points**).
``"voc"`` — VOC 2010+: same matching, AP = exact area under the precision envelope (**all points**).
``"ultralytics"`` — what ``model.val()`` computes (``ultralytics.engine.validator.match_predictions``
    and ``ultralytics.utils.metrics.ap_per_class``): per image, detections in descending confidence
    take their best unclaimed same-class GT (IoU ≥ t; ties: the first GT); no crowd/area handling
    (crowd GTs are dropped, as Ultralytics' COCO→YOLO converter does); per class the precision
    envelope is interpolated at 101 recall points and **integrated with the trapezoid rule**, after
    extending the curve with a point (recall_max, 0) — so AP differs from COCO's by up to ~1 point.

Shared choices (all conventions): boxes are continuous coordinates, area ``w*h`` (the original VOC
devkit added 1 pixel to widths/heights; labkit does not). Ties in score are broken by input order
(image order, then order within the image), i.e. a stable sort. **Classes with no (non-ignored) GT
are excluded** from every mean, as COCO does; their detections are then irrelevant. An empty
prediction set gives AP 0 for every class that has GT.

Entry points: :func:`evaluate` (in-memory lists of per-image dicts), :func:`evaluate_coco_json`
(COCO GT + results JSON), :func:`confusion_matrix` (Ultralytics-style), plus small teaching helpers
(:func:`match_image`, :func:`pr_curve`, :func:`ap_from_pr`) used by notebook 05.

Layout of the package (every public name is importable from ``labkit.metrics``):

* ``labkit/metrics/ap.py`` — the readable AP code notebook 05 teaches (matching one image, the P-R curve, its
  envelope, AP in the four conventions);
* ``labkit/metrics/_engine.py`` — internal: the vectorised engine behind :func:`evaluate` (speed engineering).

What Ultralytics' ``model.val()`` scores is captured by :func:`labkit.finetune.ultralytics_val_predictions`, beside
the rest of the Ultralytics code.

The P-R explorer widget of notebook 05 is :func:`labkit.widgets.metrics.interactive_pr`.
"""

from labkit.metrics._engine import (AREA_LABELS, AREA_RANGES, COCO_STAT_NAMES, MAX_DETS, DetectionMetrics,
                                    MetricsInputError, confusion_matrix, evaluate, evaluate_coco_json,
                                    load_coco_json, pycocotools_stats)
from labkit.metrics.ap import (CONVENTIONS, IOU_THRESHOLDS, REC_THRESHOLDS, ap_from_pr, class_matches, envelope,
                               match_image, pr_curve, threshold_view, ultralytics_ap, voc_ap)

__all__ = [
    "CONVENTIONS", "MetricsInputError", "DetectionMetrics", "evaluate", "evaluate_coco_json", "load_coco_json",
    "pycocotools_stats",
    "confusion_matrix", "match_image", "pr_curve", "ap_from_pr", "class_matches", "threshold_view",
    "COCO_STAT_NAMES",
]
