"""Depthwise kernels, the |weight|-vs-distance profile, stem filters and stage activations."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from explorer.inspect import (NoDepthwiseError, depthwise_blocks, depthwise_kernels, distance_profile,
                              distance_profiles, filters_as_tiles, has_depthwise, stage_activations,
                              stem_filters)
from explorer.plots import activation_grid, distance_chart, kernel_grid, stem_tiles
from tests.test_attribution import picture, small_loaded


def title_words(figure) -> str:
    """A figure's title as plain words: its lines (broken to fit a phone) joined, the tags dropped."""
    return " ".join(re.sub(r"<[^>]+>", " ", figure.layout.title.text).split())


def test_depthwise_models_are_found_by_what_their_convs_are():
    assert has_depthwise("convnext_tiny") and has_depthwise("convnext_shapes")
    assert has_depthwise("roadmap:depthwise") and has_depthwise("roadmap:convnext_t")
    assert not has_depthwise("roadmap:patchify")
    assert not has_depthwise("resnet50") and not has_depthwise("swin_tiny_patch4_window7_224")


def test_blocks_per_stage_follow_the_layout():
    assert {stage: len(blocks) for stage, blocks in depthwise_blocks(small_loaded("convnext_shapes")).items()} \
        == {0: 1, 1: 1, 2: 2, 3: 1}
    assert [len(blocks) for blocks in depthwise_blocks(small_loaded("roadmap:kernel7")).values()] == [3, 3, 9, 3]


def test_kernels_are_the_models_own_conv_weights():
    loaded = small_loaded("roadmap:kernel7")
    conv = loaded.model.get_submodule("stages.2.blocks.4.dwconv")
    own = conv.weight.detach()[:, 0].numpy()  # (C, 7, 7)
    kernels = depthwise_kernels(loaded, stage=2, block=4)
    assert kernels.layer.name == "stages.2.blocks.4.dwconv" and kernels.kernel_size == 7
    np.testing.assert_array_equal(kernels.weights, own)
    np.testing.assert_array_equal(kernels.channels, np.arange(conv.out_channels))

    strongest = depthwise_kernels(loaded, stage=2, block=4, sort_by_norm=True)
    norms = np.linalg.norm(own.reshape(len(own), -1), axis=1)
    assert np.all(np.diff(strongest.norms) <= 0)
    np.testing.assert_allclose(strongest.norms, norms[strongest.channels], rtol=1e-6)
    np.testing.assert_array_equal(strongest.weights, own[strongest.channels])


def test_a_block_without_a_depthwise_conv_and_a_model_without_any_get_sentences():
    with pytest.raises(NoDepthwiseError, match="no depthwise convolutions"):
        depthwise_blocks(small_loaded("resnet18"))
    with pytest.raises(Exception, match="stage 1, block 9"):
        depthwise_kernels(small_loaded("convnext_shapes"), stage=0, block=8)


def test_distance_profile_of_a_hand_made_kernel():
    kernel = np.array([[1.0, -2.0, 1.0],
                       [2.0, 4.0, -2.0],
                       [-1.0, 2.0, 1.0]])
    distances, mean_abs = distance_profile(kernel[None])
    np.testing.assert_allclose(distances, [0.0, 1.0, np.sqrt(2)])
    np.testing.assert_allclose(mean_abs, [4.0, 2.0, 1.0])


def test_distance_profile_of_a_stack_against_a_loop():
    kernels = np.random.default_rng(0).normal(size=(5, 7, 7))
    groups: dict[int, list[float]] = {}  # squared distance (a whole number of taps) -> |weights|
    for channel in range(5):
        for row in range(7):
            for col in range(7):
                groups.setdefault((row - 3) ** 2 + (col - 3) ** 2, []).append(abs(kernels[channel, row, col]))
    distances, mean_abs = distance_profile(kernels)
    np.testing.assert_allclose(distances, [np.sqrt(d) for d in sorted(groups)])
    np.testing.assert_allclose(mean_abs, [np.mean(groups[d]) for d in sorted(groups)])
    assert len(distances) == 10  # 0, 1, 1.41, 2, 2.24, 2.83, 3, 3.16, 3.61, 4.24


def test_one_profile_per_stage():
    profiles = distance_profiles(small_loaded("convnext_shapes"))
    assert [p.stage for p in profiles] == [0, 1, 2, 3]
    assert [p.kernels for p in profiles] == [16, 32, 128, 128]  # channels x blocks per stage
    assert distance_chart(profiles, "profile").data[0].name.startswith("stage 1")


def test_stem_filters_patchify_and_resnet():
    patchify = stem_filters(small_loaded("roadmap:patchify"))
    assert patchify.tiles.shape[1:] == (4, 4, 3) and patchify.stride == 4
    resnet = stem_filters(small_loaded("resnet18"))
    assert resnet.layer == "conv1" and resnet.tiles.shape == (64, 7, 7, 3) and resnet.stride == 2
    figure = stem_tiles([patchify, resnet])
    assert len(figure.data) == 2 and "stride 4" in figure.layout.annotations[0].text


def test_tiles_put_zero_at_mid_grey_and_the_extremes_at_the_ends():
    weights = np.zeros((2, 3, 2, 2), dtype=np.float32)
    weights[0, 0, 0, 0], weights[0, 1, 1, 1] = 2.0, -2.0
    tiles = filters_as_tiles(weights)
    assert tiles.shape == (2, 2, 2, 3)
    assert tiles[0, 0, 0, 0] == 255 and tiles[0, 1, 1, 1] == 0 and tiles[0, 0, 1, 2] == 128
    assert np.all(tiles[1] == 128)  # an all-zero filter is plain grey


@pytest.mark.parametrize("name", ["convnext_shapes", "swin_tiny_patch4_window7_224"])
def test_stage_activations_are_channels_first_with_the_most_active_channels(name):
    loaded = small_loaded(name, 64)
    stages = stage_activations(loaded, picture(), top=4)
    assert len(stages) == 4
    first = stages[0]
    assert first.shape[0] == 1 and first.shape[2:] == (16, 16)  # NCHW, also for Swin's NHWC stages
    kept = {}
    handle = loaded.model.get_submodule(first.module).register_forward_hook(lambda _m, _i, out: kept.update(out=out))
    from explorer.inference import preprocess

    with torch.no_grad():
        loaded.model(preprocess(picture(), loaded.data_config))
    handle.remove()
    out = kept["out"][0]
    features = out.permute(2, 0, 1) if name.startswith("swin") else out  # (C, H, W)
    strength = features.abs().mean(dim=(1, 2))
    assert list(first.channels) == strength.argsort(descending=True)[:4].tolist()
    np.testing.assert_allclose(first.maps, features[list(first.channels)].numpy(), rtol=1e-5, atol=1e-6)
    figure = activation_grid(first)
    assert " x ".join(map(str, first.shape)) in title_words(figure)
    assert f"channel {first.channels[0]}" in figure.data[0].hovertemplate


def test_kernel_grid_has_a_symmetric_scale():
    kernels = depthwise_kernels(small_loaded("convnext_shapes"), stage=1, block=0, sort_by_norm=True)
    figure = kernel_grid(kernels)
    heatmap = figure.data[0]
    assert heatmap.zmin == -heatmap.zmax and heatmap.zmid == 0
    assert "strongest first" in title_words(figure)
