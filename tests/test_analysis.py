"""Per-stage summaries: every registered model, and ConvNeXt-T checked against a count by hand."""
from __future__ import annotations

import pytest
import timm
import torch

from explorer.analysis import summarize
from explorer.zoo import REGISTRY, ExplorerError, build_model, check_input_size, get_spec, model_names


@pytest.mark.parametrize("name", model_names())
def test_every_model_summarizes_on_meta(name):
    summary = summarize(name)
    assert sum(row.params for row in summary.stages) == summary.params
    assert sum(row.gflops for row in summary.stages) == pytest.approx(summary.gflops)
    assert summary.stages[-1].output_shape[0] == 1
    if get_spec(name).layout.groups:  # isotropic: thirds of the blocks, all at stride 16
        depth = sum(row.blocks for row in summary.stages)
        third = depth // 3
        assert [row.name for row in summary.stages] == [
            "stem", f"blocks 1-{third}", f"blocks {third + 1}-{2 * third}", f"blocks {2 * third + 1}-{depth}", "head"]
        side = summary.input_size // 16
        tokens = (1 + side * side,) if get_spec(name).layout.tokens else ()  # ViT: class token + patches
        for row in summary.stages[:-1]:
            assert row.output_shape[1:] in ((row.output_shape[1], side, side), tokens + row.output_shape[-1:])
    else:
        assert [row.name for row in summary.stages] == ["stem", "stage 1", "stage 2", "stage 3", "stage 4", "head"]
        for row in summary.stages[1:5]:
            assert row.blocks > 0 and len(row.output_shape) == 4
        # each stage halves the resolution of the one before: strides 4, 8, 16, 32
        sides = [row.output_shape[-1] for row in summary.stages[1:5]]
        assert sides == [summary.input_size // s for s in (4, 8, 16, 32)]
    for row in summary.stages:
        numel = 1
        for dim in row.output_shape:
            numel *= dim
        assert row.activation_bytes == 4 * numel


@pytest.mark.parametrize("name", [name for name, spec in REGISTRY.items() if spec.build is None])
def test_registry_names_build_in_timm(name):
    """Every key built by timm is a name timm knows (architecture plus, where given, its pretrained tag)."""
    arch, _, tag = name.partition(".")
    assert arch in timm.list_models()
    if tag:
        assert name in timm.list_pretrained(arch + ".*")


def _convnext_block_macs(channels: int, side: int, kernel: int = 7) -> int:
    """Depthwise kxk conv, then 1x1 C->4C and 4C->C, on a side x side map."""
    return side * side * (channels * kernel * kernel + 2 * channels * 4 * channels)


def test_convnext_tiny_stages_match_a_count_by_hand():
    """The paper's convention counted independently: MACs of every conv and linear layer."""
    widths, depths, side = (96, 192, 384, 768), (3, 3, 9, 3), 56
    expected = [3 * widths[0] * 4 * 4 * side * side]  # stem: 4x4 stride-4 conv
    for i, (c, depth) in enumerate(zip(widths, depths)):
        s = side >> i
        downsample = widths[i - 1] * c * 2 * 2 * s * s if i else 0  # 2x2 stride-2 conv
        expected.append(downsample + depth * _convnext_block_macs(c, s))
    expected.append(widths[-1] * 1000)  # classifier
    summary = summarize("convnext_tiny", 224)
    assert [row.gflops for row in summary.stages] == pytest.approx([m / 1e9 for m in expected], rel=1e-9)


@pytest.mark.parametrize("name", ["resnet50", "convnext_tiny", "swin_tiny_patch4_window7_224"])
def test_meta_parameter_count_equals_a_real_model(name):
    real = timm.create_model(name, pretrained=False)
    assert summarize(name).params == sum(p.numel() for p in real.parameters())


def test_built_model_is_on_the_cpu_and_runs():
    model = build_model("resnet18", 64)
    assert next(model.parameters()).device.type == "cpu"
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("size", [0, 16, 100, 4096])
def test_unsupported_input_sizes_get_a_sentence(size):
    with pytest.raises(ExplorerError, match="multiple of 32"):
        check_input_size(size)
