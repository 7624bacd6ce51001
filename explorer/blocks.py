"""The networks of the roadmap, hand-written in the paper's vocabulary.

Every network from ResNet-50 to ConvNeXt-T is a stem, four stages of residual blocks and a head.
What differs from one step of the roadmap to the next is written down in one `NetConfig`, and one
`Block` class builds every block of every step from it:

    ResNet bottleneck    pwconv1 1x1 4C->C, conv 3x3 C->C, pwconv2 1x1 C->4C, BN after each, ReLUs
    inverted bottleneck  pwconv1 1x1 C->4C, dwconv 3x3 on 4C, pwconv2 1x1 4C->C
    ConvNeXt block       dwconv 7x7 on C, LN, pwconv1 C->4C, GELU, pwconv2 4C->C, gamma

The classes go from part to whole: the config, norms and activations, the block and its shortcut,
the layers around the blocks (stems, downsampling, head), then `Stage` and `Net`.

Tensors are (N, C, H, W) between layers. A block with LayerNorm runs its pointwise layers
channels-last, (N, H, W, C), as the official code does: there LayerNorm normalizes the last
dimension and a 1x1 conv is an `nn.Linear`.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

EXPANSION = 4  # a bottleneck's outer width, or an inverted bottleneck's hidden width, in units of C
LN_EPS = 1e-6  # as in the official code and timm


@dataclass(frozen=True)
class NetConfig:
    """One network of the roadmap. Every field is a decision the paper revisits."""

    recipe: str = "original"  # how it is trained: "original" (ResNet's: 90 epochs, SGD) | "modern"
    #                           (300 epochs, AdamW, Mixup, ...); the network does not depend on it
    depths: tuple[int, int, int, int] = (3, 4, 6, 3)  # blocks per stage
    width: int = 64  # channels C of stage 1, doubled at each later stage; the stem outputs C
    stem: str = "resnet"  # "resnet": 7x7 stride-2 conv, norm, act, 3x3 stride-2 max pool
    #                       | "patchify": 4x4 stride-4 conv, norm
    depthwise: bool = False  # the spatial conv filters each channel on its own (groups = channels)
    inverted: bool = False  # False: 4C -> C -> 4C, narrow inside (bottleneck)
    #                         | True: C -> 4C -> C, wide inside (inverted bottleneck)
    dw_first: bool = False  # the spatial conv comes before the two 1x1 layers, not between them
    kernel_size: int = 3  # of the spatial conv
    act: str = "relu"  # "relu" | "gelu", everywhere
    acts: int = 3  # per block: 3 (after the first two layers and after the add) | 1 (after the middle layer)
    norm: str = "bn"  # "bn": BatchNorm | "ln": LayerNorm, everywhere
    norms: int = 3  # per block: 3 (after every layer) | 1 (after the spatial conv)
    downsample: str = "in_block"  # "in_block": the first block of stages 2-4 has stride 2 and a
    #                               strided 1x1 conv shortcut | "separate": a norm and a 2x2 stride-2
    #                               conv between stages, and a norm after global pooling
    layer_scale: float | None = None  # initial gamma, a learned per-channel scale on each block's
    #                                   residual branch; None: no gamma


ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) tensor: in the stem, shortcuts and downsampling."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = super().forward(x)
        return x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)


class Permute(nn.Module):
    """Reorders the dimensions: marks where a block switches between channels-first and -last."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


def make_norm(kind: str, dim: int, channels_last: bool = False) -> nn.Module:
    """BatchNorm, or LayerNorm over the last dimension (`channels_last`) or over dimension 1."""
    if kind == "bn":
        return nn.BatchNorm2d(dim)
    return nn.LayerNorm(dim, eps=LN_EPS) if channels_last else LayerNorm2d(dim, eps=LN_EPS)


