"""Residual blocks side by side at one width and resolution: what the paper's Figures 3 and 4 compare,
and the two blocks around it, ViT's (the isotropic comparison) and ConvNeXt V2's.

Every block takes and returns C channels at H x W (C is the width of the residual stream) so that
their costs can be read against each other:

    ResNet bottleneck     1x1 C -> C/4, 3x3 C/4, 1x1 C/4 -> C; BN after each, 3 ReLUs  (roadmap `resnet50`)
    ResNeXt block         the same with a depthwise 3x3, as in the paper's Figure 3a  (roadmap `width`)
    inverted bottleneck   1x1 C -> 4C, depthwise 3x3 on 4C, 1x1 4C -> C                (roadmap `inverted`)
    Swin block            LN, 7x7-window self-attention, LN, MLP C -> 4C -> C, GELU    (timm)
    ConvNeXt block        7x7 depthwise, LN, 1x1 C -> 4C, GELU, 1x1 4C -> C, gamma     (roadmap `convnext_t`)
    ConvNeXt V2 block     the same with GRN after the GELU and no gamma                (timm)
    ViT block             LN, global self-attention, LN, MLP C -> 4C -> C, GELU          (timm)

The roadmap's blocks are built by `explorer.blocks.Block` from the steps' own configs, the others by timm.
All counting runs on the meta device, as in `explorer.analysis`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.analysis import LayerRow, of_kind, paper_gflops, trace_layers
from explorer.blocks import EXPANSION, Block
from explorer.figure_cache import persisted
from explorer.roadmap import get_step
from explorer.zoo import ExplorerError

SWIN_HEAD_DIM = 32  # channels per attention head in every Swin model
VIT_HEAD_DIM = 64  # channels per attention head in ViT-S, -B and -L
SWIN_WINDOW = 7
STAGES = {1: (96, 56), 2: (192, 28), 3: (384, 14), 4: (768, 7)}  # ConvNeXt-T / Swin-T: stage -> (C, H)


@dataclass(frozen=True)
class BlockDesign:
    """One of the compared blocks and how to build it at width C."""

    key: str
    title: str
    origin: str  # where the block comes from, for the reader
    build: Callable[[int, int], nn.Module]  # (C, H) -> the block
    layout: str = "NCHW"  # what it takes: (N, C, H, W), "NHWC" (N, H, W, C), or "tokens" (N, H*W, C)


def _roadmap_block(step_id: str) -> Callable[[int, int], nn.Module]:
    """A block of a roadmap step whose input and output have C channels."""
    def build(width: int, _resolution: int) -> nn.Module:
        cfg = get_step(step_id).config
        return Block(cfg, width, width if cfg.inverted else width // EXPANSION)  # bottlenecks are 4x wider outside
    return build


def _swin_block(width: int, resolution: int) -> nn.Module:
    from timm.models.swin_transformer import SwinTransformerBlock  # timm costs a second to import

    return SwinTransformerBlock(dim=width, input_resolution=(resolution, resolution),
                                num_heads=width // SWIN_HEAD_DIM, window_size=SWIN_WINDOW)


def _convnextv2_block(width: int, _resolution: int) -> nn.Module:
    from timm.models.convnext import ConvNeXtBlock

    return ConvNeXtBlock(width, use_grn=True, ls_init_value=None)  # as timm's convnextv2_* build it


def _vit_block(width: int, _resolution: int) -> nn.Module:
    from timm.models.vision_transformer import Block as VitBlock

    return VitBlock(width, num_heads=max(1, width // VIT_HEAD_DIM), mlp_ratio=EXPANSION, qkv_bias=True)


DESIGNS: tuple[BlockDesign, ...] = (
    BlockDesign("resnet", "ResNet bottleneck", "roadmap step resnet50 (ResNet-50's block)",
                _roadmap_block("resnet50")),
    BlockDesign("resnext", "ResNeXt block", "roadmap step width (depthwise 3x3, the paper's Figure 3a)",
                _roadmap_block("width")),
    BlockDesign("inverted", "Inverted bottleneck", "roadmap step inverted (the paper's Figure 3b)",
                _roadmap_block("inverted")),
    BlockDesign("swin", "Swin block", "timm SwinTransformerBlock (W-MSA, window 7)", _swin_block, "NHWC"),
    BlockDesign("convnext", "ConvNeXt block", "roadmap step convnext_t (ConvNeXt-T's block)",
                _roadmap_block("convnext_t")),
    BlockDesign("vit", "ViT block", "timm vision_transformer.Block (global attention, 64 channels a head)",
                _vit_block, "tokens"),
    BlockDesign("convnextv2", "ConvNeXt V2 block", "timm ConvNeXtBlock(use_grn=True), as in convnextv2_*",
                _convnextv2_block),
)


@dataclass(frozen=True)
class BlockReport:
    """One block at one width and resolution: its layers and what sets it apart."""

    key: str
    title: str
    origin: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerRow, ...]
    params: int
    gflops: float  # paper convention: multiply-accumulates / 1e9, for batch 1
    norms: tuple[str, ...]  # the norm layers' types, in forward order
    activations: tuple[str, ...]  # the activation layers' types (attention's internal softmax is not a layer)
    spatial: str  # what mixes information across space, e.g. "7x7 depthwise conv"
    expansion: float  # inner width of the pointwise layers / C (0.25: a bottleneck, 4: inverted)


def _spatial(block: nn.Module) -> str:
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size[0] > 1:
            k = module.kernel_size[0]
            return f"{k}x{k} {'depthwise ' if module.groups == module.in_channels else ''}conv"
    window = getattr(block, "window_size", None)
    if window:
        return f"{window[0]}x{window[1]} window attention"
    return "global self-attention" if hasattr(block, "attn") else "none"


def _expansion(block: nn.Module, width: int) -> float:
    """The inner width of the 1x1 convs / linear layers (those not in attention) relative to C."""
    inner = [m.out_features if isinstance(m, nn.Linear) else m.out_channels
             for name, m in block.named_modules()
             if "attn" not in name and (isinstance(m, nn.Linear)
                                        or (isinstance(m, nn.Conv2d) and m.kernel_size[0] == 1))]
    inner = [d for d in inner if d != width] or [width]
    return max(inner) / width if max(inner) > width else min(inner) / width


def check_width(width: int, resolution: int) -> None:
    if width < SWIN_HEAD_DIM or width % SWIN_HEAD_DIM:
        raise ExplorerError(f"The width C must be a multiple of {SWIN_HEAD_DIM} (Swin's head size), not {width}.")
    if resolution < SWIN_WINDOW or resolution % SWIN_WINDOW:
        raise ExplorerError(f"The resolution must be a multiple of {SWIN_WINDOW} (Swin's window), not {resolution}.")


@persisted
def report(key: str, width: int, resolution: int) -> BlockReport:
    """Build one design on the meta device at C = `width`, H = W = `resolution` and count it."""
    check_width(width, resolution)
    design = next(d for d in DESIGNS if d.key == key)
    with torch.device("meta"):
        block = design.build(width, resolution).eval()
    shape = {"NCHW": (1, width, resolution, resolution), "NHWC": (1, resolution, resolution, width),
             "tokens": (1, resolution * resolution, width)}[design.layout]
    x = torch.empty(shape, device="meta")
    layers = trace_layers(block, lambda: block(x))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        block(x)
    return BlockReport(
        key=design.key, title=design.title, origin=design.origin, input_shape=shape, layers=tuple(layers),
        params=sum(p.numel() for p in block.parameters()), gflops=paper_gflops(counter.get_total_flops()),
        norms=of_kind(layers, "norm"), activations=of_kind(layers, "act"),
        spatial=_spatial(block), expansion=_expansion(block, width))


def compare(width: int, resolution: int) -> list[BlockReport]:
    """Every design at the same width and resolution, in the order of `DESIGNS`."""
    return [report(design.key, width, resolution) for design in DESIGNS]
