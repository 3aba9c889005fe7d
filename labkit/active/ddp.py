"""Multi-GPU rounds of the active-learning loop: the Ultralytics trainer class the DDP workers build.

With ``device="0,1"`` a round trains in a subprocess (:mod:`labkit.ddp_launch`) that Ultralytics relaunches as
one worker process per GPU. :func:`labkit.active.pool.caches_in`, entered in the kernel, does not reach those
processes; Ultralytics pickles the trainer's *class* into them, so this class enters it itself around every
dataset it builds. Imported only where Ultralytics is installed (it subclasses Ultralytics' trainer).
"""
from __future__ import annotations

from pathlib import Path

from ultralytics.models.yolo.detect import DetectionTrainer

from .pool import caches_in

__all__ = ["WorkCacheTrainer", "TRAINER"]


class WorkCacheTrainer(DetectionTrainer):
    """Ultralytics' detection trainer whose datasets are built inside ``caches_in(<data yaml folder>/label_cache)``:
    label caches go to the round's work folder and no source image is rewritten, in every DDP worker."""

    def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
        """Build the dataset as Ultralytics does, with the label caches in the data yaml's ``label_cache`` folder."""
        with caches_in(Path(self.args.data).parent / "label_cache"):
            return super().build_dataset(img_path, mode=mode, batch=batch)


TRAINER = f"{__name__}:{WorkCacheTrainer.__name__}"  # the name labkit.ddp_launch.ultralytics_train resolves