def conv_bias(cfg: NetConfig, followed_by_norm: bool) -> bool:
    """A bias before a BatchNorm is cancelled by its mean, so ResNet leaves it out; ConvNeXt keeps all."""
    return not (followed_by_norm and cfg.norm == "bn")


def shortcut(cfg: NetConfig, in_dim: int, out_dim: int, stride: int) -> nn.Module:
    """Identity, or where the block changes the shape, a strided 1x1 conv and a norm (ResNet v1.5)."""
    if in_dim == out_dim and stride == 1:
        return nn.Identity()
    return nn.Sequential(OrderedDict(
        # (N, C_in, H, W) -> (N, C_out, H/stride, W/stride)
        conv=nn.Conv2d(in_dim, out_dim, 1, stride, bias=conv_bias(cfg, True)),
        norm=make_norm(cfg.norm, out_dim),
    ))


class Block(nn.Module):
    """A residual block: two 1x1 layers and one kxk spatial conv with their norms and activations,
    then layer scale, the shortcut and the add. `NetConfig` says which, in which order, how wide.

    The layers are registered in forward order, so printing a block
    reads like the paper's drawing of it. Names: `pwconv1`, `pwconv2` for the 1x1 layers, `conv` or
    `dwconv` for the spatial conv; `norm1..3` and `act1..3` counted by layer where every layer has
    one (`act3` follows the add), `norm` and `act` where the block has only one. These are the
    names of timm's ResNet and ConvNeXt after `roadmap.resnet_from_timm` / `convnext_from_timm`.

    `forward` reads the block by role instead: "the spatial conv's norm", "the first 1x1 layer's
    activation"; `part(role)` is the module that plays it, or an identity where this block has none.
    """

    def __init__(self, cfg: NetConfig, in_dim: int, dim: int, stride: int = 1) -> None:
        super().__init__()
        channels_last = cfg.norm == "ln"
        if channels_last and not cfg.dw_first:
            raise ValueError("A LayerNorm block runs channels-last after its spatial conv: put it first.")
        self.dw_first = cfg.dw_first
        hidden, self.out_dim = (EXPANSION * dim, dim) if cfg.inverted else (dim, EXPANSION * dim)
        spatial_dim = in_dim if cfg.dw_first else hidden
        spatial = "dwconv" if cfg.depthwise else "conv"
        order = (spatial, "pwconv1", "pwconv2") if cfg.dw_first else ("pwconv1", spatial, "pwconv2")
        role = {spatial: "spatial", "pwconv1": "pw1", "pwconv2": "pw2"}  # registered name -> role in forward
        widths = {spatial: (spatial_dim, spatial_dim), "pwconv1": (in_dim, hidden),
                  "pwconv2": (hidden, self.out_dim)}  # name -> (input, output) channels

        self._roles: dict[str, str] = {}  # role -> registered name, for the parts this block has
        for position, name in enumerate(order):
            d_in, d_out = widths[name]
            has_norm = cfg.norms == 3 or name == spatial  # "fewer norms" keeps the spatial conv's only
            # the last layer's activation comes after the add; "fewer activations" keeps the middle layer's only
            has_act = position == 1 or (position == 0 and cfg.acts == 3)
            if name == spatial:  # (N, C, H, W) -> (N, C, H/stride, W/stride)
                layer = nn.Conv2d(d_in, d_out, cfg.kernel_size, stride, cfg.kernel_size // 2,
                                  groups=d_in if cfg.depthwise else 1, bias=conv_bias(cfg, has_norm))
            elif channels_last:
                layer = nn.Linear(d_in, d_out)  # (N, H, W, d_in) -> (N, H, W, d_out)
            else:  # (N, d_in, H, W) -> (N, d_out, H, W)
                layer = nn.Conv2d(d_in, d_out, 1, bias=conv_bias(cfg, has_norm))
            self._add(name, layer, role[name])
            if channels_last and name == spatial:
                self._add("to_channels_last", Permute(0, 2, 3, 1), "to_channels_last")  # (N, C, H, W) -> (N, H, W, C)
            if has_norm:
                self._add("norm" if cfg.norms == 1 else f"norm{position + 1}",
                          make_norm(cfg.norm, d_out, channels_last), f"norm_{role[name]}")
            if has_act:
                self._add("act" if cfg.acts == 1 else f"act{position + 1}", ACTS[cfg.act](), f"act_{role[name]}")
        if channels_last:
            self._add("to_channels_first", Permute(0, 3, 1, 2), "to_channels_first")  # (N, H, W, C) -> (N, C, H, W)

        self.gamma = (nn.Parameter(torch.full((self.out_dim,), cfg.layer_scale))
                      if cfg.layer_scale is not None else None)
        self.shortcut = shortcut(cfg, in_dim, self.out_dim, stride)
        self.act3 = ACTS[cfg.act]() if cfg.acts == 3 else None  # ResNet's activation after the add

    def _add(self, name: str, module: nn.Module, role: str) -> None:
        self.add_module(name, module)
        self._roles[role] = name

    def part(self, role: str) -> Callable[[Tensor], Tensor]:
        """The module playing `role` ("spatial", "pw1", "norm_spatial", "act_pw1", ...), or an identity."""
        return self._modules[self._roles[role]] if role in self._roles else _unchanged

    def forward(self, x: Tensor) -> Tensor:
        # Shapes: C_in -> C_out channels; H' = H / stride. C is the block's width, 4C its wide side.
        shortcut = self.shortcut(x)  # identity, or a strided 1x1 conv + norm: (N, C_in, H, W) -> (N, C_out, H', W')
        if self.dw_first:  # "moving up depthwise conv": mix space first, on the narrow C, as attention comes first
            x = self.part("spatial")(x)  # kxk conv: (N, C_in, H, W) -> (N, C_in, H', W')
            x = self.part("to_channels_last")(x)  # LayerNorm blocks: (N, C_in, H', W') -> (N, H', W', C_in)
            x = self.part("norm_spatial")(x)  # the one norm ConvNeXt keeps; same shape
            x = self.part("act_spatial")(x)  # gone with "fewer activations"; same shape
            x = self.part("pw1")(x)  # 1x1 C -> 4C: (N, C_in, H', W') -> (N, 4C, H', W'), channels-last alike
            x = self.part("norm_pw1")(x)  # gone with "fewer norms"; same shape
            x = self.part("act_pw1")(x)  # the one activation ConvNeXt keeps; same shape
            x = self.part("pw2")(x)  # 1x1 4C -> C: (N, 4C, H', W') -> (N, C_out, H', W'), channels-last alike
            x = self.part("norm_pw2")(x)  # gone with "fewer norms"; same shape
            x = self.part("to_channels_first")(x)  # LayerNorm blocks: (N, H', W', C_out) -> (N, C_out, H', W')
        else:  # ResNet's order, 1x1 - kxk - 1x1: a bottleneck (4C -> C -> 4C) or inverted (C -> 4C -> C)
            x = self.part("pw1")(x)  # 1x1: (N, C_in, H, W) -> (N, hidden, H, W)
            x = self.part("norm_pw1")(x)  # same shape
            x = self.part("act_pw1")(x)  # same shape
            x = self.part("spatial")(x)  # kxk conv, depthwise from "ResNeXt-ify": (N, hidden, H, W) -> (.., H', W')
            x = self.part("norm_spatial")(x)  # same shape
            x = self.part("act_spatial")(x)  # same shape
            x = self.part("pw2")(x)  # 1x1: (N, hidden, H', W') -> (N, C_out, H', W')
            x = self.part("norm_pw2")(x)  # same shape
        if self.gamma is not None:  # layer scale: one learned factor per channel of (N, C_out, H', W')
            x = self.gamma[:, None, None] * x
        x = x + shortcut  # the residual add: (N, C_out, H', W')
        if self.act3 is not None:  # ResNet's activation after the add; gone with "fewer activations"
            x = self.act3(x)
        return x


