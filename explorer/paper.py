"""The paper's printed figures, read from the CSV tables in `assets/paper/`.

These are what the paper prints, kept apart from what the project counts, so that every view can
show both side by side and say where they differ.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from explorer.analysis import summarize
from explorer.zoo import IN1K_CLASSES, REGISTRY, ModelSpec

PAPER_DIR = Path(__file__).resolve().parent.parent / "assets" / "paper"


@dataclass(frozen=True)
class PaperFigure:
    """One model at one input size as the paper prints it (ImageNet-1K head)."""

    arch: str  # timm architecture
    paper_name: str  # "ConvNeXt-T"
    input_size: int
    gflops: float  # the paper's figure (one decimal, two for ResNet-50)
    gflops_alt: float | None  # a second, different figure the paper prints elsewhere
    note: str  # why a figure differs from the count, or ""


def _optional_float(text: str) -> float | None:
    return float(text) if text else None


@cache
def model_figures() -> tuple[PaperFigure, ...]:
    with open(PAPER_DIR / "models.csv", newline="") as f:
        return tuple(
            PaperFigure(
                arch=row["arch"],
                paper_name=row["paper_name"],
                input_size=int(row["input_size"]),
                gflops=float(row["gflops"]),
                gflops_alt=_optional_float(row["gflops_alt"]),
                note=row["note"],
            )
            for row in csv.DictReader(f)
        )


def figure_for(spec: ModelSpec, input_size: int) -> PaperFigure | None:
    """The paper's figure for this model and input size, if the paper prints one.

    Roadmap steps carry their figure in their spec. The tables' figures are for ImageNet-1K heads; a 22K head adds parameters and FLOPs the paper
    does not list, so those variants get none.
    """
    if spec.paper_gflops is not None:  # a roadmap step: the figure is part of its spec
        if input_size != spec.input_size:
            return None
        return PaperFigure(spec.arch, spec.label, input_size, spec.paper_gflops, None, spec.paper_note)
    if spec.num_classes != IN1K_CLASSES:
        return None
    for figure in model_figures():
        if figure.arch == spec.arch and figure.input_size == input_size:
            return figure
    return None


@dataclass(frozen=True)
class FamilyPoint:
    """One model of the family chart: counted figures and, where printed, the paper's."""

    family: str
    name: str  # the paper's name with its input size, e.g. "ConvNeXt-B @384"
    params_m: float
    gflops: float
    paper_gflops: float | None


def family_point(figure: PaperFigure) -> FamilyPoint:
    """The model behind one of the paper's figures (1K head), counted at the same input size."""
    spec = next(s for s in REGISTRY.values() if s.arch == figure.arch and s.num_classes == IN1K_CLASSES)
    summary = summarize(spec.name, figure.input_size)
    suffix = "" if figure.input_size == 224 else f" @{figure.input_size}"
    return FamilyPoint(spec.family, figure.paper_name + suffix, summary.params / 1e6, summary.gflops,
                       figure.gflops)
