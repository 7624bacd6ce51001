"""Attribution maps: Grad-CAM against a computation written here, every method on every family, the
layer chooser and the messages a person gets for a wrong method, layer or class."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from explorer.attribution import (CAM_METHODS, METHODS, AttributionError, attribute, cam_layers, default_cam_layer,
                                  occlusion_window, overlay)
from explorer.inference import preprocess
from explorer.weights import BUNDLED, LoadedModel, load
from explorer.zoo import build_model, get_spec

CAM_SUM_NOISE = 0.03  # HiResCAM's channel sum cancels heavily; the library sums in float32, this test in float64
SMALL = 32  # input side of the every-method tests: every family runs at 32 and CI stays fast
CAM_SIDE = 64  # input side of the Grad-CAM comparisons: stage grids of 16x16 down to 2x2
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FAMILIES = ("resnet18", "swin_tiny_patch4_window7_224", "convnext_tiny", "roadmap:kernel7")


@lru_cache(maxsize=None)
def small_loaded(name: str, side: int = SMALL) -> LoadedModel:
    """A registry model with random weights (seeded) preprocessing to `side` x `side`."""
    torch.manual_seed(0)
    spec = get_spec(name)
    config = {"input_size": (3, side, side), "interpolation": "bilinear", "mean": IMAGENET_MEAN,
              "std": IMAGENET_STD, "crop_pct": 1.0, "crop_mode": "center"}
    labels = tuple(f"class {index}" for index in range(spec.num_classes))
    return LoadedModel(build_model(name, input_size=side), name, "random init", labels, config)


def picture(seed: int = 0, size: tuple[int, int] = (90, 70)) -> Image.Image:
    """A smooth random image: a color gradient with a bright square, so maps have structure."""
    rng = np.random.default_rng(seed)
    width, height = size
    ramp = np.linspace(0, 1, width)[None, :, None] * rng.random(3)[None, None, :]
    pixels = np.broadcast_to(ramp, (height, width, 3)).copy()
    pixels[height // 4: height // 2, width // 3: 2 * width // 3] = rng.random(3)
    return Image.fromarray((pixels * 255).astype(np.uint8))


def stage_and_gradient(model: torch.nn.Module, batch: torch.Tensor, layer: str, target: int,
                       channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The output of `layer` and the gradient of class `target`'s score with respect to it, (N, C, h, w)."""
    kept = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: kept.update(out=out))
    try:
        score = model(batch)[0, target]
    finally:
        handle.remove()
    maps = kept["out"]
    (gradient,) = torch.autograd.grad(score, maps)
    if channels_last:  # (N, H, W, C) -> (N, C, H, W)
        maps, gradient = maps.permute(0, 3, 1, 2), gradient.permute(0, 3, 1, 2)
    return maps, gradient


