"""Where a model looks when it decides: Grad-CAM, four more class activation maps, three other captum attributions.

One entry point, `attribute(loaded, image, method, layer=None, target=None)`, returns an
`AttributionResult` whose `map` is a float32 (H, W) array at the model's input resolution, scaled
to [0, 1], with the layer and class it explains. Each method is one small function over the
preprocessed batch; they share the preprocessing, the choice of target and the scaling.

- `gradcam`: captum's `LayerGradCam` with ReLU at a stage's output. The default stage is the last
  one (ConvNeXt, Swin, ResNet's layer4, the roadmap steps), or the `cam_layer` written in the
  bundled model's card. Swin's stages give (N, H, W, C): a `ChannelsFirstProbe` hands captum the
  same tensor as (N, C, H, W).
- `ig`: Integrated Gradients from a black image (zero after normalization is the mean color),
  evaluated in chunks of `IG_BATCH` so memory stays bounded.
- `occlusion`: the drop in the class score when a square of the image is grayed out, tile by tile.
- `saliency`: |d score / d pixel|, the largest over the color channels.
- `gradcam++`, `hirescam`, `layercam`, `scorecam`, `eigencam`: pytorch-grad-cam's classes of those
  names, read at the same stage as Grad-CAM through the same probe. Score-CAM runs the model once per
  channel of that stage; EigenCAM is the stage's first principal component and ignores the class.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from explorer.inference import TopClass, input_image, preprocess, top_classes
from explorer.weights import BUNDLED, LoadedModel, WeightsUnavailableError, bundled_card
from explorer.zoo import ExplorerError, StageLayout, get_spec, spatial_layout

# method key -> the pytorch-grad-cam class that computes it (the library's own implementations)
LIBRARY_CAMS = {"gradcam++": "GradCAMPlusPlus", "hirescam": "HiResCAM", "layercam": "LayerCAM",
                "scorecam": "ScoreCAM", "eigencam": "EigenCAM"}
CAM_METHODS = ("gradcam", *LIBRARY_CAMS)  # the methods that read a stage
METHODS = ("gradcam", "ig", "occlusion", "saliency", *LIBRARY_CAMS)
METHOD_TITLES = {"gradcam": "Grad-CAM", "ig": "Integrated Gradients", "occlusion": "Occlusion",
                 "saliency": "Saliency", "gradcam++": "Grad-CAM++", "hirescam": "HiResCAM", "layercam": "LayerCAM",
                 "scorecam": "Score-CAM", "eigencam": "EigenCAM"}
SLOW_METHODS = ("ig", "occlusion", "scorecam")  # tens to hundreds of model runs per map
SCORECAM_BATCH = 32  # masked copies per forward pass in Score-CAM
TOP_K = 5  # classes listed with each map
IG_STEPS = 24  # points on the path from the baseline to the image
IG_BATCH = 8  # of those, evaluated per forward pass (bounds memory)
OCCLUSION_WINDOWS = 7  # the occluding square is 1/7 of the image side (32 px at 224, Grad-CAM's 7x7 grid) ...
OCCLUSION_OVERLAP = 1  # ... and moves by its own side / this (1: tiles, 49 forward passes; 2: 169)
OCCLUSION_BATCH = 25  # occluded copies per forward pass


class AttributionError(ExplorerError):
    """A method, layer or target this model does not have."""


@dataclass(frozen=True)
class AttributionResult:
    """One attribution map and what it explains."""

    model: str  # registry name
    weights: str  # which weights, as `LoadedModel.weights` says
    method: str  # one of METHODS
    layer: str | None  # the stage a CAM method read; None for the pixel-level methods
    target: int  # the explained class index
    label: str  # its name
    map: np.ndarray  # (H, W) float32 in [0, 1] at the model's input resolution
    image: np.ndarray  # (H, W, 3) uint8: the preprocessed input as the model saw it
    top: tuple[TopClass, ...]  # the TOP_K most probable classes, from the same forward pass
    seconds: float  # time spent in the method (preprocessing included)

    def to_json(self) -> dict:
        """The command line's document (`cam --json`, the web API's /explain): what the map explains,
        its size and where it peaks, and the top classes; the map itself goes to a file or a picture."""
        row, column = np.unravel_index(int(self.map.argmax()), self.map.shape)
        return {"model": self.model, "weights": self.weights, "method": self.method, "layer": self.layer,
                "target": self.target, "label": self.label, "size": list(self.map.shape),
                "peak": [int(row), int(column)], "mean": round(float(self.map.mean()), 6),
                "top": [guess._asdict() for guess in self.top], "seconds": round(self.seconds, 3)}


# --- layers -------------------------------------------------------------------------------------

def cam_layers(name: str) -> tuple[str, ...]:
    """The module names Grad-CAM can read for a registry model: its stages, first to last."""
    return spatial_layout(name).stages


def default_cam_layer(name: str) -> str:
    """The bundled model's card may name its own layer; every other model uses its last stage."""
    if name == BUNDLED:
        try:
            layer = bundled_card().get("cam_layer")
        except WeightsUnavailableError:  # no card, no trained model: its last stage like any other
            layer = None
        if layer:
            return layer
    return cam_layers(name)[-1]


