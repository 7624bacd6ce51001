"""The wider family: ConvNeXt V2, the isotropic ConvNeXt and ViT against the papers' tables; GRN; the
official isotropic checkpoints; the feature-collapse measure; the isotropic-vs-hierarchical comparison."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from explorer.analysis import summarize
from explorer.paper import FIGURE_TABLES, figure_for, model_figures
from explorer.zoo import ExplorerError, get_spec

# Printed as the tables print them (strings keep their precision): params (M), GFLOPs at 224, top-1.
# ConvNeXt V2 README, ImageNet-1K fine-tuned models; ConvNeXt paper, Section 3.3 (isotropic vs ViT).
PRINTED = {
    "convnextv2_atto": ("3.7", "0.55", "76.7"),
    "convnextv2_femto": ("5.2", "0.78", "78.5"),
    "convnextv2_pico": ("9.1", "1.37", "80.3"),
    "convnextv2_nano": ("15.6", "2.45", "81.9"),
    "convnextv2_tiny": ("28.6", "4.47", "83.0"),
    "convnextv2_base": ("89", "15.4", "84.9"),
    "convnextv2_large": ("198", "34.4", "85.8"),
    "convnextv2_huge": ("660", "115", "86.3"),
    "vit_small_patch16_224": ("22", "4.6", "79.8"),
    "convnext_isotropic_small": ("22", "4.3", "79.7"),
    "vit_base_patch16_224": ("87", "17.6", "81.8"),
    "convnext_isotropic_base": ("87", "16.9", "82.0"),
    "vit_large_patch16_224": ("304", "61.6", "82.6"),
    "convnext_isotropic_large": ("306", "59.7", "82.6"),
}
SLIPS = {"convnextv2_tiny": "4.46"}  # the count rounds to this where the table prints something else


def _rounded(value: float, printed: str) -> str:
    decimals = len(printed.partition(".")[2])
    return f"{value:.{decimals}f}"


@pytest.mark.parametrize("name", PRINTED)
def test_counted_params_and_gflops_round_to_the_printed_figures(name):
    params, gflops, _top1 = PRINTED[name]
    summary = summarize(name, 224)  # on the meta device: even V2-Huge (660 M) allocates nothing
    assert _rounded(summary.params / 1e6, params) == params
    assert _rounded(summary.gflops, gflops) == SLIPS.get(name, gflops)


@pytest.mark.parametrize("name", PRINTED)
def test_the_app_shows_the_printed_figures_typed_here(name):
    figure = figure_for(get_spec(name), 224)
    assert figure is not None
    assert (figure.params_m, figure.gflops, figure.top1) == tuple(float(v) for v in PRINTED[name])
    assert bool(figure.note) == (name in SLIPS)  # a reason is given exactly where the count differs


def test_the_v2_tiny_note_gives_both_figures_and_the_count_is_convnext_t():
    note = figure_for(get_spec("convnextv2_tiny"), 224).note
    assert "4.47" in note and "4.456" in note
    # GRN adds no multiply-accumulate: the V2 network counts exactly as ConvNeXt-T
    assert summarize("convnextv2_tiny").gflops == pytest.approx(summarize("convnext_tiny").gflops, rel=1e-12)


def test_every_printed_figure_names_a_registry_model_once():
    keys = [(f.arch, f.input_size) for f in model_figures()]
    assert len(keys) == len(set(keys))
    assert set(PRINTED) <= {arch for arch, _size in keys}


# --- the isotropic ConvNeXt counted by hand --------------------------------------------------------

def _iso_block(c: int) -> tuple[int, int]:
    """(params, MACs per position) of one ConvNeXt block without layer scale: 7x7 depthwise, LN, C->4C, 4C->C."""
    params = (49 * c + c) + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c)
    return params, 49 * c + 8 * c * c


@pytest.mark.parametrize("name, depth, width", [("convnext_isotropic_small", 18, 384),
                                                ("convnext_isotropic_large", 36, 1024)])
def test_isotropic_rows_match_a_count_by_hand(name, depth, width):
    summary = summarize(name, 224)
    positions = 14 * 14  # a 16x16 stride-16 stem on 224
    block_params, block_macs = _iso_block(width)
    stem, *groups, head = summary.stages
    assert (stem.params, stem.gflops) == (3 * 256 * width + width, pytest.approx(positions * 3 * 256 * width / 1e9))
    assert stem.output_shape == (1, width, 14, 14)
    for group in groups:
        assert group.blocks == depth // 3 and group.output_shape == (1, width, 14, 14)
        assert group.params == depth // 3 * block_params
        assert group.gflops == pytest.approx(depth // 3 * positions * block_macs / 1e9)
    assert head.params == 2 * width + width * 1000 + 1000  # final LayerNorm and the classifier


def test_vit_rows_carry_the_class_token():
    stem, *groups, head = summarize("vit_small_patch16_224").stages
    assert stem.output_shape == (1, 197, 384)  # 14 x 14 patches and the class token
    assert stem.params == 3 * 256 * 384 + 384 + 384 + 197 * 384  # patch conv, class token, positions
    assert [g.blocks for g in groups] == [4, 4, 4]


# --- GRN -------------------------------------------------------------------------------------------

def test_grn_matches_the_papers_formula():
    from timm.layers.grn import GlobalResponseNorm

    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, 8)  # (N, H, W, C), channels last as in the block
    grn = GlobalResponseNorm(8)
    with torch.no_grad():
        grn.weight.normal_()
        grn.bias.normal_()
    gx = x.pow(2).sum(dim=(1, 2), keepdim=True).sqrt()  # ||X_i|| over H and W, per image and channel
    nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)  # divided by the mean over channels
    expected = grn.weight * (x * nx) + grn.bias + x
    torch.testing.assert_close(grn(x), expected)
    assert not torch.allclose(grn(x), x)  # with non-zero gamma and beta it changes the input


def test_the_v2_block_puts_grn_between_the_pointwise_layers():
    from explorer.compare import report

    layers = [layer.name for layer in report("convnextv2", 96, 56).layers]
    assert layers.index("mlp.fc1") < layers.index("mlp.act") < layers.index("mlp.grn") < layers.index("mlp.fc2")
    assert "GlobalResponseNorm" in report("convnextv2", 96, 56).norms
    assert report("vit", 384, 14).spatial == "global self-attention"


# --- the official isotropic checkpoint --------------------------------------------------------------

def _official_isotropic(depth: int, dim: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict named as facebookresearch/ConvNeXt models/convnext_isotropic.py names it (layer
    scale 0: no gamma), with random values."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g) * 0.05

    state = {"stem.weight": rand(dim, 3, 16, 16), "stem.bias": rand(dim)}
    for i in range(depth):
        state |= {f"blocks.{i}.dwconv.weight": rand(dim, 1, 7, 7), f"blocks.{i}.dwconv.bias": rand(dim),
                  f"blocks.{i}.norm.weight": 1 + rand(dim), f"blocks.{i}.norm.bias": rand(dim),
                  f"blocks.{i}.pwconv1.weight": rand(4 * dim, dim), f"blocks.{i}.pwconv1.bias": rand(4 * dim),
                  f"blocks.{i}.pwconv2.weight": rand(dim, 4 * dim), f"blocks.{i}.pwconv2.bias": rand(dim)}
    return state | {"norm.weight": 1 + rand(dim), "norm.bias": rand(dim),
                    "head.weight": rand(1000, dim), "head.bias": rand(1000)}


def _official_forward(state: dict[str, torch.Tensor], depth: int, x: torch.Tensor) -> torch.Tensor:
    """The official isotropic forward pass written with torch.nn.functional."""
    x = F.conv2d(x, state["stem.weight"], state["stem.bias"], stride=16)
    for i in range(depth):
        p = {k.removeprefix(f"blocks.{i}."): v for k, v in state.items() if k.startswith(f"blocks.{i}.")}
        y = F.conv2d(x, p["dwconv.weight"], p["dwconv.bias"], padding=3, groups=x.shape[1]).permute(0, 2, 3, 1)
        y = F.layer_norm(y, y.shape[-1:], p["norm.weight"], p["norm.bias"], eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, p["pwconv1.weight"], p["pwconv1.bias"])), p["pwconv2.weight"], p["pwconv2.bias"])
        x = x + y.permute(0, 3, 1, 2)
    x = F.layer_norm(x.mean((-2, -1)), x.shape[1:2], state["norm.weight"], state["norm.bias"], eps=1e-6)
    return F.linear(x, state["head.weight"], state["head.bias"])


def test_an_official_isotropic_checkpoint_loads_and_computes_as_the_official_model(tmp_path):
    from explorer.weights import load

    state = _official_isotropic(18, 384)
    file = tmp_path / "convnext_iso_small_1k_224_ema.pth"
    torch.save({"model": state, "epoch": torch.tensor(299)}, file)  # wrapped, as the official training saves
    loaded = load("convnext_isotropic_small", file)  # torch.load(weights_only=True) inside
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), _official_forward(state, 18, x), rtol=1e-4, atol=1e-4)
    assert "local file" in loaded.weights


def test_an_isotropic_checkpoint_with_layer_scale_is_refused_with_a_sentence(tmp_path):
    from explorer.weights import CheckpointMismatchError, load_checkpoint

    state = _official_isotropic(18, 384) | {"blocks.0.gamma": torch.ones(384)}
    file = tmp_path / "iso.pth"
    torch.save(state, file)
    with pytest.raises(CheckpointMismatchError, match=r"1 unexpected \(e\.g\. blocks\.0\.gamma\)"):
        load_checkpoint("convnext_isotropic_small", file)


# --- feature collapse -------------------------------------------------------------------------------

def _distance_by_loop(x: np.ndarray) -> float:
    """(H, W, C) -> the V2 paper's formula, pair by pair."""
    channels = x.reshape(-1, x.shape[-1]).T  # (C, HW)
    total = 0.0
    for a, b in itertools.product(channels, repeat=2):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        cosine = float(a @ b / (na * nb)) if na and nb else 0.0
        total += (1 - cosine) / 2
    return total / len(channels) ** 2


