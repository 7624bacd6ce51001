"""The roadmap: every step builds and runs, counts the paper's GFLOPs, changes one thing, and both
ends of both regimes are the same networks as timm's.

Expected figures are typed in from `../shared/reference/PAPER-FACTS.md` (ResNet-50 regime) and from
the paper's Table 11 (ResNet-200 regime), not read from the module under test.
"""
from __future__ import annotations

from dataclasses import fields

import pytest
import timm
import torch

from explorer.analysis import summarize
from explorer.blocks import NetConfig
from explorer.roadmap import (
    build_step,
    convnext_from_timm,
    get_step,
    resnet_from_timm,
    roadmap_table,
    steps,
)
from explorer.zoo import UnknownModelError, get_spec
from tests.test_paper_tables import printed_roadmap

IDS = ["resnet50", "recipe", "stage_ratio", "patchify", "depthwise", "width", "inverted", "move_dw",
       "kernel5", "kernel7", "kernel9", "kernel11", "gelu", "fewer_act", "fewer_norm", "ln", "convnext_t",
       "swin_t"]
SECTIONS = {"baseline", "training", "macro design", "ResNeXt-ify", "inverted bottleneck", "large kernel",
            "micro design", "reference"}
REGIMES = ("resnet50", "resnet200")
ALL_STEPS = [(regime, step.id) for regime in REGIMES for step in steps(regime)]

# Counted GFLOPs of the ResNet-50 regime, from PAPER-FACTS (the printed figures are typed once, in
# tests/test_paper_tables.py).
RESNET50_COUNTED = {
    "resnet50": 4.089, "recipe": 4.089, "stage_ratio": 4.526, "patchify": 4.418, "depthwise": 2.350,
    "width": 5.268, "inverted": 4.644, "move_dw": 4.065, "kernel5": 4.097, "kernel7": 4.146, "kernel9": 4.210,
    "kernel11": 4.291, "gelu": 4.146, "fewer_act": 4.146, "fewer_norm": 4.146, "ln": 4.146, "convnext_t": 4.456,
    "swin_t": 4.491,
}
# ResNet-200 regime: every counted figure rounds to Table 11's, except these (PAPER-FACTS: ResNet-200,
# ConvNeXt-B), which sit on a rounding edge.
RESNET200_COUNTED = {"resnet50": 15.007, "convnext_t": 15.355}

SWEEP_BASES = {"kernel5": "move_dw", "kernel7": "move_dw", "kernel9": "move_dw", "kernel11": "move_dw",
               "gelu": "kernel7"}  # the paper sweeps kernel sizes from 3x3 and keeps 7
BUNDLED = {  # the paper rows that change two things at once
    ("resnet200", "stage_ratio"): {"depths", "width"},  # Table 11: "stage ratio and increase width"
    ("resnet50", "convnext_t"): {"downsample", "layer_scale"},  # separate downsampling, and ConvNeXt's gamma
    ("resnet200", "convnext_t"): {"downsample", "layer_scale"},
}


@pytest.mark.parametrize("regime", REGIMES)
def test_steps_in_the_papers_order(regime):
    assert [step.id for step in steps(regime)] == IDS
    for step in steps(regime):
        assert step.section in SECTIONS and step.title and step.change and step.why


@pytest.mark.parametrize("regime, step_id", ALL_STEPS)
def test_every_step_builds_and_runs(regime, step_id):
    model = build_step(step_id, regime)
    # ResNet-200-sized networks run at 64 to keep CI fast; Swin's windows need its 224
    size = 64 if regime == "resnet200" and step_id != "swin_t" else 224
    with torch.no_grad():
        logits = model(torch.randn(1, 3, size, size))
    assert logits.shape == (1, 1000)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("regime", REGIMES)
def test_each_step_changes_one_field_of_its_base(regime):
    ids = [step.id for step in steps(regime)]
    for previous, step in zip(ids, steps(regime)[1:-1]):
        assert step.base == SWEEP_BASES.get(step.id, previous)
        base = get_step(step.base, regime).config
        changed = {f.name for f in fields(NetConfig) if getattr(step.config, f.name) != getattr(base, f.name)}
        assert changed == set(step.edits)
        if (regime, step.id) in BUNDLED:
            assert changed == BUNDLED[regime, step.id]
        else:
            assert len(changed) == 1, (step.id, changed)
    assert steps(regime)[-1].config is None  # the reference is timm's Swin


