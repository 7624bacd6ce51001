"""The Blocks tab's numbers against counts written out by hand, and against timm's own blocks."""
from __future__ import annotations

import pytest

from explorer.compare import STAGES, compare, report
from explorer.zoo import ExplorerError

WINDOW_TOKENS = 7 * 7
REL_POS_TABLE = (2 * 7 - 1) ** 2  # Swin's relative position bias: one entry per offset and head


def expected(key: str, c: int, h: int) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of one block, written out layer by layer."""
    hw = h * h
    if key in ("resnet", "resnext"):
        m = c // 4  # a bottleneck is 4x narrower inside
        spatial = 9 * m * m if key == "resnet" else 9 * m  # dense 3x3 or depthwise 3x3, no bias before BN
        bn = 2 * (m + m + c)
        return c * m + spatial + m * c + bn, hw * (c * m + spatial + m * c)
    if key == "inverted":
        e = 4 * c
        return c * e + 9 * e + e * c + 2 * (e + e + c), hw * (2 * c * e + 9 * e)
    if key == "convnext":
        params = (49 * c + c) + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c) + c  # dw, LN, fc1, fc2, gamma
        return params, hw * (49 * c + 8 * c * c)
    if key == "swin":
        heads = c // 32
        params = 2 * c + (3 * c * c + 3 * c) + (c * c + c) + REL_POS_TABLE * heads + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c)
        # the Swin paper's count: 4hwC^2 (qkv, proj) + 2M^2hwC (QK^T, AV) + 8hwC^2 (MLP)
        return params, 12 * hw * c * c + 2 * WINDOW_TOKENS * hw * c
    if key == "convnextv2":  # GRN's gamma and beta on the 4C hidden channels instead of layer scale
        params = (49 * c + c) + 2 * c + (c * 4 * c + 4 * c) + 2 * 4 * c + (4 * c * c + c)
        return params, hw * (49 * c + 8 * c * c)
    if key == "vit":  # global attention: every one of the hw tokens attends to all hw
        params = 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c)
        return params, 12 * hw * c * c + 2 * hw * hw * c
    raise KeyError(key)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_block_matches_a_count_by_hand(stage):
    c, h = STAGES[stage]
    for block in compare(c, h):
        params, macs = expected(block.key, c, h)
        assert block.params == params, block.title
        assert block.gflops == pytest.approx(macs / 1e9, rel=1e-12), block.title


def test_the_convnext_block_has_timms_parameter_count():
    from timm.models.convnext import ConvNeXtBlock

    timm_block = ConvNeXtBlock(96)
    assert report("convnext", 96, 56).params == sum(p.numel() for p in timm_block.parameters())


def test_the_differences_are_the_papers_figure_4():
    blocks = {b.key: b for b in compare(96, 56)}
    # ResNet: 3 BN, 3 ReLU; Swin: 2 LN, 1 GELU; ConvNeXt: 1 LN, 1 GELU (the paper's Figure 4)
    assert blocks["resnet"].norms == ("BatchNorm2d",) * 3 and blocks["resnet"].activations == ("ReLU",) * 3
    assert blocks["swin"].norms == ("LayerNorm",) * 2 and blocks["swin"].activations == ("GELU",)
    assert blocks["convnext"].norms == ("LayerNorm",) and blocks["convnext"].activations == ("GELU",)
    assert blocks["convnext"].spatial == "7x7 depthwise conv"
    assert blocks["resnet"].spatial == "3x3 conv" and blocks["resnext"].spatial == "3x3 depthwise conv"
    assert blocks["swin"].spatial == "7x7 window attention"
    assert [blocks[k].expansion for k in ("resnet", "resnext", "inverted", "swin", "convnext")] == [0.25, 0.25, 4, 4, 4]
    assert all(b.layers[-1].output_shape[-1] in (96, 56) for b in blocks.values())  # C (NHWC) or W (NCHW)


def test_widths_swin_cannot_take_are_refused():
    with pytest.raises(ExplorerError, match="multiple of 32"):
        compare(100, 56)
    with pytest.raises(ExplorerError, match="multiple of 7"):
        compare(96, 50)