def test_cosine_distance_on_hand_made_activations():
    from explorer.collapse import channel_cosine_distance

    same = torch.arange(1.0, 13.0).reshape(1, 3, 4, 1).repeat(1, 1, 1, 5)  # five copies of one map
    assert channel_cosine_distance(same) == pytest.approx(0.0, abs=1e-12)
    scaled = same * torch.tensor([1.0, 2.0, 0.5, 3.0, 10.0])  # positive scales do not matter
    assert channel_cosine_distance(scaled) == pytest.approx(0.0, abs=1e-12)
    onehot = torch.eye(6).reshape(1, 2, 3, 6)  # six orthogonal channels: off-diagonal pairs 0.5 each
    assert channel_cosine_distance(onehot) == pytest.approx(0.5 * 5 / 6)
    opposite = torch.tensor([1.0, -1.0]).repeat(1, 2, 2, 1) * torch.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    assert channel_cosine_distance(opposite) == pytest.approx(0.5)  # two pairs at 1, two self-pairs at 0
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5, 7)).clip(0)  # GELU-like: many zeros, some all-zero channels possible
    x[..., 2] = 0
    assert channel_cosine_distance(torch.tensor(x)[None]) == pytest.approx(_distance_by_loop(x))
    two = torch.stack([torch.tensor(x), torch.ones(4, 5, 7)])  # batch of two: the mean of the two images
    assert channel_cosine_distance(two) == pytest.approx((_distance_by_loop(x) + 0.0) / 2)