def test_resnet50_regime_counts_the_papers_figures():
    rows = roadmap_table("resnet50")
    assert [(row["paper_top1"], row["paper_gflops"]) for row in rows] == printed_roadmap("resnet50")
    for row in rows:
        assert row["gflops"] == pytest.approx(RESNET50_COUNTED[row["id"]], abs=0.0005), row["id"]


def test_resnet200_regime_counts_table_11():
    rows = roadmap_table("resnet200")
    printed = printed_roadmap("resnet200")
    assert [(row["paper_top1"], row["paper_gflops"]) for row in rows] == printed
    for row, (_, gflops) in zip(rows, printed):
        assert row["gflops"] == pytest.approx(RESNET200_COUNTED.get(row["id"], gflops), abs=0.005), row["id"]


def test_resnet200_regime_starts_at_timms_resnet200():
    with torch.device("meta"):
        reference = timm.create_model("resnet200")
    assert summarize("roadmap200:resnet50").params == sum(p.numel() for p in reference.parameters())


def test_paper_figures_that_disagree_with_the_count_carry_a_note():
    for regime in REGIMES:
        for step in steps(regime):
            if regime == "resnet50" and step.id in ("ln", "convnext_t"):
                assert str(step.paper_gflops) in step.note
                assert {"ln": "4.146", "convnext_t": "4.456"}[step.id] in step.note
            else:
                assert step.note is None, step.id


def test_steps_are_in_the_zoo():
    spec = get_spec("roadmap:kernel7")
    assert (spec.family, spec.step, spec.regime) == ("Roadmap", "kernel7", "resnet50") and "kernel size 7" in spec.label
    assert (get_spec("roadmap200:kernel7").step, get_spec("roadmap200:kernel7").regime) == ("kernel7", "resnet200")
    convnext_b = summarize("roadmap200:convnext_t")
    assert [row.blocks for row in convnext_b.stages[1:5]] == [3, 3, 27, 3]
    assert convnext_b.stages[4].output_shape == (1, 1024, 7, 7)
    with pytest.raises(UnknownModelError, match="kernel7"):
        get_spec("roadmap:kernel_7")


def _randomized_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state with every norm, bias, running statistic and gamma drawn at random too:
    timm starts some of them at 0 or 1 (and gamma at 1e-6), which would hide a wrong mapping."""
    generator = torch.Generator().manual_seed(0)
    state = model.state_dict()
    for key, tensor in state.items():
        if tensor.is_floating_point() and tensor.ndim == 1:
            noise = torch.rand(tensor.shape, generator=generator)
            centered = key.endswith(("bias", "running_mean"))
            tensor.copy_((noise - 0.5) * 0.4 if centered else noise * 0.4 + 0.1)
    return state


@pytest.mark.parametrize("name, timm_name, to_roadmap, size", [
    ("roadmap:resnet50", "resnet50", resnet_from_timm, 224),
    ("roadmap200:resnet50", "resnet200", resnet_from_timm, 64),
    ("roadmap:convnext_t", "convnext_tiny", convnext_from_timm, 224),
    ("roadmap200:convnext_t", "convnext_base", convnext_from_timm, 128),
])
def test_the_ends_of_the_roadmap_are_timms_networks(name, timm_name, to_roadmap, size):
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False).eval()
    state = _randomized_state(reference)
    reference.load_state_dict(state, strict=True)
    prefix, _, step_id = name.partition(":")
    with torch.device("meta"):  # no weights to initialize: they all come from timm's model
        model = build_step(step_id, "resnet200" if prefix == "roadmap200" else "resnet50")
    model.load_state_dict(to_roadmap(state), strict=True, assign=True)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert expected.std() > 0.01  # the logits depend on the weights
    assert (actual - expected).abs().max() <= 1e-4
