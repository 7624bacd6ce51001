"""Depthwise filters, stem filters and stage activations as arrays (no drawing here).

Depthwise convolutions are found by what they are, not by name: an `nn.Conv2d` whose `groups`
equals its `in_channels` (more than one), i.e. one kxk filter per channel. They are grouped by the
stage that holds them (the model's `StageLayout`), so the same code reads timm's `conv_dw`, the
roadmap's `dwconv` and the bundled model's filters.

- `depthwise_kernels`: the kxk kernels of one block, optionally ordered by norm;
- `distance_profiles`: per stage, mean |weight| against distance from the kernel's center, which
  shows how much of a 7x7 kernel a trained model uses;
- `stem_filters`: the first convolution on the RGB image (4x4 patchify or ResNet's 7x7) as tiles;
- `stage_activations`: the feature maps every stage gives for one image, the most active channels.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch
from PIL import Image
from torch import nn

from explorer.inference import preprocess
from explorer.weights import LoadedModel
from explorer.zoo import ExplorerError, StageLayout, build_model, get_spec, model_names, spatial_layout

TOP_CHANNELS = 8  # channels shown per stage in the activation grid
RGB = 3


class NoDepthwiseError(ExplorerError):
    """The model has no depthwise convolutions to show."""


@dataclass(frozen=True)
class DepthwiseLayer:
    """Where one depthwise convolution sits."""

    name: str  # module name, e.g. "stages.2.blocks.4.conv_dw"
    stage: int  # 0-based index into the layout's stages
    block: int  # 0-based block index inside its stage


@dataclass(frozen=True)
class DepthwiseKernels:
    """The kxk kernels of one depthwise conv, one per channel, in display order."""

    layer: DepthwiseLayer
    weights: np.ndarray  # (C, k, k) float32, in display order
    channels: np.ndarray  # (C,) int: the channel index of each kernel shown
    norms: np.ndarray  # (C,) float32: L2 norm of each kernel shown
    sorted_by_norm: bool

    @property
    def kernel_size(self) -> int:
        return int(self.weights.shape[-1])


@dataclass(frozen=True)
class DistanceProfile:
    """Mean |weight| at each distance from the kernel's center, over all depthwise kernels of a stage."""

    stage: int  # 0-based stage index
    kernel_size: int
    distances: np.ndarray  # (D,) float: distinct Euclidean distances from the center, ascending
    mean_abs: np.ndarray  # (D,) float: mean |weight| of the taps at that distance
    kernels: int  # how many kernels were averaged


@dataclass(frozen=True)
class StemFilters:
    """The first convolution on the image: its filters as RGB tiles."""

    model: str  # registry name
    weights_label: str  # which weights, as `LoadedModel.weights` says
    layer: str  # module name of the conv
    weights: np.ndarray  # (O, 3, k, k) float32
    tiles: np.ndarray  # (O, k, k, 3) uint8: each filter scaled so that 0 is mid-grey
    stride: int


@dataclass(frozen=True)
class StageActivations:
    """One stage's output for one image, with its most active channels."""

    stage: int  # 0-based stage index
    module: str  # module name of the stage
    shape: tuple[int, int, int, int]  # (N, C, H, W) of the stage output (Swin's NHWC made NCHW)
    channels: tuple[int, ...]  # the most active channels, most active first
    maps: np.ndarray  # (len(channels), H, W) float32
    mean_abs: np.ndarray  # (len(channels),) mean |activation| of each shown channel (its ranking)


# --- depthwise convolutions ---------------------------------------------------------------------

def is_depthwise(module: nn.Module) -> bool:
    """One filter per input channel: an nn.Conv2d with groups == in_channels > 1."""
    return isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1


