"""Active learning for YOLOv8: a resumable manifest-backed pool, honest uncertainty strategies, batched
pool scoring, and a loop runner with label-efficiency curves (notebook 07).

- :mod:`labkit.active.pool` — the JSON manifest (single source of truth, atomic writes, consistency checks) and the
  simulated annotator (labels revealed only for selected images, cost in images and boxes);
- :mod:`labkit.active.strategies` — random, least confidence, binary entropy, class entropy/margin, the
  Gaussian proxy, core-set (k-center greedy), query-by-committee, uncertainty + diversity hybrid, PPAL-style
  (difficulty-calibrated uncertainty pre-pool, then k-means++ diversity);
- :mod:`labkit.active.scoring` — batched predictions with full per-box class vectors and embeddings;
- :mod:`labkit.active.loop` — rounds of train / validate / score / select, resumable after a crash; the published
  protocols (``PROTOCOLS``: ppal-voc, coco, cpu-demo) and results as papers report them (``budget_report``,
  ``budget_verdict``); with several GPUs (``device="0,1"``) each round trains with DDP in a subprocess;
- :mod:`labkit.active.ddp` — the trainer class those DDP workers build (label caches kept in the work folder).
"""
from .pool import ManifestError, PoolManifest, SimulatedAnnotator  # noqa: F401
from .strategies import Predictions, make_strategy, STRATEGIES  # noqa: F401
from .loop import (LoopConfig, run_loop, run_experiment, train_once, train_full_pool, plot_label_efficiency,  # noqa: F401
                   PROTOCOLS, protocol_plan, load_yolo_data, experiment_rows, budget_report, budget_verdict)
