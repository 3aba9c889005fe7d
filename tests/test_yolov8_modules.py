"""labkit.yolov8.modules against ultralytics.nn.modules: same state_dict, same outputs (<= 1e-5).

Every labkit block loads the state_dict of the matching Ultralytics block with ``strict=True`` and
must give the same output in eval mode (running BN statistics, randomised here so they matter) and
in train mode (batch statistics; the updated running statistics must match too).
"""
import copy

import pytest
import torch

from labkit.yolov8 import modules as L

import ultralytics  # noqa: E402,F401  # a hard dependency: a broken install fails, never skips
from ultralytics.nn.modules import block as UB  # noqa: E402
from ultralytics.nn.modules import conv as UC  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402
from ultralytics.utils.torch_utils import initialize_weights  # noqa: E402

from labkit.check.yolov8 import randomise_batchnorm  # noqa: E402
from labkit.yolov8.model import ultralytics_head_outputs  # noqa: E402

TOL = 1e-5


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Ultralytics' model init (BN eps=1e-3, momentum=0.03, exactly what a built YOLO model has), then labkit's
    random BN statistics and affine parameters, so that eval mode is not an identity."""
    initialize_weights(module)
    return randomise_batchnorm(module, torch.Generator().manual_seed(seed))


def _compare(theirs: torch.nn.Module, ours: torch.nn.Module, x, seed=0):
    """Load their weights into ours; compare outputs in eval and train mode, and BN running stats."""
    _randomise(theirs, seed)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for train in (False, True):
        theirs.train(train)
        ours.train(train)
        with torch.no_grad():
            a, b = theirs(x.clone()), ours(x.clone())
        assert a.shape == b.shape
        diff = (a - b).abs().max().item()
        assert diff <= TOL, f"{type(ours).__name__} train={train}: max abs diff {diff:.2e}"
    sa, sb = theirs.state_dict(), ours.state_dict()
    for k in sa:  # running statistics after the train-mode pass (momentum 0.03)
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=TOL), k


def _x(c, h=16, w=20, b=2, seed=1):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("k,s", [(1, 1), (3, 1), (3, 2)])
def test_conv(k, s):
    _compare(UC.Conv(8, 16, k, s), L.Conv(8, 16, k, s), _x(8))


@pytest.mark.parametrize("shortcut,c_out,k,e", [(True, 16, (3, 3), 1.0), (False, 16, (3, 3), 1.0),
                                                (True, 24, (1, 3), 0.5), (True, 16, (1, 3), 0.5)])
def test_bottleneck(shortcut, c_out, k, e):
    theirs = UB.Bottleneck(16, c_out, shortcut, 1, k, e)
    ours = L.Bottleneck(16, c_out, shortcut, k, e)
    assert ours.add == theirs.add  # residual only when channels match
    _compare(theirs, ours, _x(16))


@pytest.mark.parametrize("n,shortcut", [(1, True), (2, False), (3, True)])
def test_c2f(n, shortcut):
    _compare(UB.C2f(16, 32, n, shortcut), L.C2f(16, 32, n, shortcut), _x(16))


@pytest.mark.parametrize("n,shortcut", [(1, True), (2, False)])
def test_c3(n, shortcut):
    _compare(UB.C3(16, 32, n, shortcut), L.C3(16, 32, n, shortcut), _x(16))


def test_spp():
    _compare(UB.SPP(16, 24, (5, 9, 13)), L.SPP(16, 24, (5, 9, 13)), _x(16))


def test_sppf_as_in_yolov8():
    """YOLOv8's SPPF has a SiLU after cv1. Take the SPPF out of a yaml-built yolov8n to compare."""
    theirs = copy.deepcopy(DetectionModel("yolov8n.yaml", verbose=False).model[9])
    assert isinstance(theirs, UB.SPPF)
    assert isinstance(theirs.cv1.act, torch.nn.SiLU), (
        "Ultralytics' yolov8 SPPF lost the SiLU after cv1 (the 8.4 regression fixed by "
        "ultralytics PR #26040 is back): released YOLOv8 weights would run a different graph")
    _compare(theirs, L.SPPF(256, 256, 5), _x(256, 8, 8, seed=3))


def test_sppf_direct_constructor_variant():
    """8.4's bare ``SPPF(c1, c2, k)`` is the YOLO26 block (no act on cv1): labkit's ``act1=False``."""
    theirs = UB.SPPF(16, 16, 5)
    act_is_identity = isinstance(theirs.cv1.act, torch.nn.Identity)
    ours = L.SPPF(16, 16, 5, act1=not act_is_identity)
    _compare(theirs, ours, _x(16))