def _block_index(name: str, stage: str, layout: StageLayout) -> int:
    """The block a module belongs to, from its name: `STAGE.BLOCKS.j.…` -> j (0 if it is outside them)."""
    container = f"{stage}.{layout.blocks}." if layout.blocks else f"{stage}."
    rest = name[len(container):] if name.startswith(container) else ""
    head = rest.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def find_depthwise(model: nn.Module, layout: StageLayout) -> list[DepthwiseLayer]:
    """Every depthwise conv inside the stages, in stage and block order."""
    found = []
    for stage_index, stage in enumerate(layout.stages):
        for name, module in model.get_submodule(stage).named_modules(prefix=stage):
            if is_depthwise(module):
                found.append(DepthwiseLayer(name, stage_index, _block_index(name, stage, layout)))
    return found


_DEPTHWISE_BY_ARCH: dict[tuple[str, str, str], bool] = {}  # (family, arch, roadmap step) -> has depthwise convs


def has_depthwise(name: str) -> bool:
    """Whether a registry model has depthwise convs. Built on the meta device (nothing allocated),
    once per (family, arch, step): names that differ only by head, input size or regime share the answer."""
    spec = get_spec(name)
    key = (spec.family, spec.arch, spec.step)
    if key not in _DEPTHWISE_BY_ARCH:
        model = build_model(name, device="meta")
        _DEPTHWISE_BY_ARCH[key] = any(is_depthwise(module) for module in model.modules())
    return _DEPTHWISE_BY_ARCH[key]


def depthwise_models() -> list[str]:
    """Registry names of every model with depthwise convolutions, in registry order."""
    return [name for name in model_names() if has_depthwise(name)]


def _layout(loaded: LoadedModel) -> StageLayout:
    return spatial_layout(loaded.name)


def depthwise_blocks(loaded: LoadedModel) -> dict[int, list[int]]:
    """Stage index -> the block indices that hold a depthwise conv (for the stage and block pickers)."""
    blocks: dict[int, list[int]] = {}
    for layer in find_depthwise(loaded.model, _layout(loaded)):
        blocks.setdefault(layer.stage, []).append(layer.block)
    if not blocks:
        raise NoDepthwiseError(
            f"{loaded.name} has no depthwise convolutions; pick a ConvNeXt, the bundled model or a "
            f"roadmap step from 'depthwise' on.")
    return blocks


def depthwise_kernels(loaded: LoadedModel, stage: int, block: int, sort_by_norm: bool = False) -> DepthwiseKernels:
    """The kernels of the depthwise conv in `block` of `stage` (0-based), strongest first if asked."""
    layers = find_depthwise(loaded.model, _layout(loaded))
    match = [layer for layer in layers if layer.stage == stage and layer.block == block]
    if not match:
        where = ", ".join(f"stage {s + 1}: blocks 1-{len(b)}" for s, b in depthwise_blocks(loaded).items())
        raise ExplorerError(f"{loaded.name} has no depthwise conv in stage {stage + 1}, block {block + 1}; "
                            f"it has them in {where}.")
    conv = loaded.model.get_submodule(match[0].name)
    weights = conv.weight.detach().float().cpu().numpy()[:, 0]  # (C, 1, k, k) -> (C, k, k)
    norms = np.sqrt((weights ** 2).sum(axis=(1, 2)))
    order = np.argsort(-norms, kind="stable") if sort_by_norm else np.arange(len(weights))
    return DepthwiseKernels(match[0], weights[order], order, norms[order].astype(np.float32), sort_by_norm)


