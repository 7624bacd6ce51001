"""The lessons in `lessons/`: their index (`lessons.toml`) and their texts, with live numbers filled in.

A lesson's Markdown never types a model's size or cost; it writes a placeholder and this module
counts the model when the lesson is shown:

    {{gflops:NAME}}         counted GFLOPs of zoo model NAME at its default input size
    {{gflops:NAME@384}}     ... at input size 384
    {{params:NAME}}         parameters, in millions
    {{top1:STEP}}           the paper's ImageNet-1K top-1 (%) of roadmap step STEP
    {{paper_gflops:STEP}}   the paper's printed GFLOPs of roadmap step STEP

An unknown placeholder, model or step is an error, so a typo in a lesson fails the tests.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from explorer.analysis import summarize
from explorer.roadmap import get_step
from explorer.zoo import ExplorerError

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
PANELS = ("results", "macro", "resnextify", "inverted", "kernel", "micro", "family", "next", "beyond", "inside")
TABS = ("architecture", "roadmap", "blocks", "predict", "inside", "bench", "erf", "counting", "collapse")
PLACEHOLDER = re.compile(r"\{\{\s*(\w+):([\w:.\-]+?)(?:@(\d+))?\s*\}\}")


@dataclass(frozen=True)
class Lesson:
    """One entry of `lessons/lessons.toml`."""

    id: str
    title: str
    file: str  # the Markdown text, in lessons/
    steps: tuple[str, ...]  # roadmap steps (ResNet-50 regime) the lesson discusses
    panel: str  # the interactive part, one of PANELS
    shows: str  # what the interactive part shows, in a sentence or two
    tabs: tuple[str, ...]  # full tabs the lesson links to, from TABS


@cache
def lessons() -> tuple[Lesson, ...]:
    """Every lesson, in order."""
    with open(LESSONS_DIR / "lessons.toml", "rb") as f:
        entries = tomllib.load(f)["lesson"]
    found = tuple(Lesson(e["id"], e["title"], e["file"], tuple(e["steps"]), e["panel"], e["shows"],
                         tuple(e["tabs"])) for e in entries)
    for lesson in found:
        if lesson.panel not in PANELS or not set(lesson.tabs) <= set(TABS):
            raise ValueError(f"lesson {lesson.id!r}: unknown panel or tab in lessons.toml")
        for step in lesson.steps:
            get_step(step)  # raises for an unknown step
    return found


def _value(kind: str, name: str, size: str | None) -> str:
    if kind in ("gflops", "params"):
        summary = summarize(name, int(size) if size else None)
        return f"{summary.gflops:.2f}" if kind == "gflops" else f"{summary.params / 1e6:.1f}"
    if kind in ("top1", "paper_gflops"):
        value = getattr(get_step(name), "paper_top1" if kind == "top1" else "paper_gflops")
        if value is None:
            raise ExplorerError(f"The paper prints no {kind} for step {name!r}.")
        return f"{value:.2f}"
    raise ExplorerError(f"Unknown placeholder kind {kind!r}: use gflops, params, top1 or paper_gflops.")


def render(text: str) -> str:
    """`text` with every placeholder replaced by its live value."""
    return PLACEHOLDER.sub(lambda m: _value(*m.groups()), text)


@cache
def text(index: int) -> str:
    """Lesson `index`'s Markdown with its numbers filled in (counted once per process)."""
    return render((LESSONS_DIR / lessons()[index].file).read_text())