def test_collapse_profile_measures_every_block_after_the_gelu():
    from explorer.collapse import channel_cosine_distance, collapse_profile
    from explorer.inference import preprocess
    from explorer.weights import load

    loaded = load("convnext_shapes")
    picture = Image.new("RGB", (90, 60), (250, 250, 250))
    picture.paste((20, 20, 200), (20, 10, 60, 50))
    profile = collapse_profile(loaded, picture)
    assert profile.blocks == ("stages.0.blocks.0", "stages.1.blocks.0", "stages.2.blocks.0", "stages.2.blocks.1",
                              "stages.3.blocks.0")  # depths 1, 1, 2, 1
    assert profile.stages == (0, 1, 2, 2, 3)
    kept = {}
    block = loaded.model.get_submodule("stages.2.blocks.1")
    handle = block.mlp.fc1.register_forward_hook(lambda _m, _i, out: kept.setdefault("fc1", out))
    with torch.no_grad():
        loaded.model(preprocess(picture, loaded.data_config))
    handle.remove()
    by_hand = F.gelu(kept["fc1"])[0].numpy()  # (H, W, 4C) after pwconv1 and GELU
    assert profile.distances[3] == pytest.approx(_distance_by_loop(by_hand), rel=1e-6)
    assert channel_cosine_distance(kept["fc1"]) != pytest.approx(profile.distances[3])  # not before the GELU


