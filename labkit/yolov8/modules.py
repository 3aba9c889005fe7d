"""The building blocks of YOLOv8, written to be read.

Every class here has the *same parameter names* as its Ultralytics counterpart
(``ultralytics.nn.modules``), so ``ours.load_state_dict(theirs.state_dict())`` works with
``strict=True`` and the two can be compared output for output (see ``tests/test_yolov8_modules.py``).
The names are historical (``cv1``, ``cv2``, ``m`` ...); the comments say what each piece is.

Shapes are written ``(B, C, H, W)``. ``A`` is the number of anchor points (grid cells over all levels).

Blocks
------
Conv        Conv2d (no bias) -> BatchNorm2d -> SiLU; "same" padding; the only place weights live.
Bottleneck  two Convs with an optional residual connection.
C3          YOLOv5's CSP block: two parallel 1x1 branches, bottlenecks on one of them, concat, 1x1.
C2f         YOLOv8's CSP block: one 1x1 conv split in two halves, a chain of bottlenecks, and *every*
            intermediate output concatenated before the final 1x1 (more gradient paths; at the same n it
            has *more* parameters than C3, not fewer).
SPP / SPPF  spatial pyramid pooling with 5/9/13 max-pools in parallel (SPP) or three 5x5 max-pools in
            series (SPPF); the two give identical outputs because stacked max-pools compose.
DFL         turns 16 logits per box side into an expected distance: softmax, then a dot product with
            [0, 1, ..., 15] (implemented as a frozen 1x1 convolution, as in Ultralytics).
Detect      the decoupled, anchor-free head: per level a box branch (4*reg_max channels) and a class
            branch (nc channels), plus decoding of distances to boxes around the anchor points.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "Conv", "Bottleneck", "C3", "C2f", "SPP", "SPPF", "DFL", "Detect", "Concat",
    "make_anchors", "dist2bbox", "bbox2dist",
]


class Conv(nn.Module):
    """Convolution -> batch norm -> SiLU, with "same" padding (``k // 2``).

    The convolution has no bias: the batch norm right after it has its own shift, so a bias would be
    redundant. ``act=False`` drops the activation (used nowhere in YOLOv8 itself, but by newer blocks).
    """

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, g: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, padding=k // 2, groups=g, bias=False)
        # BN eps=1e-3 / momentum=0.03 are what Ultralytics sets on its models after building them
        # (ultralytics.utils.torch_utils.initialize_weights); the values live in the module, not the
        # state_dict, so we set them here to get the same train-mode batch statistics.
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """``x -> Conv k1 -> Conv k2 (+ x if shortcut)``; channels stay ``c`` (expansion 1.0 in C2f/C3).

    The residual is only added when input and output channels match.
    """

    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, k: tuple[int, int] = (3, 3),
                 e: float = 0.5):
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = Conv(c_in, hidden, k[0])
        self.cv2 = Conv(hidden, c_out, k[1])
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convolutions (YOLOv5), shown here for comparison with :class:`C2f`.

    ::

        x ─┬─ cv1 (1x1, c/2) ── n × Bottleneck(1x1, 3x3) ──┐
           └─ cv2 (1x1, c/2) ───────────────────────────────┴─ concat ─ cv3 (1x1, c)

    Only the *last* bottleneck output reaches ``cv3``: the gradient of the loss reaches the first
    bottleneck through all the later ones (plus the residual shortcuts).
    """

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True, e: float = 0.5):
        super().__init__()
        hidden = int(c_out * e)
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(c_in, hidden, 1)
        self.cv3 = Conv(2 * hidden, c_out, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, k=(1, 3), e=1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], dim=1))


class C2f(nn.Module):
    """CSP bottleneck with 2 convolutions, "fast" variant: the block YOLOv8 uses everywhere.

    ::

        x ── cv1 (1x1, 2h) ── split ─┬─ y0 ─────────────────────────────────────┐
                                     └─ y1 ── B1 ── y2 ── B2 ── y3 ... ── y(n+1)  │
                                              │           │                     │
                              concat(y0, y1, y2, ..., y(n+1))  ─ cv2 (1x1, c) ──┘

    with ``h = c_out / 2``. Every bottleneck output is concatenated, so each one has a *direct* path
    to ``cv2`` (and to the loss): ``n + 2`` inputs to the final 1x1 instead of C3's two.
    """

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = False, e: float = 0.5):
        super().__init__()
        self.c = int(c_out * e)  # width of each half ("hidden" channels)
        self.cv1 = Conv(c_in, 2 * self.c, 1)
        self.cv2 = Conv((2 + n) * self.c, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, k=(3, 3), e=1.0) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys = list(self.cv1(x).chunk(2, dim=1))  # [y0, y1]
        for bottleneck in self.m:
            ys.append(bottleneck(ys[-1]))  # each bottleneck works on the latest output
        return self.cv2(torch.cat(ys, dim=1))