def distance_profile(kernels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distances, mean |weight|) for a (C, k, k) stack: taps grouped by Euclidean distance to the center."""
    size = kernels.shape[-1]
    offsets = np.arange(size) - (size - 1) / 2  # whole or half taps: their squares are exact
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2  # (k, k)
    magnitude = np.abs(kernels).mean(axis=0)  # (k, k): mean over kernels first, same taps per distance
    rings = np.unique(squared)
    return np.sqrt(rings), np.array([magnitude[squared == ring].mean() for ring in rings])


def distance_profiles(loaded: LoadedModel) -> list[DistanceProfile]:
    """One profile per stage, over all depthwise kernels of the stage."""
    layers = find_depthwise(loaded.model, _layout(loaded))
    if not layers:
        depthwise_blocks(loaded)  # raises the message
    profiles = []
    for stage in sorted({layer.stage for layer in layers}):
        stacks = [loaded.model.get_submodule(layer.name).weight.detach().float().cpu().numpy()[:, 0]
                  for layer in layers if layer.stage == stage]
        sizes = {stack.shape[-1] for stack in stacks}
        if len(sizes) != 1:  # not in any registry model; averaging needs one kernel size per stage
            continue
        stacked = np.concatenate(stacks)  # (all channels of the stage, k, k)
        distances, mean_abs = distance_profile(stacked)
        profiles.append(DistanceProfile(stage, sizes.pop(), distances, mean_abs, len(stacked)))
    return profiles


# --- the stem ---------------------------------------------------------------------------------

def _first_rgb_conv(model: nn.Module, layout: StageLayout) -> tuple[str, nn.Conv2d]:
    for stem in layout.stem:
        for name, module in model.get_submodule(stem).named_modules(prefix=stem):
            if isinstance(module, nn.Conv2d) and module.in_channels == RGB:
                return name, module
    raise ExplorerError("This model's stem has no convolution on the RGB image to show.")


def filters_as_tiles(weights: np.ndarray) -> np.ndarray:
    """(O, 3, k, k) filters -> (O, k, k, 3) uint8 tiles; each filter scaled on its own, 0 -> mid-grey."""
    scale = np.abs(weights).max(axis=(1, 2, 3), keepdims=True)
    scale[scale == 0] = 1.0
    unit = weights / (2 * scale) + 0.5  # [-max, max] -> [0, 1]
    return (unit.transpose(0, 2, 3, 1) * 255).round().clip(0, 255).astype(np.uint8)


def stem_filters(loaded: LoadedModel) -> StemFilters:
    """The stem's convolution on the image, as RGB tiles."""
    name, conv = _first_rgb_conv(loaded.model, _layout(loaded))
    weights = conv.weight.detach().float().cpu().numpy()
    return StemFilters(loaded.name, loaded.weights, name, weights, filters_as_tiles(weights), int(conv.stride[0]))


# --- activations --------------------------------------------------------------------------------

class StageRecorder:
    """Forward hooks that keep each stage's output (as NCHW) while the context is open."""

    def __init__(self, model: nn.Module, layout: StageLayout) -> None:
        self.model, self.layout = model, layout
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _keep(self, stage: str):
        def hook(_module: nn.Module, _inputs, output) -> None:
            out = output[0] if isinstance(output, tuple) else output
            if self.layout.channels_last:
                out = out.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
            self.outputs[stage] = out.detach()
        return hook

    def __enter__(self) -> StageRecorder:
        self._handles = [self.model.get_submodule(stage).register_forward_hook(self._keep(stage))
                         for stage in self.layout.stages]
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def top_channels(features: torch.Tensor, count: int) -> tuple[list[int], torch.Tensor]:
    """The `count` channels of a (C, H, W) map with the largest mean |activation|, and those means."""
    strength = features.abs().mean(dim=(1, 2))  # (C,)
    values, indices = strength.topk(min(count, len(strength)))
    return indices.tolist(), values


def stage_activations(loaded: LoadedModel, image: Image.Image, top: int = TOP_CHANNELS) -> list[StageActivations]:
    """Every stage's feature maps for `image` (preprocessed as for prediction), most active channels first."""
    layout = _layout(loaded)
    batch = preprocess(image, loaded.data_config)  # (1, 3, H, W)
    with loaded.lock, StageRecorder(loaded.model, layout) as recorder, torch.inference_mode():
        loaded.model(batch)
    result = []
    for index, stage in enumerate(layout.stages):
        features = recorder.outputs[stage]  # (1, C, H, W)
        channels, strength = top_channels(features[0], top)
        result.append(StageActivations(index, stage, tuple(features.shape), tuple(channels),
                                       features[0, channels].float().numpy(), strength.float().numpy()))
    return result