def test_sppf_equals_spp_with_same_weights():
    """Three 5x5 max-pools in series == 5/9/13 max-pools in parallel (identical weights)."""
    spp, sppf = L.SPP(16, 24, (5, 9, 13)), L.SPPF(16, 24, 5)
    _randomise(spp)
    sppf.load_state_dict(spp.state_dict())  # same parameter names and shapes
    spp.eval(), sppf.eval()
    x = _x(16, 19, 23)
    with torch.no_grad():
        assert torch.equal(spp(x), sppf(x))  # max-pooling is exact: no tolerance needed


def test_dfl():
    theirs, ours = UB.DFL(16), L.DFL(16)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 64, 300) * 3
    diff = (theirs(x) - ours(x)).abs().max().item()
    assert diff <= TOL
    # and it is the expectation of the softmax over bins 0..15
    p = x.view(2, 4, 16, 300).softmax(2)
    expect = (p * torch.arange(16.0).view(1, 1, 16, 1)).sum(2)
    assert torch.allclose(ours(x), expect, atol=1e-5)


@pytest.fixture(scope="module")
def yolov8n_nc5():
    return DetectionModel("yolov8n.yaml", nc=5, verbose=False)


def test_detect_head(yolov8n_nc5):
    """Detect: box branch 4*reg_max channels, class branch nc; raw outputs and decoded boxes equal."""
    theirs = copy.deepcopy(yolov8n_nc5.model[-1])
    ch = [seq[0].conv.in_channels for seq in theirs.cv2]
    ours = L.Detect(nc=5, ch=tuple(ch), reg_max=16, strides=tuple(theirs.stride.tolist()))
    _randomise(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert [s[-1].out_channels for s in ours.box_branch] == [64] * 3
    assert [s[-1].out_channels for s in ours.cls_branch] == [5] * 3
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, c, 64 // s, 96 // s, generator=g) for c, s in zip(ch, (8, 16, 32))]
    for train in (False, True):
        theirs.train(train), ours.train(train)
        with torch.no_grad():
            a = ultralytics_head_outputs(theirs([f.clone() for f in feats]), nc=5)
            b = ours([f.clone() for f in feats])
        b = b if train else {**b[1], "decoded": b[0]}
        assert (a["boxes"] - b["boxes"]).abs().max() <= TOL
        assert (a["scores"] - b["scores"]).abs().max() <= TOL
        if not train:
            assert a["decoded"].shape == b["decoded"].shape == (2, 4 + 5, 8 * 12 + 4 * 6 + 2 * 3)
            assert (a["decoded"] - b["decoded"]).abs().max() <= 1e-4 * 96  # pixels, ~1e-5 relative


def test_ultralytics_detect_format_is_known(yolov8n_nc5):
    """Fails loudly if a new Ultralytics changes the head's output layout again (it did in 8.4)."""
    m = copy.deepcopy(yolov8n_nc5)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        m.train()
        train_out = m(x)
        m.eval()
        eval_out = m(x)
    for out in (train_out, eval_out):
        parsed = ultralytics_head_outputs(out, nc=5)
        assert parsed["boxes"].shape == (1, 64, 84) and parsed["scores"].shape == (1, 5, 84)
    assert ultralytics_head_outputs(eval_out, nc=5)["decoded"].shape == (1, 9, 84)
    assert not getattr(m.model[-1], "end2end", False), "yolov8 should not build an end-to-end (one2one) head"
    assert m.model[-1].legacy, "yolov8 must use the legacy (plain 3x3 conv) class branch"


def test_make_anchors_and_dist2bbox_match_ultralytics():
    from ultralytics.utils import tal

    feats = [torch.zeros(1, 4, 8, 12), torch.zeros(1, 4, 4, 6), torch.zeros(1, 4, 2, 3)]
    pa, sa = tal.make_anchors(feats, torch.tensor([8.0, 16.0, 32.0]), 0.5)
    pb, sb = L.make_anchors(feats, (8, 16, 32), 0.5)
    assert torch.equal(pa, pb) and torch.equal(sa, sb)
    d = torch.rand(2, pa.shape[0], 4) * 10
    for xywh in (True, False):
        assert torch.allclose(tal.dist2bbox(d, pa, xywh=xywh), L.dist2bbox(d, pb, xywh=xywh))
    box = L.dist2bbox(d, pb, xywh=False)
    assert torch.allclose(tal.bbox2dist(pa, box, 15), L.bbox2dist(pb, box, 16))  # same clamp 14.99
    assert torch.allclose(L.bbox2dist(pb, box), d, atol=1e-4)  # inverse without the clamp