class SPP(nn.Module):
    """Spatial pyramid pooling (YOLOv3/v4/v5): max-pools of sizes 5, 9, 13 *in parallel*, stride 1."""

    def __init__(self, c_in: int, c_out: int, k: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        hidden = c_in // 2
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(hidden * (len(k) + 1), c_out, 1)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=size, stride=1, padding=size // 2) for size in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [pool(x) for pool in self.m], dim=1))


class SPPF(nn.Module):
    """SPP-Fast: one 5x5 max-pool applied three times *in series*.

    A 5x5 max-pool of a 5x5 max-pool is a 9x9 max-pool, and once more is a 13x13 max-pool, so the
    concatenation ``[x, pool(x), pool²(x), pool³(x)]`` equals SPP(5, 9, 13) with the same weights,
    at a fraction of the cost (see the notebook and ``tests/test_yolov8_modules.py``).

    In YOLOv8, ``cv1`` *has* a SiLU. (Ultralytics 8.4 added an unactivated SPPF for YOLO26 and
    restores the activation only for legacy yaml rows; pass ``act1=False`` to build that variant.)
    """

    def __init__(self, c_in: int, c_out: int, k: int = 5, act1: bool = True):
        super().__init__()
        hidden = c_in // 2
        self.cv1 = Conv(c_in, hidden, 1, act=act1)
        self.cv2 = Conv(hidden * 4, c_out, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, dim=1))


