"""Scoring a pool in batches: the full per-box class vectors that NMS keeps, and image embeddings.

The source called ``model.predict(source=one_image)`` for every unlabelled image and read
``results[0].boxes.conf``. Two problems: one predict call per image pays Ultralytics' per-call set-up
(source loading, pre/post-processing, ``Results`` objects) every time; and ``Results.boxes`` keeps only
the **max** class score of each box — the other class sigmoids, which are what class uncertainty is about,
are gone.

:func:`predict_pool` runs the network itself on batches of letterboxed images, applies Ultralytics' own
``non_max_suppression(..., return_idxs=True)`` to learn which raw predictions survived, and returns, for
each kept box, its whole vector of class sigmoids. A forward pre-hook on the Detect head pools the three
feature maps it receives (P3, P4, P5) into one embedding per image, from the same forward pass.

Where the time goes on a CPU: almost all of it in the network (convolutions, then the memory-bound SiLU and
concatenations). Batches are built directly in the channels-last layout that images are decoded in and that
oneDNN's convolutions prefer; the fused, eval-mode copy of the network is cached between calls (as Ultralytics
keeps its predictor) and rebuilt whenever a parameter changes; reading and letterboxing the next batch runs in a
thread; no per-image ``Results`` objects are made.
"""
from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from .strategies import Predictions

__all__ = ["predict_pool", "load_batch", "subset_indices", "cpu_batch", "CPU_BATCH_PIXELS"]


def subset_indices(n: int, subset: int | float | None, seed: int = 0) -> np.ndarray:
    """Indices of a random subset of ``n`` items (sorted): ``subset`` is a count, a fraction (0, 1], or None (all)."""
    if subset is None:
        return np.arange(n)
    m = int(round(subset * n)) if isinstance(subset, float) and subset <= 1 else int(subset)
    m = max(1, min(n, m))
    return np.sort(np.random.default_rng([int(seed), 7]).choice(n, size=m, replace=False))


def _load(path: str, imgsz: int) -> np.ndarray:
    """One image, letterboxed to ``imgsz`` x ``imgsz`` like ``predict`` (``rect=False``), as RGB HWC uint8."""
    import cv2
    from ultralytics.data.augment import LetterBox

    im = cv2.imread(str(path))
    if im is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if im.shape[:2] != (imgsz, imgsz):  # already the input size (e.g. synthetic pools): nothing to letterbox
        im = LetterBox((imgsz, imgsz), auto=False, stride=32)(image=im)
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def load_batch(paths: Sequence[str], imgsz: int, pool: ThreadPoolExecutor | None = None):
    """Read and letterbox ``paths`` to ``imgsz`` x ``imgsz``; returns a float tensor (B, 3, imgsz, imgsz) in [0, 1].

    The tensor is stored channels-last (NHWC in memory, NCHW in shape): the layout the images are decoded in, and
    the one oneDNN's CPU convolutions are fastest with, so no transpose copy is made.
    """
    import torch

    ims = list(pool.map(lambda p: _load(p, imgsz), paths)) if pool else [_load(p, imgsz) for p in paths]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div_(255.0)


_NETS: dict = {}  # (source key, device, channels_last) -> (fingerprint, fused copy); at most a few entries


def _fingerprint(net) -> tuple:
    """Changes whenever a parameter or buffer of ``net`` is replaced or modified in place (optimizer steps,
    ``load_state_dict``): each tensor's storage address and autograd version counter."""
    return tuple((t.data_ptr(), t._version) for t in list(net.parameters()) + list(net.buffers()))


def _network(model, device: str = "cpu", channels_last: bool = False, trust_weights: bool = False):
    """The torch DetectionModel inside an Ultralytics ``YOLO`` (or the module itself, or a weights path): a fused
    eval-mode **copy** (the caller's model is never modified), cached until the weights change.

    Ultralytics' ``predict`` keeps its fused model between calls too (``model.predictor``); here the cache is keyed
    on the model object (or the file's path, size and modification time) and checked against a fingerprint of
    every parameter, so training the model in between invalidates it. A weights path loads safely
    (:mod:`labkit.weights`); ``trust_weights=True`` is the explicit opt-in for a trusted legacy file.
    """
    import weakref

    import torch

    src = getattr(model, "model", model)
    if isinstance(src, (str, os.PathLike)):
        st = os.stat(src)
        key, fp, ref = (str(Path(src).resolve()), st.st_size, st.st_mtime_ns), None, None
    else:
        key, fp, ref = ("obj", id(src)), _fingerprint(src), weakref.ref(src)
    key = (key, str(device), bool(channels_last))
    hit = _NETS.get(key)
    if hit is not None and hit[0] == fp and (ref is None or hit[1]() is src):
        return hit[2]
    if isinstance(src, (str, os.PathLike)):
        from ultralytics import YOLO

        from labkit import weights

        with weights.trusted(trust_weights):
            net = YOLO(str(src)).model
    else:
        net = copy.deepcopy(src)
    net = net.float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if hasattr(net, "fuse"):
        try:
            net = net.fuse(verbose=False)
        except TypeError:
            net = net.fuse()
    net = net.to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if len(_NETS) >= 4:
        _NETS.pop(next(iter(_NETS)))
    _NETS[key] = (fp, ref or (lambda: None), net)
    return net


