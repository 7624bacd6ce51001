"""Deep links read and written without a browser: every parameter, good and bad values, and the round trip."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from explorer.lessons import lessons
from explorer.links import PARAMETERS, TABS, View, address, read_link
from explorer.roadmap import steps


def test_every_tab_opens_by_its_id_and_by_its_label():
    for tab, label in TABS.items():
        assert read_link({"tab": tab}).tab == tab
        assert read_link({"tab": label.upper()}).tab == tab
    assert read_link({"tab": "benchmark"}).tab == "bench"  # the name on the page


def test_a_roadmap_step_is_named_by_its_id_and_counted_from_one():
    ids = [step.id for step in steps("resnet200")]
    view = read_link({"tab": "roadmap", "regime": "resnet200", "step": "kernel7"})
    assert (view.regime, view.step, view.ignored) == ("resnet200", ids.index("kernel7") + 1, [])
    assert read_link({"step": "1"}).step == 1 and read_link({"step": str(len(ids))}).step == len(ids)


def test_architecture_parameters():
    view = read_link({"model": "convnext_xlarge", "size": "384", "overlay": "swin_base_patch4_window7_224"})
    assert (view.model, view.size, view.overlay) == ("convnext_xlarge", 384, "swin_base_patch4_window7_224")
    assert view.tab == "architecture"  # the parameters name their tab when the link does not
    assert read_link({"overlay": "none"}).overlay == ""


def test_lessons_and_stages_count_from_one():
    assert read_link({"lesson": "1"}).lesson == 1
    assert read_link({"lesson": str(len(lessons()))}).lesson == len(lessons())
    assert [read_link({"stage": str(s)}).stage for s in range(1, 5)] == [1, 2, 3, 4]


@pytest.mark.parametrize("key, value", [
    ("tab", "nope"), ("model", "convnext_gigantic"), ("size", "100"), ("size", "big"), ("overlay", "x"),
    ("regime", "resnet101"), ("step", "kernel13"), ("step", "0"), ("lesson", "0"), ("lesson", "99"),
    ("stage", "5"), ("stage", "two"),
])
def test_a_wrong_value_is_ignored_with_a_sentence_that_names_it(key, value):
    view = read_link({key: value})
    assert getattr(view, key) is None
    assert len(view.ignored) == 1 and f"`{key}={value}`" in view.ignored[0]


def test_parameters_of_others_are_left_alone():
    assert read_link({"__theme": "dark", "deep_link": "x"}) == View()


@pytest.mark.parametrize("query", [
    "tab=roadmap&regime=resnet200&step=kernel7", "tab=roadmap&regime=resnet50&step=convnext_t",
    "tab=architecture&model=convnext_large&size=384&overlay=resnet50", "tab=architecture&model=resnet50&size=224",
    "tab=lessons&lesson=4", "tab=blocks&stage=3", "tab=erf", "tab=bench",
])
def test_the_address_of_a_view_reopens_it(query):
    view = read_link(dict(parse_qsl(query)))
    assert address(view) == "?" + query
    assert read_link(dict(parse_qsl(address(view)[1:]))) == view


def test_the_address_names_only_the_parameters_of_the_tab_shown():
    everything = View(tab="blocks", model="resnet50", size=224, regime="resnet200", step=3, lesson=2, stage=4)
    assert dict(parse_qsl(address(everything)[1:])) == {"tab": "blocks", "stage": "4"}
    assert set(PARAMETERS) == {"tab", "model", "size", "overlay", "regime", "step", "lesson", "stage"}