def _check_layer(name: str, layer: str) -> str:
    layers = cam_layers(name)
    if layer not in layers:
        raise AttributionError(f"{name} has no stage called '{layer}'; Grad-CAM can use "
                               f"{', '.join(layers)}.")
    return layer


class ChannelsFirstProbe:
    """Makes a channels-last stage visible to captum as (N, C, H, W), and removes itself on exit.

    A forward hook on the stage sends its (N, H, W, C) output through an `nn.Identity` as
    (N, C, H, W) and permutes the result back for the rest of the network; captum attaches to that
    identity, which sees exactly the stage's values in channels-first order.
    """

    def __init__(self, stage: nn.Module) -> None:
        self.stage = stage
        self.probe = nn.Identity()
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _reroute(self, _module: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor:
        nchw = self.probe(output.permute(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)
        return nchw.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)

    def __enter__(self) -> nn.Module:
        self._handle = self.stage.register_forward_hook(self._reroute)
        return self.probe

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class CamLayer:
    """The module captum should read for a stage: the stage itself, or a probe for NHWC stages."""

    def __init__(self, model: nn.Module, layout: StageLayout, layer: str) -> None:
        stage = model.get_submodule(layer)
        self._probe = ChannelsFirstProbe(stage) if layout.channels_last else None
        self._stage = stage

    def __enter__(self) -> nn.Module:
        return self._probe.__enter__() if self._probe else self._stage

    def __exit__(self, *exc_info) -> None:
        if self._probe:
            self._probe.__exit__(*exc_info)


# --- the methods --------------------------------------------------------------------------------

def _gradcam(model: nn.Module, batch: torch.Tensor, target: int | None,
             layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(map (H, W), logits (1, classes)) from one forward pass; `target` None explains the top class
    (the gradient of the largest score is the gradient of the top class's score)."""
    from captum.attr import LayerAttribution, LayerGradCam

    kept: dict[str, torch.Tensor] = {}

    def scores(inputs: torch.Tensor) -> torch.Tensor:
        logits = model(inputs)  # (N, classes)
        kept["logits"] = logits.detach()
        return logits if target is not None else logits.amax(dim=1, keepdim=True)  # (N, 1)

    cam = LayerGradCam(scores, layer).attribute(
        batch, target=0 if target is None else target, relu_attributions=True)  # (1, 1, h, w)
    return LayerAttribution.interpolate(cam, tuple(batch.shape[-2:]), "bilinear")[0, 0], kept["logits"]


def _library_cam(model: nn.Module, batch: torch.Tensor, target: int | None, layer: nn.Module,
                 method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(map (H, W), logits (1, classes)) from pytorch-grad-cam's class for `method`; `target` None
    explains the top class. The library scales its map to [0, 1] itself and upsamples it bilinearly."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam = getattr(pytorch_grad_cam, LIBRARY_CAMS[method])(model=model, target_layers=[layer])
    cam.batch_size = SCORECAM_BATCH  # read by Score-CAM only
    try:  # not `with cam`: its __exit__ swallows an IndexError and prints it
        heat = cam(batch, targets=None if target is None else [ClassifierOutputTarget(target)])  # (1, H, W)
        logits = cam.outputs.detach()  # (1, classes), from the same forward pass
    finally:
        cam.activations_and_grads.release()  # the hooks come off the shared model
    return torch.from_numpy(heat[0]), logits


def _integrated_gradients(model: nn.Module, batch: torch.Tensor, target: int) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    attributions = IntegratedGradients(model).attribute(
        batch, baselines=torch.zeros_like(batch), target=target, n_steps=IG_STEPS,
        internal_batch_size=IG_BATCH)  # (1, 3, H, W)
    return attributions[0].abs().sum(dim=0)  # (H, W)


def occlusion_window(side: int) -> tuple[int, int]:
    """(window, stride) in pixels for an input side: 1/OCCLUSION_WINDOWS of the side, moving by
    window / OCCLUSION_OVERLAP."""
    window = max(side // OCCLUSION_WINDOWS, 1)
    return window, max(window // OCCLUSION_OVERLAP, 1)


def _occlusion(model: nn.Module, batch: torch.Tensor, target: int) -> torch.Tensor:
    from captum.attr import Occlusion

    window, stride = occlusion_window(min(batch.shape[-2:]))
    attributions = Occlusion(model).attribute(
        batch, target=target, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
        baselines=0.0, perturbations_per_eval=OCCLUSION_BATCH)  # (1, 3, H, W), same over channels
    return attributions[0].mean(dim=0).clamp(min=0)  # (H, W): where hiding the pixels lowers the score


def _saliency(model: nn.Module, batch: torch.Tensor, target: int) -> torch.Tensor:
    from captum.attr import Saliency

    pixels = batch.clone().requires_grad_()  # asked for here, so captum need not warn that it set it
    gradients = Saliency(model).attribute(pixels, target=target, abs=True)  # (1, 3, H, W)
    return gradients[0].amax(dim=0)  # (H, W)


PixelMethod = Callable[[nn.Module, torch.Tensor, int], torch.Tensor]
PIXEL_METHODS: dict[str, PixelMethod] = {"ig": _integrated_gradients, "occlusion": _occlusion,
                                         "saliency": _saliency}


# --- shared steps -------------------------------------------------------------------------------

def scale_to_unit(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A non-negative map divided by its maximum, as float32 (all zeros stay zeros)."""
    array = np.nan_to_num(np.asarray(values, dtype=np.float32)).clip(min=0)
    peak = float(array.max()) if array.size else 0.0
    return array / peak if peak > 0 else np.zeros_like(array)


def class_index(loaded: LoadedModel, target: int | str | None) -> int | None:
    """A class index from an index, its text or a label ("tabby" matches "tabby, tabby cat");
    None stays None (the predicted class, known after the forward pass)."""
    count = len(loaded.labels)
    if target is None:
        return None
    if isinstance(target, str) and target.strip().lstrip("-").isdigit():
        target = int(target)
    if isinstance(target, int):
        if not 0 <= target < count:
            raise AttributionError(f"Class {target} does not exist: {loaded.name} has classes 0 to {count - 1}.")
        return target
    wanted = target.strip().lower()
    for index, label in enumerate(loaded.labels):
        if wanted == label.lower() or wanted in (part.strip().lower() for part in label.split(",")):
            return index
    raise AttributionError(f"{loaded.name} has no class called '{target}'; give a class index "
                           f"(0 to {count - 1}) or one of its class names.")


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise AttributionError(f"Unknown attribution method '{method}'; use one of {', '.join(METHODS)}.")
    return method


def attribute(loaded: LoadedModel, image: Image.Image, method: str = "gradcam", layer: str | None = None,
              target: int | str | None = None) -> AttributionResult:
    """Explain one class of `image` (default: the predicted one) with `method`.

    `layer` names a stage for the CAM methods (default: `default_cam_layer`); the other methods work
    on the pixels and refuse a layer. The map comes back at the model's input resolution in [0, 1].
    """
    _check_method(method)
    if method in CAM_METHODS:
        layer = _check_layer(loaded.name, layer or default_cam_layer(loaded.name))
    elif layer:
        raise AttributionError(f"Only the CAM methods read a layer; {METHOD_TITLES[method]} works on the "
                               f"pixels, so leave the layer out.")
    index = class_index(loaded, target)
    start = time.perf_counter()
    batch = preprocess(image, loaded.data_config)  # (1, 3, H, W)
    model = loaded.model
    with loaded.lock:
        if method in CAM_METHODS:  # one forward pass gives the map and the top classes
            with torch.enable_grad(), CamLayer(model, get_spec(loaded.name).layout, layer) as module:
                if method == "gradcam":
                    heat, logits = _gradcam(model, batch, index, module)
                else:
                    heat, logits = _library_cam(model, batch, index, module, method)
        else:
            with torch.inference_mode():
                logits = model(batch)  # (1, classes)
            index = int(logits.argmax(dim=-1)[0]) if index is None else index
            with torch.enable_grad():
                heat = PIXEL_METHODS[method](model, batch, index)
        model.zero_grad(set_to_none=True)  # captum leaves no gradients, but a shared model must stay clean
    index = int(logits.argmax(dim=-1)[0]) if index is None else index
    return AttributionResult(loaded.name, loaded.weights, method, layer, index, loaded.labels[index],
                             scale_to_unit(heat.detach()), input_image(batch, loaded.data_config),
                             top_classes(logits, loaded.labels, TOP_K), time.perf_counter() - start)


# --- display ------------------------------------------------------------------------------------

# A perceptually ordered dark-to-bright ramp (close to matplotlib's "inferno"), as (position, RGB).
HEAT_RAMP = ((0.0, (0, 0, 4)), (0.25, (87, 16, 110)), (0.5, (188, 55, 84)), (0.75, (249, 142, 9)),
             (1.0, (252, 255, 164)))


def colorize(heat: np.ndarray) -> np.ndarray:
    """A [0, 1] (H, W) map as (H, W, 3) uint8 colors along `HEAT_RAMP`."""
    positions = [stop for stop, _ in HEAT_RAMP]
    channels = [np.interp(heat, positions, [color[c] for _, color in HEAT_RAMP]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def overlay(result: AttributionResult, alpha: float = 0.5) -> np.ndarray:
    """The map blended over the image the model saw, (H, W, 3) uint8; the heat is stronger where the
    map is higher, so cold regions show the image nearly as it is."""
    heat = result.map[..., None]  # (H, W, 1)
    weight = alpha * (0.3 + 0.7 * heat)  # never fully hide the image
    blended = (1 - weight) * result.image + weight * colorize(result.map)
    return blended.round().clip(0, 255).astype(np.uint8)