# On a CPU, a batch's activations must stay cache-sized: YOLOv8n at 640 px runs at about 60 ms/image with 1-4
# images per pass and 80+ ms with 16-32 (2 threads, channels-last), while at 96-128 px batches of 32 are fastest.
# ``predict_pool`` caps the batch on CPU so that batch * imgsz**2 stays within this many pixels (32 at 128 px,
# 5 at 320 px, 1 at 640 px). GPUs want big batches: no cap there.
CPU_BATCH_PIXELS = 32 * 128 * 128


def cpu_batch(batch: int, imgsz: int, device: str = "cpu") -> int:
    """The batch :func:`predict_pool` uses: ``batch``, capped on CPU to :data:`CPU_BATCH_PIXELS` pixels."""
    if not str(device).startswith("cpu"):
        return max(1, int(batch))
    return max(1, min(int(batch), CPU_BATCH_PIXELS // (int(imgsz) * int(imgsz))))


def predict_pool(model, paths: Sequence[str | os.PathLike], imgsz: int = 128, batch: int = 32,
                 conf: float = 0.01, iou: float = 0.7, max_det: int = 100, device: str = "cpu",
                 embed: bool = True, progress: bool = True, workers: int | None = None, desc: str = "scoring pool",
                 flip: bool = False, trust_weights: bool = False) -> Predictions:
    """Run ``model`` over ``paths`` in batches; returns :class:`~labkit.active.strategies.Predictions`.

    Args:
        model: an Ultralytics ``YOLO``, its ``DetectionModel``, or a weights path.
        paths: images to score (use :func:`subset_indices` to score a random subset, as the source did).
        imgsz: square input size (letterbox, like ``predict`` with ``rect=False``).
        batch: images per forward pass (on CPU at most :data:`CPU_BATCH_PIXELS` pixels: see :func:`cpu_batch`).
        conf, iou, max_det: NMS settings. A low ``conf`` keeps the uncertain boxes uncertainty sampling is about.
        device: torch device string.
        embed: also return pooled Detect-input features (P3, P4, P5 global-average-pooled, concatenated).
        progress: show a ``tqdm`` progress bar.
        workers: threads that read and letterbox the next batch while this one runs. ``None`` (default): 2 on a
            GPU, 0 on the CPU, where a reading thread competes with torch's own threads for the cores and slows
            the network (compare ``python benchmarks/bench_active_scoring.py --workers 0`` and ``--workers 2``).
        flip: run on horizontally flipped images and flip the boxes back (a cheap extra committee member).
        trust_weights: load a weights path without restriction (the explicit opt-in for a trusted legacy file;
            by default it loads safely: :mod:`labkit.weights`).
    """
    import torch
    from tqdm.auto import tqdm
    from ultralytics.utils.nms import non_max_suppression

    paths = [str(p) for p in paths]
    batch = cpu_batch(batch, imgsz, device)
    cl = str(device).startswith("cpu")  # channels-last convolutions are markedly faster on CPU (oneDNN)
    net = _network(model, device, channels_last=cl, trust_weights=trust_weights)
    head = net.model[-1]
    nc = int(getattr(head, "nc", 0))
    feats: list = []
    hook = None
    if embed:
        def grab(module, args):
            xs = args[0]
            feats.append(torch.cat([x.float().mean(dim=(2, 3)) for x in xs], dim=1).cpu())
        hook = head.register_forward_pre_hook(grab)
    boxes, probs = [], []
    if workers is None:
        workers = 0 if cl else 2
    ex = ThreadPoolExecutor(max(1, workers)) if workers else None
    try:
        bar = tqdm(total=len(paths), desc=desc, disable=not progress, unit="img")
        batches = [paths[i:i + batch] for i in range(0, len(paths), batch)]
        nxt = ex.submit(load_batch, batches[0], imgsz, None) if (ex and batches) else None
        for bi, chunk in enumerate(batches):
            x = nxt.result() if nxt else load_batch(chunk, imgsz)
            if ex and bi + 1 < len(batches):  # read the next batch while this one runs
                nxt = ex.submit(load_batch, batches[bi + 1], imgsz, None)
            with torch.inference_mode():
                x = x.to(device)
                if flip:
                    x = x.flip(-1)
                out = net(x.contiguous(memory_format=torch.channels_last) if cl else x.contiguous())
                y = out[0] if isinstance(out, (list, tuple)) else out
                kept, idx = non_max_suppression(y, conf_thres=conf, iou_thres=iou, max_det=max_det, nc=nc,
                                                return_idxs=True)
                for b in range(len(chunk)):
                    ii = idx[b].long().view(-1)
                    bx = kept[b][:, :4].cpu().numpy().astype(np.float64)
                    if flip:  # back to the unflipped image: x -> W - x
                        bx = np.stack([imgsz - bx[:, 2], bx[:, 1], imgsz - bx[:, 0], bx[:, 3]], axis=1)
                    boxes.append(bx)
                    probs.append(y[b, 4:4 + nc][:, ii].T.cpu().numpy().astype(np.float64))
            bar.update(len(chunk))
        bar.close()
    finally:
        if hook is not None:
            hook.remove()
        if ex:
            ex.shutdown(wait=True)
    emb = torch.cat(feats).numpy().astype(np.float64) if embed and feats else None
    return Predictions(paths, boxes, probs, emb)

