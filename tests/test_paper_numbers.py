"""The paper's parameters and GFLOPs, reproduced by counting. Expected values are copied from the paper
(via shared/reference/PAPER-FACTS.md), never from the project's own tables."""
from __future__ import annotations

import pytest

from explorer.analysis import summarize
from explorer.report import paper_comparison
from tests.test_paper_tables import PRINTED_GFLOPS, typed

# timm name -> (the paper's name, parameters in millions from PAPER-FACTS). The GFLOPs the paper prints
# for each are typed once, in tests/test_paper_tables.py (PRINTED_GFLOPS, Tables 1, 8 and 12).
REFERENCE = {
    "convnext_tiny": ("ConvNeXt-T", 28.589),
    "convnext_small": ("ConvNeXt-S", 50.224),
    "convnext_base": ("ConvNeXt-B", 88.591),
    "convnext_large": ("ConvNeXt-L", 197.767),
    "convnext_xlarge": ("ConvNeXt-XL", 350.197),
    "swin_tiny_patch4_window7_224": ("Swin-T", 28.288),
    "swin_small_patch4_window7_224": ("Swin-S", 49.606),
    "swin_base_patch4_window7_224": ("Swin-B", 87.768),
    "swin_large_patch4_window7_224": ("Swin-L", 196.532),
    "resnet50": ("ResNet-50", 25.557),
}
SWIN_384 = {"swin_base_patch4_window12_384": "Swin-B", "swin_large_patch4_window12_384": "Swin-L"}
PRINTED = {(name, int(side)): float(gflops) for name, side, gflops, *_ in typed(PRINTED_GFLOPS)}  # first figure

# PAPER-FACTS "checked values": the count to three decimals
COUNTED = {
    ("resnet50", 224): 4.089, ("convnext_tiny", 224): 4.456, ("convnext_small", 224): 8.684,
    ("convnext_base", 224): 15.355, ("convnext_large", 224): 34.36, ("convnext_xlarge", 224): 60.92,
    ("swin_tiny_patch4_window7_224", 224): 4.491, ("swin_small_patch4_window7_224", 224): 8.741,
    ("swin_base_patch4_window7_224", 224): 15.43, ("swin_large_patch4_window7_224", 224): 34.48,
    ("convnext_tiny", 384): 13.09, ("convnext_small", 384): 25.52, ("convnext_base", 384): 45.12,
    ("convnext_large", 384): 100.98, ("convnext_xlarge", 384): 179.03,
    ("swin_base_patch4_window12_384", 384): 47.08, ("swin_large_patch4_window12_384", 384): 103.92,
}


@pytest.mark.parametrize("name", REFERENCE)
def test_parameters_match_the_reference(name):
    _, params_m = REFERENCE[name]
    assert summarize(name).params / 1e6 == pytest.approx(params_m, abs=0.01)


COUNTED_AT = [(name, 224) for name in REFERENCE] + [(name, 384) for name in REFERENCE if name.startswith("convnext")]


@pytest.mark.parametrize("name,size", COUNTED_AT)
def test_gflops_match_the_paper(name, size):
    assert summarize(name, size).gflops == pytest.approx(PRINTED[REFERENCE[name][0], size], abs=0.05)


@pytest.mark.parametrize("name", SWIN_384)
def test_swin_at_384_matches_the_paper(name):
    assert summarize(name).gflops == pytest.approx(PRINTED[SWIN_384[name], 384], abs=0.05)


def test_every_printed_figure_is_compared_with_a_count():
    compared = {(REFERENCE[name][0], size) for name, size in COUNTED_AT} | {(n, 384) for n in SWIN_384.values()}
    assert compared == set(PRINTED)


@pytest.mark.parametrize("name,size", COUNTED)
def test_counts_to_three_decimals(name, size):
    assert summarize(name, size).gflops == pytest.approx(COUNTED[name, size], abs=0.005)


def test_convnext_base_384_shows_both_printed_figures():
    text = paper_comparison(summarize("convnext_base", 384))
    assert "45.12" in text and "45.1" in text and "45.0" in text and "Table 12" in text


def test_22k_heads_have_21841_classes_and_no_paper_figure():
    summary = summarize("convnext_tiny.fb_in22k")
    assert summary.stages[-1].output_shape == (1, 21841)
    assert "prints no figure" in paper_comparison(summary)