def gradcam_by_hand(model: torch.nn.Module, batch: torch.Tensor, layer: str, target: int,
                    channels_last: bool) -> np.ndarray:
    """Grad-CAM from its definition: weights = mean gradient over space, ReLU(sum of weighted maps),
    bilinear upsampling to the input, divided by its maximum."""
    maps, gradient = stage_and_gradient(model, batch, layer, target, channels_last)
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))  # (N, 1, h, w)
    cam = F.interpolate(cam, size=tuple(batch.shape[-2:]), mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().numpy()
    return cam / cam.max() if cam.max() > 0 else cam


def _compare_with_definition(name: str, layer: str) -> None:
    loaded = small_loaded(name, CAM_SIDE)
    image = picture()
    batch = preprocess(image, loaded.data_config)
    compared = 0
    for target in range(8):  # with random weights some classes have no positive evidence at all
        result = attribute(loaded, image, "gradcam", layer=layer, target=target)
        expected = gradcam_by_hand(loaded.model, batch, layer, target, get_spec(name).layout.channels_last)
        np.testing.assert_allclose(result.map, expected, atol=1e-4)
        assert (result.layer, result.target) == (layer, target)
        compared += bool(expected.max() > 0)
        if compared == 2:
            return
    pytest.fail("fewer than two classes with a non-empty map: the comparison would mean little")


@pytest.mark.parametrize("layer", cam_layers("convnext_shapes"))
def test_gradcam_matches_the_definition_at_every_stage(layer):
    _compare_with_definition("convnext_shapes", layer)


def test_gradcam_reads_swins_channels_last_stage_as_channels_first():
    _compare_with_definition("swin_tiny_patch4_window7_224", "layers.3")


def hirescam_by_hand(model: torch.nn.Module, batch: torch.Tensor, layer: str, target: int,
                     channels_last: bool) -> tuple[np.ndarray, float]:
    """HiResCAM from its definition (Draelos and Carin 2020): ReLU(sum over channels of gradient x
    activation), element by element; then as pytorch-grad-cam presents every CAM: shifted to start at 0
    and divided by its maximum plus 1e-7 (the library's guard against 0 / 0, which shows on maps as faint
    as ConvNeXt's, ~1e-5 with layer scale), upsampled bilinearly (half-pixel centres) to the input, and
    rescaled. Also the map's peak before scaling."""
    maps, gradient = stage_and_gradient(model, batch, layer, target, channels_last)
    cam = torch.relu((gradient.double() * maps.double()).sum(dim=1, keepdim=True)).detach()  # (1, 1, h, w)
    peak = float(cam.max())
    cam = cam - cam.min()
    cam = cam / (cam.max() + 1e-7)
    cam = F.interpolate(cam, size=tuple(batch.shape[-2:]), mode="bilinear", align_corners=False)[0, 0].numpy()
    cam = cam - cam.min()
    return cam / cam.max(), peak


def _compare_hirescam(loaded: LoadedModel, layer: str) -> None:
    image = picture()
    batch = preprocess(image, loaded.data_config)
    for target in range(8):
        expected, peak = hirescam_by_hand(loaded.model, batch, layer, target, get_spec(loaded.name).layout.channels_last)
        if peak > 0:  # a class with some positive evidence at this stage
            result = attribute(loaded, image, "hirescam", layer=layer, target=target)
            np.testing.assert_allclose(result.map, expected, atol=CAM_SUM_NOISE)
            assert (result.layer, result.target) == (layer, target)
            return
    pytest.fail("no class with a non-empty map: the comparison would mean little")


def test_library_cams_read_the_same_stage_as_gradcam():
    """pytorch-grad-cam's HiResCAM against its definition, at the bundled model's own stage."""
    _compare_hirescam(load(BUNDLED), "stages.2")


def test_library_cams_get_swins_channels_last_stage_as_channels_first():
    _compare_hirescam(small_loaded("swin_tiny_patch4_window7_224", CAM_SIDE), "layers.3")


def _check_map(result, side: int) -> None:
    assert result.map.shape == (side, side) and result.map.dtype == np.float32
    assert np.isfinite(result.map).all()
    assert 0.0 <= result.map.min() and result.map.max() <= 1.0
    assert result.image.shape == (side, side, 3) and result.image.dtype == np.uint8


@pytest.fixture
def fewer_evaluations(monkeypatch):
    """Fewer model runs for the many-run methods: the tests check the machinery, not the settings."""
    import explorer.attribution as attribution

    monkeypatch.setattr(attribution, "IG_STEPS", 4)
    monkeypatch.setattr(attribution, "IG_BATCH", 4)
    monkeypatch.setattr(attribution, "OCCLUSION_BATCH", 64)


@pytest.mark.parametrize("method", [method for method in METHODS if method != "scorecam"])  # one run per channel:
@pytest.mark.parametrize("name", FAMILIES)  # 768 at ConvNeXt-T's last stage; Score-CAM runs on the bundled model
def test_every_method_on_every_family(name, method, fewer_evaluations):
    result = attribute(small_loaded(name), picture(1), method)
    _check_map(result, SMALL)
    assert result.method == method
    assert result.layer == (cam_layers(name)[-1] if method in CAM_METHODS else None)
    assert result.map.max() == pytest.approx(1.0) or result.map.max() == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_the_bundled_model(method, fewer_evaluations):
    loaded = load(BUNDLED)
    result = attribute(loaded, picture(2), method)
    side = loaded.data_config["input_size"][-1]
    _check_map(result, side)
    if method in CAM_METHODS:  # the card's layer: stage 4's grid is too coarse on this model
        assert result.layer == default_cam_layer(BUNDLED) == "stages.2"


def test_default_layers_per_family():
    assert default_cam_layer("convnext_tiny") == "stages.3"
    assert default_cam_layer("swin_tiny_patch4_window7_224") == "layers.3"
    assert default_cam_layer("resnet50") == "layer4"
    assert default_cam_layer("resnext50_32x4d") == "layer4"
    assert default_cam_layer("roadmap:resnet50") == "stages.3"


def test_the_layer_chooser_offers_every_stage():
    assert cam_layers("resnet50") == ("layer1", "layer2", "layer3", "layer4")
    assert cam_layers("swin_tiny_patch4_window7_224")[-1] == "layers.3"
    assert attribute(small_loaded("resnet18"), picture(), "gradcam", layer="layer2").layer == "layer2"


def test_wrong_method_layer_and_class_get_sentences():
    loaded = small_loaded("roadmap:kernel7")
    with pytest.raises(AttributionError, match="gradcam, ig, occlusion, saliency"):
        attribute(loaded, picture(), "lime")
    with pytest.raises(AttributionError, match="stages.0, stages.1, stages.2, stages.3"):
        attribute(loaded, picture(), "gradcam", layer="layer4")
    with pytest.raises(AttributionError, match="leave the layer out"):
        attribute(loaded, picture(), "saliency", layer="stages.3")
    with pytest.raises(AttributionError, match="classes 0 to 999"):
        attribute(loaded, picture(), "saliency", target=1000)
    with pytest.raises(AttributionError, match="no class called"):
        attribute(loaded, picture(), "saliency", target="zebra")


def test_target_by_index_text_or_name():
    loaded = small_loaded("roadmap:kernel7")
    assert attribute(loaded, picture(), "saliency", target="7").target == 7
    assert attribute(loaded, picture(), "saliency", target="class 9").label == "class 9"


def test_occlusion_tiles_the_image_like_gradcams_grid():
    assert occlusion_window(224) == (32, 32)
    assert occlusion_window(SMALL) == (4, 4)


def test_overlay_is_an_rgb_image_of_the_input_size():
    result = attribute(small_loaded("roadmap:kernel7"), picture(), "gradcam", target=1)
    blended = overlay(result)
    assert blended.shape == (SMALL, SMALL, 3) and blended.dtype == np.uint8
    cold = result.map < 0.05
    if cold.any():  # where the map is cold, the image shows through
        assert np.abs(blended[cold].astype(int) - result.image[cold]).mean() < 100


def test_hooks_are_released():
    loaded = small_loaded("swin_tiny_patch4_window7_224", CAM_SIDE)
    stage = loaded.model.get_submodule("layers.3")
    before = (len(stage._forward_hooks), len(loaded.model._forward_hooks))
    attribute(loaded, picture(), "gradcam")
    with pytest.raises(AttributionError):
        attribute(loaded, picture(), "gradcam", target=10_000)
    assert (len(stage._forward_hooks), len(loaded.model._forward_hooks)) == before


def test_the_default_target_is_the_top_class_from_the_same_forward_pass():
    loaded = small_loaded("convnext_shapes", CAM_SIDE)
    for method in ("gradcam", "saliency"):
        default = attribute(loaded, picture(3), method)
        assert default.target == default.top[0].index and len(default.top) == 5
        explicit = attribute(loaded, picture(3), method, target=default.target)
        np.testing.assert_allclose(default.map, explicit.map, atol=1e-5)
        with torch.no_grad():
            probs = torch.softmax(loaded.model(preprocess(picture(3), loaded.data_config)), dim=-1)[0]
        assert default.top[0].prob == pytest.approx(float(probs.max()), rel=1e-4)
