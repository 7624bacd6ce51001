"""The isotropic ConvNeXt of the paper's Section 3.3: ConvNeXt blocks at one width and one resolution,
laid out like ViT, to compare the block itself with self-attention.

    stem    16x16 stride-16 conv, 3 -> C                (N, 3, 224, 224) -> (N, C, 14, 14)
    blocks  `depth` ConvNeXt blocks at width C          (N, C, 14, 14) all the way
    head    global average pool, LayerNorm, linear      (N, C, 14, 14) -> (N, classes)

There is no downsampling after the stem, no norm after it and, as in the official models
(`layer_scale_init_value=0`), no layer scale. The block is the roadmap's last one (ConvNeXt-T's,
`explorer.blocks.Block`) without its gamma.

Module names follow the official `models/convnext_isotropic.py` (facebookresearch/ConvNeXt): `stem`,
`blocks.N.{dwconv,norm,pwconv1,pwconv2}`, `norm`, `head`. Its checkpoints therefore load with no
renaming, through `explorer.weights.load_checkpoint` (which unwraps their `"model"` entry).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from torch import Tensor, nn

from explorer.blocks import LN_EPS, Block

PATCH = 16  # side of the stem's patches, as in ViT-S/16, -B/16, -L/16


@dataclass(frozen=True)
class IsotropicConfig:
    label: str  # the paper's name
    depth: int  # ConvNeXt blocks
    width: int  # channels C, the same in every block


ISOTROPIC: dict[str, IsotropicConfig] = {  # the official names, paired with ViT-S, -B and -L
    "convnext_isotropic_small": IsotropicConfig("ConvNeXt-S (iso.)", depth=18, width=384),
    "convnext_isotropic_base": IsotropicConfig("ConvNeXt-B (iso.)", depth=18, width=768),
    "convnext_isotropic_large": IsotropicConfig("ConvNeXt-L (iso.)", depth=36, width=1024),
}


class IsotropicConvNeXt(nn.Module):
    """Patchify stem, `depth` ConvNeXt blocks at one width, pooled norm and linear head."""

    def __init__(self, cfg: IsotropicConfig, num_classes: int = 1000) -> None:
        super().__init__()
        from explorer.roadmap import get_step  # the roadmap imports the zoo, which imports this module

        block = replace(get_step("convnext_t").config, layer_scale=None)
        self.stem = nn.Conv2d(3, cfg.width, PATCH, PATCH)
        self.blocks = nn.Sequential(*[Block(block, cfg.width, cfg.width) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width, eps=LN_EPS)
        self.head = nn.Linear(cfg.width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (N, 3, H, W) -> (N, C, H/16, W/16)
        x = self.blocks(x)  # (N, C, H/16, W/16), unchanged by every block
        x = x.mean((-2, -1))  # global average pooling: (N, C, h, w) -> (N, C)
        return self.head(self.norm(x))  # (N, C) -> (N, classes)


def build_isotropic(spec, _input_size: int) -> nn.Module:
    """The zoo's builder for `spec.arch` in `ISOTROPIC` (any input size: nothing depends on it)."""
    return IsotropicConvNeXt(ISOTROPIC[spec.arch], spec.num_classes)

