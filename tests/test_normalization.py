"""The normalization lab: the official channels_first LayerNorm (written out again here, from the
ConvNeXt repository's code) against `nn.LayerNorm` after a permute, BatchNorm's and LayerNorm's
statistics against torch's own functions, on a real stage output of the bundled model, and BN -> LN
counted by every tool."""
from __future__ import annotations

import gradio as gr
import pytest
import torch
import torch.nn.functional as F

from explorer.inference import open_image
from explorer.normalization import (EPS, bn_to_ln_counts, channels_first_layer_norm, compare_norms,
                                    permuted_layer_norm)
from explorer.weights import load
from explorer.report import bn_to_ln_text
from explorer.zoo import SHAPES_NET, ExplorerError
from tests.conftest import ROOT

EXAMPLE = ROOT / "assets" / "examples" / "star-0.png"


def official_layer_norm(x, weight, bias, eps):
    """facebookresearch/ConvNeXt models/convnext.py, LayerNorm.forward with data_format="channels_first"."""
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + eps)
    return weight[:, None, None] * x + bias[:, None, None]


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 96, 56, 56), (4, 768, 7, 7), (3, 16, 1, 1), (1, 1, 4, 4)])
def test_channels_first_equals_nn_layer_norm_after_a_permute(shape):
    generator = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=generator) * 3 + 1
    weight, bias = torch.randn(shape[1], generator=generator), torch.randn(shape[1], generator=generator)
    expected = official_layer_norm(x, weight, bias, EPS)
    torch_module = torch.nn.LayerNorm(shape[1], eps=EPS)
    with torch.no_grad():
        torch_module.weight.copy_(weight)
        torch_module.bias.copy_(bias)
        by_module = torch_module(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    for got in (permuted_layer_norm(x, weight, bias), channels_first_layer_norm(x, weight, bias), by_module):
        assert got.shape == x.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # and normalizing the last dimension instead (what nn.LayerNorm does without the permute) is not the same
    assert not torch.allclose(F.layer_norm(x, x.shape[-1:], eps=EPS), official_layer_norm(x, torch.ones(shape[1]),
                                                                                       torch.zeros(shape[1]), EPS))


@pytest.fixture(scope="module")
def stage_one():
    return compare_norms(load("convnext_shapes"), open_image(EXAMPLE), 0)


def test_statistics_of_a_real_stage_output_agree_with_torch(stage_one):
    c = stage_one
    side = SHAPES_NET.input_size // 4  # stage 1 of the bundled model: after the 4x4 patchify stem, 16 channels
    assert c.shape == (1, 16, side, side) and c.values.shape == (16, side, side)
    x = torch.from_numpy(c.values)[None]
    bn = F.batch_norm(x, None, None, training=True, eps=EPS)  # batch statistics, per channel
    ln = F.layer_norm(x.permute(0, 2, 3, 1), (16,), eps=EPS).permute(0, 3, 1, 2)  # per position
    torch.testing.assert_close(torch.from_numpy(c.after_bn)[None], bn, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(c.after_ln)[None], ln, rtol=1e-4, atol=1e-4)
    assert c.bn_mean.shape == (16,) and c.ln_mean.shape == (side, side)
    torch.testing.assert_close(torch.from_numpy(c.bn_mean), x.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(torch.from_numpy(c.ln_std), x.std(dim=1, unbiased=False)[0])


def test_the_two_layer_norms_agree_on_that_tensor_and_are_timed(stage_one):
    assert stage_one.max_difference < 1e-5
    assert stage_one.affine_from == "stem.1"  # the model's own LayerNorm over 16 channels
    assert 0 < stage_one.seconds_channels_first < 1 and 0 < stage_one.seconds_permuted < 1


def test_a_stage_the_model_does_not_have_is_a_sentence():
    from explorer.ui.normalization import show_norms

    with pytest.raises(ExplorerError, match="has 4 stages"):
        compare_norms(load("convnext_shapes"), open_image(EXAMPLE), 4)
    with pytest.raises(gr.Error, match="has 4 stages"):
        show_norms("convnext_shapes", "star-0.png", None, 9, progress=lambda *a, **k: None)


def test_bn_to_ln_moves_no_flops_in_the_papers_convention():
    before, after = bn_to_ln_counts(64)  # any size shows it; 64 px keeps the test fast
    assert before.count("flop_counter").total == after.count("flop_counter").total
    assert before.count("flop_counter").by_kind["norms"] == 0
    # fvcore charges 2 per element for BatchNorm at inference and 5 for LayerNorm, on the same elements
    assert after.count("fvcore").by_kind["norms"] == pytest.approx(2.5 * before.count("fvcore").by_kind["norms"])
    # the LN network's 1x1 convolutions are Linear layers on channels-last tensors, as the text says
    assert before.count("flop_counter").by_kind["linear"] < after.count("flop_counter").by_kind["linear"]
    assert after.count("torchinfo").by_kind["linear"] < 0.1 * before.count("torchinfo").by_kind["convolution"]
    text = bn_to_ln_text(before, after)
    same = f"{before.count('flop_counter').total:.3f}"
    assert f"they are {same} and {same} GFLOPs" in text and "| thop |" in text
