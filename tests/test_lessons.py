"""Lessons: the index is complete, every text renders with live numbers, every panel draws for every
value of its controls."""
from __future__ import annotations

import plotly.graph_objects as go
import pytest

from explorer.analysis import summarize
from explorer.lessons import PANELS, lessons, render, text
from explorer.roadmap import what_if
from explorer.zoo import ExplorerError


def test_ten_lessons_in_order_one_panel_each():
    found = lessons()
    assert len(found) == 10
    assert [lesson.panel for lesson in found] == list(PANELS)


@pytest.mark.parametrize("index", range(10))
def test_every_lesson_renders_with_no_placeholder_left(index):
    rendered = text(index)
    assert "{{" not in rendered and "}}" not in rendered
    assert len(rendered.split()) > 80  # a real text, not a stub


def test_placeholders_are_counted_from_the_models():
    # expected figures: PAPER-FACTS (counted kernel-7 step 4.146, ConvNeXt-T 28.589 M, XL@384 179.03)
    assert render("{{gflops:roadmap:kernel7}}") == "4.15"
    assert render("{{params:convnext_tiny}}") == "28.6"
    assert render("{{ gflops:convnext_xlarge@384 }}") == "179.03"
    assert render("BN -> LN: {{top1:ln}}% at {{paper_gflops:ln}}") == "BN -> LN: 81.47% at 4.46"


def test_a_bad_placeholder_is_an_error():
    with pytest.raises(ExplorerError, match="Unknown placeholder"):
        render("{{flops:convnext_tiny}}")
    with pytest.raises(ExplorerError):
        render("{{gflops:convnext_nano}}")
    with pytest.raises(ExplorerError):
        render("{{top1:no_such_step}}")


@pytest.mark.parametrize("field, value, step", [("kernel_size", 9, "kernel9"), ("kernel_size", 11, "kernel11"),
                                                ("width", 96, "width")])
def test_what_if_is_the_roadmaps_own_step(field, value, step):
    base = "move_dw" if field == "kernel_size" else "depthwise"
    changed, reference = what_if(base, field, value), summarize(f"roadmap:{step}")
    assert (changed.gflops, changed.params) == (reference.gflops, reference.params)


def test_what_if_refuses_a_setting_a_step_does_not_have():
    with pytest.raises(ExplorerError, match="no setting"):
        what_if("move_dw", "colour", 3)


PANEL_VALUES = {  # every choice each panel's controls offer
    "show_results": [("in1k",), ("in22k",)],
    "show_macro": [(s, m) for s in ("recipe", "stage_ratio", "patchify") for m in ("gflops", "params")],
    "show_width": [(w,) for w in (48, 64, 80, 96, 112, 128)],
    "show_inverted": [(s,) for s in (1, 2, 3, 4)],
    "show_kernel": [(k,) for k in (3, 5, 7, 9, 11)],
    "show_micro": [(s,) for s in ("gelu", "fewer_act", "fewer_norm", "ln", "convnext_t")],
    "show_family": [(n, s) for n in ("convnext_tiny", "convnext_xlarge") for s in (224, 384)],
    "show_inside": [(s,) for s in (1, 4)],
    "show_beyond": [("coco",), ("ade20k",), ("throughput",)],
    "show_next": [("S",), ("B",), ("L",)],
}


@pytest.mark.parametrize("handler", sorted(PANEL_VALUES))
def test_every_panel_draws_for_every_choice(handler):
    import explorer.ui.lessons as ui

    for values in PANEL_VALUES[handler]:
        outputs = getattr(ui, handler)(*values)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)  # one figure is not a tuple of outputs
        for output in outputs:  # every figure draws something (traces, or shapes and labels), every text has words
            if isinstance(output, go.Figure):
                assert output.data or (output.layout.shapes and output.layout.annotations), (handler, values)
            else:
                assert isinstance(output, str) and output.strip(), (handler, values, type(output))


def test_the_kernel_panel_counts_the_papers_sweep():
    from explorer.ui.lessons import show_kernel

    line, _chart, fields, _grid, _profile, table = show_kernel(9)
    assert "4.210 GFLOPs" in line and "80.57%" in line  # PAPER-FACTS: kernel 9 counted 4.210, top-1 80.57
    # the receptive fields of the five networks of the sweep, their numbers read from the measurement
    assert "area ratio at t = 0.5" in fields and "(3x3)" in fields and "(11x11)" in fields
    assert table.count("Roadmap") == 5 and "kernel size 11" in table


def test_table_12_pairs_give_the_papers_speed_ups():
    from explorer.paper import throughput_pairs

    # Table 12 prints ConvNeXt's gain over Swin at equal FLOPs: +47%, +49%, +46%, +39%, +40%, +34%
    printed = {"T": 47, "S": 49, "B": 46, "B @384": 39, "L": 40, "L @384": 34}
    pairs = {size: round(100 * (convnext / swin - 1)) for size, swin, convnext in throughput_pairs()}
    assert pairs == printed