def test_collapse_refuses_a_model_without_a_convnext_mlp():
    from explorer.collapse import collapse_profile
    from explorer.weights import load

    with pytest.raises(ExplorerError, match="no ConvNeXt MLP"):
        collapse_profile(load("resnet18"), Image.new("RGB", (64, 64)))


def test_the_collapse_reading_labels_random_weights():
    from explorer.collapse import CollapseProfile, reading

    random = CollapseProfile("convnext_tiny", "ConvNeXt-T", "random init", ("a", "b"), (0, 0), (0.4, 0.3))
    trained = CollapseProfile("convnextv2_tiny", "V2-T", "convnextv2_tiny.fcmae_ft_in1k (hub)", ("a", "b"), (0, 0),
                              (0.5, 0.45))
    assert reading([random, trained]).startswith("**Random weights**")
    assert "needs trained weights" in reading([random, trained])
    assert "Random" not in reading([trained]) and "0.475" in reading([trained]) and "0.450 at b" in reading([trained])
    assert "masked autoencoder" in reading([trained, trained]) and "masked" not in reading([trained])


# --- isotropic against hierarchical; views -----------------------------------------------------------

def test_the_comparison_finds_isotropic_compute_spread_and_hierarchical_compute_in_stage_3():
    from explorer.layouts import reading, trio

    vit, iso, convnext = trio("B")
    assert (vit.model, iso.model, convnext.model) == ("vit_base_patch16_224", "convnext_isotropic_base", "convnext_base")
    text = reading([vit, iso, convnext])
    assert text.count("spread evenly over depth, 33% in each group") == 2
    share = 100 * convnext.stages[3].gflops / convnext.gflops
    assert f"{share:.0f}% of it in stage 3 (output 512 x 14 x 14)" in text
    with pytest.raises(ExplorerError, match="Unknown size"):
        trio("XL")


def test_views_that_need_feature_maps_refuse_vit_with_a_sentence():
    from explorer.attribution import cam_layers

    with pytest.raises(ExplorerError, match="sequence of tokens"):
        cam_layers("vit_base_patch16_224")
    assert cam_layers("convnext_isotropic_small") == ("blocks",)


def test_the_family_chart_has_every_new_family():
    from explorer.paper import family_point
    from explorer.plots import family_chart

    new_tables = [f for f in model_figures() if f.source != FIGURE_TABLES["models"]]  # counted above at 224
    points = [family_point(f) for f in new_tables]
    names = {trace.name for trace in family_chart(points).data}
    assert {"ConvNeXt V2 (counted)", "Isotropic (paper)", "ViT (counted)"} <= names
    huge = next(p for p in points if p.name == "ConvNeXt V2-H")
    assert math.isclose(huge.params_m, 660, rel_tol=0.001) and huge.paper_gflops == 115


def test_the_headline_sets_every_printed_figure_beside_the_count():
    from explorer.report import paper_comparison

    line = paper_comparison(summarize("convnextv2_tiny"))
    assert "Counted: 28.635 M parameters, 4.456 GFLOPs" in line  # ConvNeXt-T's 4.456 (PAPER-FACTS) with GRN
    assert "28.6 M parameters, 4.47 GFLOPs, 83.0% top-1 (ConvNeXt V2 README" in line and "slip" in line