class Concat(nn.Module):
    """Concatenate a list of tensors along the channel dimension (a layer only to mirror the yaml)."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class DFL(nn.Module):
    """Distribution Focal Loss *integral*: 16 logits per side -> one expected distance per side.

    Input ``(B, 4 * reg_max, A)``; for each of the 4 sides (left, top, right, bottom) the ``reg_max``
    logits are turned into probabilities ``p_i`` over the distances ``i = 0 .. reg_max-1`` (in units of
    the level's stride) and the output is the expectation ``sum_i i * p_i``. The weights ``[0, 1, ...,
    reg_max-1]`` live in a frozen 1x1 convolution so the state_dict matches Ultralytics'.
    """

    def __init__(self, reg_max: int = 16):
        super().__init__()
        self.reg_max = reg_max
        self.conv = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(reg_max, dtype=torch.float).view(1, reg_max, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        # (B, 4*R, A) -> (B, 4, R, A) -> (B, R, 4, A): the bins become the "channels" of the 1x1 conv
        probs = x.view(b, 4, self.reg_max, a).transpose(1, 2).softmax(dim=1)
        return self.conv(probs).view(b, 4, a)  # sum_i i * p_i


def make_anchors(feats: list[torch.Tensor], strides, offset: float = 0.5):
    """Anchor points (cell centres, in *grid units* of each level) and the stride of each anchor.

    Returns ``points (A, 2)`` as ``(x, y)`` and ``stride (A, 1)``, level after level, row-major in
    each level: exactly the order in which :class:`Detect` flattens its outputs.
    """
    points, stride_col = [], []
    for feat, stride in zip(feats, strides):
        h, w = feat.shape[-2:]
        xs = torch.arange(w, dtype=feat.dtype, device=feat.device) + offset
        ys = torch.arange(h, dtype=feat.dtype, device=feat.device) + offset
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack((gx, gy), dim=-1).view(-1, 2))
        stride_col.append(torch.full((h * w, 1), float(stride), dtype=feat.dtype, device=feat.device))
    return torch.cat(points), torch.cat(stride_col)


def dist2bbox(distance: torch.Tensor, anchor_points: torch.Tensor, xywh: bool = True, dim: int = -1):
    """Distances ``(l, t, r, b)`` from anchor points -> boxes (``xyxy`` or centre ``xywh``)."""
    lt, rb = distance.chunk(2, dim)
    x1y1 = anchor_points - lt
    x2y2 = anchor_points + rb
    if xywh:
        return torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), dim)
    return torch.cat((x1y1, x2y2), dim)


def bbox2dist(anchor_points: torch.Tensor, bbox: torch.Tensor, reg_max: int | None = None):
    """Boxes ``xyxy`` -> distances ``(l, t, r, b)`` from the anchor points (inverse of dist2bbox).

    With ``reg_max`` the distances are clamped to ``[0, reg_max - 1 - 0.01]``: the DFL has bins
    ``0 .. reg_max-1`` only, so a target beyond the last bin is pulled just inside it.
    """
    x1y1, x2y2 = bbox.chunk(2, -1)
    dist = torch.cat((anchor_points - x1y1, x2y2 - anchor_points), -1)
    if reg_max is not None:
        dist = dist.clamp(0, reg_max - 1 - 0.01)
    return dist


class Detect(nn.Module):
    """Decoupled anchor-free detection head.

    For each input level ``i`` (P3, P4, P5 with strides 8, 16, 32):

    * box branch ``cv2[i]``: Conv3x3 -> Conv3x3 -> Conv2d 1x1 to ``4 * reg_max`` channels
      (a distribution over distances for each side of the box);
    * class branch ``cv3[i]``: Conv3x3 -> Conv3x3 -> Conv2d 1x1 to ``nc`` channels (independent
      sigmoid logits, no objectness score).

    Widths (as in Ultralytics): box branch ``max(16, ch[0] // 4, 4 * reg_max)``, class branch
    ``max(ch[0], min(nc, 100))``. (YOLO11/26 heads use depthwise convs in the class branch;
    YOLOv8 is the "legacy" head with plain 3x3 convs, which is what is built here.)

    Output (the same structure as Ultralytics 8.4):

    * train mode: ``{"boxes": (B, 4*reg_max, A), "scores": (B, nc, A), "feats": [P3, P4, P5]}``,
      the raw logits the loss needs;
    * eval mode: ``(y, raw)`` with ``y`` of shape ``(B, 4 + nc, A)``: boxes as centre ``xywh`` in
      input pixels followed by sigmoid class probabilities, ready for NMS.
    """

    def __init__(self, nc: int = 80, ch: tuple[int, ...] = (256, 512, 1024), reg_max: int = 16,
                 strides: tuple[float, ...] = (8.0, 16.0, 32.0)):
        super().__init__()
        self.nc, self.reg_max, self.nl = nc, reg_max, len(ch)
        self.no = nc + 4 * reg_max  # outputs per anchor
        self.level_strides = tuple(float(v) for v in strides)  # 8, 16, 32 for P3, P4, P5
        c_box = max(16, ch[0] // 4, 4 * reg_max)
        c_cls = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(  # box branch
            nn.Sequential(Conv(c, c_box, 3), Conv(c_box, c_box, 3), nn.Conv2d(c_box, 4 * reg_max, 1)) for c in ch
        )
        self.cv3 = nn.ModuleList(  # class branch
            nn.Sequential(Conv(c, c_cls, 3), Conv(c_cls, c_cls, 3), nn.Conv2d(c_cls, nc, 1)) for c in ch
        )
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()

    @property
    def stride(self) -> torch.Tensor:
        """Strides as a tensor (Ultralytics keeps ``Detect.stride``)."""
        return torch.tensor(self.level_strides)

    @property
    def box_branch(self) -> nn.ModuleList:
        """Alias of ``cv2`` (the name Ultralytics uses)."""
        return self.cv2

    @property
    def cls_branch(self) -> nn.ModuleList:
        """Alias of ``cv3`` (the name Ultralytics uses)."""
        return self.cv3

    def raw(self, feats: list[torch.Tensor]) -> dict:
        """Run both branches on every level and flatten the grids into one anchor axis."""
        b = feats[0].shape[0]
        boxes = torch.cat([branch(f).view(b, 4 * self.reg_max, -1) for branch, f in zip(self.cv2, feats)], dim=-1)
        scores = torch.cat([branch(f).view(b, self.nc, -1) for branch, f in zip(self.cv3, feats)], dim=-1)
        return {"boxes": boxes, "scores": scores, "feats": feats}

    def decode(self, raw: dict) -> torch.Tensor:
        """Raw head outputs -> ``(B, 4 + nc, A)``: centre-xywh boxes in pixels + class probabilities."""
        anchors, strides = make_anchors(raw["feats"], self.level_strides, 0.5)  # (A, 2), (A, 1) in grid units
        dist = self.dfl(raw["boxes"])  # (B, 4, A) expected l, t, r, b in grid units
        boxes = dist2bbox(dist, anchors.T.unsqueeze(0), xywh=True, dim=1) * strides.T  # -> pixels
        return torch.cat((boxes, raw["scores"].sigmoid()), dim=1)

    def forward(self, feats: list[torch.Tensor]):
        raw = self.raw(feats)
        if self.training:
            return raw
        return self.decode(raw), raw
