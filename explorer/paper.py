"""The paper's printed figures, read from the CSV tables in `assets/paper/`.

These are what the paper prints, kept apart from what the project counts, so that every view can
show both side by side and say where they differ.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from explorer.analysis import summarize
from explorer.roadmap import get_step
from explorer.zoo import IN1K_CLASSES, REGISTRY, ModelSpec

PAPER_DIR = Path(__file__).resolve().parent.parent / "assets" / "paper"


FIGURE_TABLES = {  # CSV in assets/paper/ -> where its figures are printed
    "models": "ConvNeXt paper, Tables 1, 8 and 12",
    "isotropic": "ConvNeXt paper, Section 3.3 (isotropic ConvNeXt vs ViT)",
    "convnextv2": "ConvNeXt V2 README, ImageNet-1K fine-tuned models",
}


@dataclass(frozen=True)
class PaperFigure:
    """One model at one input size as a paper prints it (ImageNet-1K head)."""

    arch: str  # timm architecture (or the zoo's, for the isotropic ConvNeXt)
    paper_name: str  # "ConvNeXt-T"
    input_size: int
    gflops: float  # the paper's figure (one decimal, two for ResNet-50)
    gflops_alt: float | None  # a second, different figure the paper prints elsewhere
    note: str  # why a figure differs from the count, or ""
    params_m: float | None = None  # parameters in millions, where the table prints them
    top1: float | None = None  # ImageNet-1K top-1 (%), where the table prints it
    source: str = FIGURE_TABLES["models"]


def _optional_float(text: str | None) -> float | None:
    return float(text) if text else None


@cache
def model_figures() -> tuple[PaperFigure, ...]:
    """Every printed figure of every table in FIGURE_TABLES, in their order."""
    figures = []
    for table, source in FIGURE_TABLES.items():
        figures += [
            PaperFigure(
                arch=row["arch"],
                paper_name=row["paper_name"],
                input_size=int(row["input_size"]),
                gflops=float(row["gflops"]),
                gflops_alt=_optional_float(row.get("gflops_alt")),
                note=row["note"],
                params_m=_optional_float(row.get("params_m")),
                top1=_optional_float(row.get("top1")),
                source=source,
            )
            for row in read_table(table)
        ]
    return tuple(figures)


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


def spec_of(arch: str) -> ModelSpec:
    """The zoo's ImageNet-1K model of a timm architecture."""
    return next(s for s in REGISTRY.values() if s.arch == arch and s.num_classes == IN1K_CLASSES)


@cache
def read_table(name: str) -> tuple[dict[str, str], ...]:
    """The rows of `assets/paper/NAME.csv` as they are printed (text cells; empty where the paper has none)."""
    with open(PAPER_DIR / f"{name}.csv", newline="") as f:
        return tuple(csv.DictReader(f))


def size_suffix(input_size: int) -> str:
    return "" if input_size == 224 else f" @{input_size}"


@dataclass(frozen=True)
class PaperThroughput:
    """One row of the paper's Table 12: images per second on an A100 (TF32, channels-last), with the
    model's ImageNet-1K top-1 from Table 1."""

    arch: str  # timm architecture
    paper_name: str  # "ConvNeXt-T"
    input_size: int
    gflops: float  # as Table 12 prints it
    images_per_s: float
    top1_in1k: float | None  # trained on ImageNet-1K; None where the paper prints none
    top1_in22k: float | None  # pre-trained on ImageNet-22K, fine-tuned on 1K

    @property
    def family(self) -> str:  # "ConvNeXt" or "Swin"
        return self.paper_name.split("-")[0]

    @property
    def size(self) -> str:  # "T", "S", "B", "L", "XL"
        return self.paper_name.split("-")[1]

    @property
    def title(self) -> str:  # "ConvNeXt-B @384"
        return self.paper_name + size_suffix(self.input_size)


@cache
def table_12() -> tuple[PaperThroughput, ...]:
    """Every row of Table 12, in the paper's order."""
    return tuple(PaperThroughput(row["arch"], row["paper_name"], int(row["input_size"]), float(row["gflops"]),
                                 float(row["images_per_s"]), _optional_float(row["top1_in1k"]),
                                 _optional_float(row["top1_in22k"]))
                 for row in read_table("a100_throughput"))


def imagenet_results(pretraining: str) -> list[dict]:
    """ConvNeXt and Swin (Table 12) and ResNet-50 (Figure 2): the paper's ImageNet-1K top-1 against
    the counted GFLOPs. `pretraining` is "in1k" or "in22k" (pre-trained on 22K, fine-tuned on 1K)."""
    points = []
    for row in table_12():
        top1 = getattr(row, f"top1_{pretraining}")
        if top1 is not None:
            points.append(dict(family=spec_of(row.arch).family, name=row.title,
                               gflops=summarize(row.arch, row.input_size).gflops, top1=top1))
    if pretraining == "in1k":
        for step, recipe in (("resnet50", "90 epochs"), ("recipe", "modern recipe")):  # one network, two recipes
            points.append(dict(family="ResNet", name=f"ResNet-50, {recipe}",
                               gflops=summarize("resnet50").gflops, top1=get_step(step).paper_top1))
    return points


PAIRED = ("Swin", "ConvNeXt")


def family_pairs(table: str, name: str, value: str, setting: Callable[[dict[str, str]], str]) -> list[tuple]:
    """Swin's and ConvNeXt's figure of equal size side by side from one of the paper's tables:
    (label, Swin's value or None, ConvNeXt's value or None), in the table's order.

    `name` is the column with "ConvNeXt-B"-style names, `value` the figure's column, and `setting`
    says what else must match for two rows to pair (input size, framework, pre-training).
    """
    pairs: dict[str, dict[str, float]] = {}
    for row in read_table(table):
        family, _, size = row[name].partition("-")
        if family in PAIRED and row[value]:
            pairs.setdefault(f"{size}{setting(row)}", {})[family] = float(row[value])
    return [(label, both.get("Swin"), both.get("ConvNeXt")) for label, both in pairs.items()]


def throughput_pairs() -> list[tuple]:
    """Table 12's size pairs on an A100: ("B @384", Swin's images/s, ConvNeXt's images/s)."""
    pairs: dict[str, dict[str, float]] = {}
    for row in table_12():
        pairs.setdefault(row.size + size_suffix(row.input_size), {})[row.family] = row.images_per_s
    return [(label, both["Swin"], both["ConvNeXt"]) for label, both in pairs.items() if len(both) == 2]


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
    spec = spec_of(figure.arch)
    summary = summarize(spec.name, figure.input_size)
    return FamilyPoint(spec.family, figure.paper_name + size_suffix(figure.input_size), summary.params / 1e6, summary.gflops,
                       figure.gflops)
