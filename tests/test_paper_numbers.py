"""The paper's parameters and GFLOPs, reproduced by counting. Expected values are copied from the paper
(via shared/reference/PAPER-FACTS.md), never from the project's own tables."""
from __future__ import annotations

import pytest

from explorer.analysis import summarize
from explorer.report import paper_comparison

# timm name -> (parameters in millions, paper GFLOPs at 224, paper GFLOPs at 384 or None)
REFERENCE = {
    "convnext_tiny": (28.589, 4.5, 13.1),
    "convnext_small": (50.224, 8.7, 25.5),
    "convnext_base": (88.591, 15.4, 45.1),  # Table 8 prints 45.1, Table 12 prints 45.0
    "convnext_large": (197.767, 34.4, 101.0),
    "convnext_xlarge": (350.197, 60.9, 179.0),
    "swin_tiny_patch4_window7_224": (28.288, 4.5, None),
    "swin_small_patch4_window7_224": (49.606, 8.7, None),
    "swin_base_patch4_window7_224": (87.768, 15.4, None),
    "swin_large_patch4_window7_224": (196.532, 34.5, None),
    "resnet50": (25.557, 4.09, None),
}
SWIN_384 = {"swin_base_patch4_window12_384": 47.1, "swin_large_patch4_window12_384": 103.9}

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
    params_m, _, _ = REFERENCE[name]
    assert summarize(name).params / 1e6 == pytest.approx(params_m, abs=0.01)


@pytest.mark.parametrize("name,size", [(n, 224) for n in REFERENCE]
                         + [(n, 384) for n, v in REFERENCE.items() if v[2] is not None])
def test_gflops_match_the_paper(name, size):
    _, at_224, at_384 = REFERENCE[name]
    assert summarize(name, size).gflops == pytest.approx(at_224 if size == 224 else at_384, abs=0.05)


@pytest.mark.parametrize("name", SWIN_384)
def test_swin_at_384_matches_the_paper(name):
    assert summarize(name).gflops == pytest.approx(SWIN_384[name], abs=0.05)


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
