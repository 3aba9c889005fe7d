"""The whole labkit YOLOv8 (every scale) against Ultralytics' yaml-built models, and the param/FLOP table.

Kept cheap: 64x64 / 32x64 inputs, batch 1-2, each Ultralytics scale built once. (Building yolov8x costs a few
seconds on 2 cores; it is still run, not skipped.)
"""
import copy
from pathlib import Path

import pytest
import torch
import yaml

from labkit.yolov8 import SCALES, YOLOv8, convert_ultralytics_state_dict, from_ultralytics
from labkit.yolov8.flops import PUBLISHED_FUSED, count_params, model_flops, scale_table
from labkit.yolov8.model import LAYER_NAMES, scale_spec, ultralytics_head_outputs

import ultralytics  # noqa: E402  # a hard dependency: a broken install fails, never skips
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

# Unfused parameter counts of Ultralytics' yaml-built models (nc=80): the comments of yolov8.yaml and
# the seed blog. Fused GFLOPs: the published table (one decimal).
OFFICIAL_PARAMS = {"n": 3_157_200, "s": 11_166_560, "m": 25_902_640, "l": 43_691_520, "x": 68_229_648}
YAML = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"


def _perturb_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.05)
    return model


def test_scales_match_ultralytics_yaml():
    spec = yaml.safe_load(YAML.read_text())
    assert {k: tuple(v) for k, v in spec["scales"].items()} == SCALES


def test_layer_names_cover_every_parametrised_ultralytics_layer():
    m = DetectionModel("yolov8n.yaml", verbose=False)
    assert len(m.model) == len(LAYER_NAMES)
    for i, layer in enumerate(m.model):
        has_params = any(True for _ in layer.parameters())
        assert has_params == (LAYER_NAMES[i] is not None), (i, type(layer).__name__)


@pytest.mark.parametrize("scale", ["n", "s", "m", "l", pytest.param("x", marks=pytest.mark.slow)])
def test_full_model_matches_ultralytics(scale):
    """Weights of YOLO('yolov8{scale}.yaml') load strictly; raw head outputs and decoded boxes equal."""
    theirs = _perturb_bn(DetectionModel(f"yolov8{scale}.yaml", verbose=False))
    ours = from_ultralytics(theirs)
    assert ours.scale == scale and ours.nc == 80
    assert count_params(ours) == sum(p.numel() for p in theirs.parameters()) == OFFICIAL_PARAMS[scale]

    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    theirs.eval()
    with torch.no_grad():
        a = ultralytics_head_outputs(theirs(x), nc=80)
        dec, raw = ours(x)
    assert (a["boxes"] - raw["boxes"]).abs().max() <= 1e-4, "raw box logits differ"
    assert (a["scores"] - raw["scores"]).abs().max() <= 1e-4, "raw class logits differ"
    assert dec.shape == a["decoded"].shape == (1, 84, 8 * 8 + 4 * 4 + 2 * 2)
    assert (a["decoded"][:, :4] - dec[:, :4]).abs().max() <= 1e-3, "decoded boxes (pixels) differ"
    assert (a["decoded"][:, 4:] - dec[:, 4:]).abs().max() <= 1e-5, "class probabilities differ"

    # train mode (batch statistics), batch of 2
    theirs.train(), ours.train()
    x2 = torch.rand(2, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = ultralytics_head_outputs(theirs(x2), nc=80)
        raw = ours(x2)
    assert (a["boxes"] - raw["boxes"]).abs().max() <= 1e-4
    assert (a["scores"] - raw["scores"]).abs().max() <= 1e-4


def test_other_nc_and_feature_shapes():
    theirs = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    ours = from_ultralytics(theirs)
    assert ours.nc == 3 and count_params(ours) == sum(p.numel() for p in theirs.parameters())
    x = torch.rand(1, 3, 128, 64)
    p3, p4, p5 = ours.forward_features(x)
    w = scale_spec("n").widths()
    assert p3.shape == (1, w["head P3"], 16, 8)   # stride 8
    assert p4.shape == (1, w["head P4"], 8, 4)    # stride 16
    assert p5.shape == (1, w["head P5"], 4, 2)    # stride 32
    shapes = ours.stage_shapes(x)
    assert shapes["stem"][2:] == (64, 32) and shapes["sppf"][2:] == (4, 2)


def test_state_dict_conversion_rejects_foreign_keys():
    with pytest.raises(KeyError, match="model.10"):
        convert_ultralytics_state_dict({"model.10.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="unexpected"):
        convert_ultralytics_state_dict({"backbone.0.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="scale"):
        YOLOv8("q")


def test_init_biases_match_ultralytics():
    theirs = DetectionModel("yolov8n.yaml", nc=7, verbose=False)  # bias_init() runs in its constructor
    ours = YOLOv8("n", nc=7)
    ours.init_biases()
    for i in range(3):
        assert torch.allclose(ours.detect.cv2[i][-1].bias, theirs.model[-1].cv2[i][-1].bias)
        assert torch.allclose(ours.detect.cv3[i][-1].bias, theirs.model[-1].cv3[i][-1].bias)


# --- parameter / FLOP table ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def table():
    return {r["scale"]: r for r in scale_table(nc=80, imgsz=640)}


def test_table_params_official(table):
    for s, n in OFFICIAL_PARAMS.items():
        assert table[s]["params"] == n
        assert round(table[s]["params_fused"] / 1e6, 1) == PUBLISHED_FUSED[s][0]


def test_table_gflops_published(table):
    """Fused GFLOPs vs the published table. yolov8l: 165.149 rounds to 165.1, published 165.2 (made with
    an older THOP), hence 0.1 tolerance instead of exact rounding."""
    for s, (_, gf) in PUBLISHED_FUSED.items():
        assert abs(table[s]["gflops_fused"] - gf) <= 0.1 + 1e-9, (s, table[s]["gflops_fused"], gf)
    # the unfused figures printed in yolov8.yaml's comments by older versions (8.9/28.8/79.3/165.7/258.5)
    for s, gf in {"n": 8.9, "s": 28.8, "m": 79.3, "l": 165.7, "x": 258.5}.items():
        assert round(table[s]["gflops"], 1) == gf


def test_gflops_equal_ultralytics_thop():
    """The analytic count equals Ultralytics' own THOP-based get_flops (unfused and fused)."""
    from ultralytics.utils.torch_utils import get_flops

    theirs = DetectionModel("yolov8n.yaml", nc=80, verbose=False)
    f = model_flops(from_ultralytics(theirs), 320)
    assert f.gflops(fused=False) == pytest.approx(get_flops(theirs, 320), rel=1e-6)
    fused = copy.deepcopy(theirs).fuse(verbose=False)
    assert f.gflops(fused=True) == pytest.approx(get_flops(fused, 320), rel=1e-6)
    assert count_params(from_ultralytics(theirs), fused=True) == sum(p.numel() for p in fused.parameters())


def test_seed_nc1_yolov8x_numbers():
    """The seed's BKAI run prints 68,153,571 parameters and 258.1 GFLOPs for yolov8x with nc=1."""
    row = scale_table(nc=1, scales="x")[0]
    assert row["params"] == 68_153_571
    assert f"{row['gflops']:.1f}" == "258.1"
    # the class branch shrinks: c3 = max(ch0, min(nc, 100)) is unchanged, only the last 1x1 convs
    diff = OFFICIAL_PARAMS["x"] - row["params"]
    c3 = max(scale_spec("x").ch(256), 80)
    assert diff == 3 * (c3 + 1) * (80 - 1)