def _unchanged(x: Tensor) -> Tensor:
    """The part a block does not have."""
    return x


def resnet_stem(cfg: NetConfig) -> nn.Sequential:
    """ResNet's stem: a 7x7 stride-2 conv, a norm, an activation and a 3x3 stride-2 max pool."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, cfg.width, 7, 2, 3, bias=conv_bias(cfg, True)),  # (N, 3, H, W) -> (N, C, H/2, W/2)
        norm=make_norm(cfg.norm, cfg.width),
        act=ACTS[cfg.act](),
        pool=nn.MaxPool2d(3, 2, 1),  # (N, C, H/2, W/2) -> (N, C, H/4, W/4)
    ))


def patchify_stem(cfg: NetConfig) -> nn.Sequential:
    """A 4x4 stride-4 conv (one vector per non-overlapping 4x4 patch, as in Swin) and a norm."""
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, cfg.width, 4, 4, bias=conv_bias(cfg, True)),  # (N, 3, H, W) -> (N, C, H/4, W/4)
        norm=make_norm(cfg.norm, cfg.width),
    ))


STEMS = {"resnet": resnet_stem, "patchify": patchify_stem}


def downsampling_layer(cfg: NetConfig, in_dim: int, out_dim: int) -> nn.Sequential:
    """ConvNeXt's layer between stages: a norm, then a 2x2 stride-2 conv."""
    return nn.Sequential(OrderedDict(
        norm=make_norm(cfg.norm, in_dim),
        conv=nn.Conv2d(in_dim, out_dim, 2, 2),  # (N, C, H, W) -> (N, 2C, H/2, W/2)
    ))


class Head(nn.Module):
    """Global average pooling, a norm (Identity in ResNet) and the classifier."""

    def __init__(self, dim: int, num_classes: int, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.mean((-2, -1))  # (N, C, H, W) -> (N, C)
        return self.fc(self.norm(x))  # (N, C) -> (N, classes)


class Stage(nn.Module):
    """A downsampling layer (Identity unless downsampling is separate) and `depth` blocks at width `dim`."""

    def __init__(self, cfg: NetConfig, in_dim: int, dim: int, depth: int, first: bool) -> None:
        super().__init__()
        separate = cfg.downsample == "separate" and not first
        self.downsample = downsampling_layer(cfg, in_dim, dim) if separate else nn.Identity()
        in_dim = dim if separate else in_dim
        stride = 1 if first or separate else 2  # in-block downsampling: the first block strides
        blocks = [Block(cfg, in_dim, dim, stride)]
        blocks += [Block(cfg, blocks[0].out_dim, dim) for _ in range(depth - 1)]
        self.blocks = nn.Sequential(*blocks)
        self.out_dim = blocks[0].out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(self.downsample(x))  # (N, C_in, H, W) -> (N, C_out, H/2, W/2) (H, W in stage 1)


class Net(nn.Module):
    """A network of the roadmap: stem, four stages, head."""

    def __init__(self, cfg: NetConfig, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = STEMS[cfg.stem](cfg)
        stages, in_dim = [], cfg.width
        for i, depth in enumerate(cfg.depths):
            stages.append(Stage(cfg, in_dim, cfg.width * 2**i, depth, first=i == 0))
            in_dim = stages[-1].out_dim
        self.stages = nn.Sequential(*stages)
        head_norm = (make_norm(cfg.norm, in_dim, channels_last=True)  # on the pooled (N, C)
                     if cfg.downsample == "separate" else nn.Identity())
        self.head = Head(in_dim, num_classes, head_norm)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (N, 3, H, W) -> (N, C, H/4, W/4)
        x = self.stages(x)  # -> (N, C_out, H/32, W/32)
        return self.head(x)  # -> (N, classes)
