"""Inference throughput, measured the way the paper's Table 12 was, and set beside its A100 figures.

A measurement runs one model on one random batch: warm-up passes first (compilation and cuDNN's
autotuning happen there), then `repeats` timed passes, each timed on its own (CUDA events on a GPU,
a synchronized wall clock elsewhere). Compared with timm's plain path, the two take turns pass by
pass, so that a busy machine slows both alike. Throughput is the batch divided by the median pass, so one
slow pass (another process, a clock change) does not move it. Weights are random: the arithmetic,
and so the time, does not depend on their values.

The paper measured on an A100 with TF32 and channels-last memory layout; its figures are in
`assets/paper/a100_throughput.csv`. The paper's point is the ConvNeXt / Swin ratio at equal FLOPs
(T/T, S/S, B/B, L/L at 224, B/B and L/L at 384), which `ratios` computes for whatever was measured.
"""
from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from torch import nn

from explorer.device import (Precision, RunOptions, check_precision, default_precision, device_label, exclusive,
                             guard_memory, pick_device, runner, timed)
from explorer.paper import PaperThroughput, table_12
from explorer.zoo import IN1K_CLASSES, ExplorerError, build_model, check_input_size, get_spec

DEFAULT_MODELS = ("convnext_tiny", "swin_tiny_patch4_window7_224")  # the paper's first pair
DEFAULT_BATCH = {"cuda": 256, "mps": 64, "cpu": 8}  # per device kind; 256 fills an A100 or H100
WARMUP = 3  # untimed passes after the one-time preparation (which already ran one)
REPEATS = 10  # timed passes; throughput comes from their median
BENCH_MODELS_KEPT = 2  # random-weight models kept between runs, so their compiled graphs are reused

Progress = Callable[[float, str], None]  # (fraction done, what runs now), e.g. a gr.Progress


# --- the paper's figures --------------------------------------------------------------------------

def paper_throughput(name: str, input_size: int) -> PaperThroughput | None:
    """The paper's A100 row for a registry model at this input size, if Table 12 has one (its
    figures are for ImageNet-1K heads, so a 22K head gets none)."""
    spec = get_spec(name)
    if spec.num_classes != IN1K_CLASSES:
        return None
    return next((row for row in table_12() if row.arch == spec.arch and row.input_size == input_size), None)


# --- the arithmetic -------------------------------------------------------------------------------

def images_per_second(seconds: Sequence[float], batch: int) -> float:
    """Throughput from the measured seconds of several passes over a batch: batch / median pass."""
    if not seconds or min(seconds) <= 0 or batch < 1:
        raise ValueError(f"need positive pass times and a batch of at least 1, not {seconds}, {batch}")
    return batch / statistics.median(seconds)


@dataclass(frozen=True)
class Measurement:
    """One model's throughput on this machine, with the paper's A100 figure beside it."""

    model: str  # registry name
    title: str  # the paper's name where it has one ("Swin-B @384"), else the registry's label
    input_size: int
    batch: int
    device: str  # what a person reads, e.g. "cuda:0 (NVIDIA H100 80GB HBM3)"
    precision: str
    channels_last: bool
    compiled: bool
    seconds: tuple[float, ...]  # one per timed pass over the batch
    paper_images_per_s: float | None  # Table 12 (A100), same model and input size
    plain_images_per_s: float | None = None  # timm's plain path (fp32, contiguous, eager), same run

    @property
    def images_per_s(self) -> float:
        return images_per_second(self.seconds, self.batch)

    @property
    def latency_ms(self) -> float:
        """The median pass over the whole batch."""
        return statistics.median(self.seconds) * 1000

    @property
    def speedup(self) -> float | None:
        """How many times faster than timm's plain path, when that was measured."""
        return self.images_per_s / self.plain_images_per_s if self.plain_images_per_s else None

    def to_json(self) -> dict:
        return {**asdict(self), "seconds": list(self.seconds), "images_per_s": self.images_per_s,
                "latency_ms": self.latency_ms, "speedup": self.speedup}


@dataclass(frozen=True)
class Ratio:
    """ConvNeXt's throughput over Swin's at the same size letter and input size."""

    convnext: str  # titles, e.g. "ConvNeXt-T"
    swin: str
    input_size: int
    measured: float
    paper: float  # the same ratio from Table 12


def ratios(measurements: Sequence[Measurement]) -> list[Ratio]:
    """One Ratio for each ConvNeXt/Swin pair of the paper that was measured at the same input size."""
    by_size: dict[tuple[str, int], dict[str, tuple[Measurement, PaperThroughput]]] = {}
    for measurement in measurements:
        paper = paper_throughput(measurement.model, measurement.input_size)
        if paper is not None:
            by_size.setdefault((paper.size, paper.input_size), {})[paper.family] = (measurement, paper)
    found = []
    for (_, input_size), families in by_size.items():
        if {"ConvNeXt", "Swin"} <= families.keys():
            (convnext, convnext_paper), (swin, swin_paper) = families["ConvNeXt"], families["Swin"]
            found.append(Ratio(convnext.title, swin.title, input_size, convnext.images_per_s / swin.images_per_s,
                               convnext_paper.images_per_s / swin_paper.images_per_s))
    return found


@dataclass(frozen=True)
class BenchReport:
    measurements: tuple[Measurement, ...]
    ratios: tuple[Ratio, ...]

    def to_json(self) -> dict:
        return {"measurements": [m.to_json() for m in self.measurements],
                "ratios": [asdict(ratio) for ratio in self.ratios]}


# --- measuring ------------------------------------------------------------------------------------

@lru_cache(maxsize=BENCH_MODELS_KEPT)
def _bench_model(name: str, input_size: int) -> nn.Module:
    return build_model(name, input_size)  # random weights, on the CPU; the runner makes its own copy


def pass_seconds(name: str, input_size: int, batch: int, ways: Sequence[RunOptions], warmup: int = WARMUP,
                 repeats: int = REPEATS) -> list[tuple[float, ...]]:
    """For each way of running the model (all on one device), the seconds of each of `repeats` passes
    of a random batch, after `warmup` passes. The ways take turns pass by pass, so that a change in
    the machine's load during the run hits them all alike and their ratio stays fair."""
    shape, device = (batch, 3, input_size, input_size), ways[0].device

    def passes() -> list[tuple[float, ...]]:
        with exclusive():
            runs = [runner(_bench_model(name, input_size), options, shape) for options in ways]
            batches = [run.place(torch.randn(shape)) for run in runs]
            for _ in range(warmup):
                for run, placed in zip(runs, batches):
                    run(placed)
            seconds: list[list[float]] = [[] for _ in runs]
            for _ in range(repeats):
                for run, placed, times in zip(runs, batches, seconds):
                    times.append(timed(lambda: run(placed), device)[1])
            return [tuple(times) for times in seconds]

    return guard_memory(passes, device, f"A batch of {batch} for {name} at {input_size}x{input_size}",
                        f"try a smaller batch, e.g. {max(1, batch // 2)}")


def _title(name: str, input_size: int) -> str:
    spec, paper = get_spec(name), paper_throughput(name, input_size)
    if paper is not None:
        return paper.title
    return spec.label if input_size == spec.input_size else f"{spec.label} @{input_size}"


def _check_counts(names: Sequence[str], batch: int, warmup: int, repeats: int) -> None:
    if not names:
        raise ExplorerError("Choose at least one model to measure.")
    if batch < 1:
        raise ExplorerError(f"The batch must hold at least 1 image, not {batch}.")
    if repeats < 1 or warmup < 0:
        raise ExplorerError(f"Use at least 1 timed pass and no negative warm-up (got {repeats} and {warmup}).")


def benchmark(names: Sequence[str] = DEFAULT_MODELS, batch: int | None = None, input_size: int | None = None,
              precision: str | Precision | None = None, compile: bool = False, device: str | None = None,
              baseline: bool = False, warmup: int = WARMUP, repeats: int = REPEATS,
              progress: Progress | None = None) -> BenchReport:
    """Throughput of each model with channels-last, `precision` and optionally torch.compile.

    None means: batch by device (DEFAULT_BATCH), each model's own input size, TF32 where the device
    has it (the paper's setting) else fp32, the best device here. `baseline` also measures timm's
    plain path (fp32, contiguous, eager) in the same run, for the speed-up.
    """
    chosen = pick_device(device)
    options = RunOptions(chosen, Precision.parse(precision) if precision else default_precision(chosen),
                         channels_last=True, compile=compile)
    check_precision(options.precision, chosen)  # before anything is measured
    batch = DEFAULT_BATCH[chosen.type] if batch is None else batch
    _check_counts(names, batch, warmup, repeats)
    sizes = [check_input_size(input_size or get_spec(name).input_size) for name in names]  # checks names too
    measurements = []
    for index, (name, size) in enumerate(zip(names, sizes)):
        if progress:
            progress(index / len(names), f"measuring {name} at {size}x{size}, batch {batch}")
        ways = [RunOptions.plain(chosen), options] if baseline else [options]
        *plain, seconds = pass_seconds(name, size, batch, ways, warmup, repeats)
        paper = paper_throughput(name, size)
        measurements.append(Measurement(
            name, _title(name, size), size, batch, device_label(chosen), options.precision.value,
            options.channels_last, options.compile, seconds, paper.images_per_s if paper else None,
            images_per_second(plain[0], batch) if plain else None))
    if progress:
        progress(1.0, "measured")
    return BenchReport(tuple(measurements), tuple(ratios(measurements)))


# --- writing --------------------------------------------------------------------------------------

CSV_COLUMNS = ("model", "title", "input_size", "batch", "device", "precision", "channels_last", "compiled",
               "repeats", "latency_ms", "images_per_s", "paper_a100_images_per_s", "plain_images_per_s", "speedup")


def _csv_row(m: Measurement) -> tuple:
    def rounded(value: float | None) -> float | str:
        return "" if value is None else round(value, 2)

    return (m.model, m.title, m.input_size, m.batch, m.device, m.precision, m.channels_last, m.compiled,
            len(m.seconds), round(m.latency_ms, 3), rounded(m.images_per_s), rounded(m.paper_images_per_s),
            rounded(m.plain_images_per_s), "" if m.speedup is None else round(m.speedup, 3))


def table_rows(report: BenchReport) -> list[tuple]:
    """The measurements as rows under CSV_COLUMNS (what the CSV file and the app's table hold)."""
    return [_csv_row(measurement) for measurement in report.measurements]


def to_csv(report: BenchReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(table_rows(report))
    return out.getvalue()


def format_report(report: BenchReport) -> str:
    """The measurements and ratios as text for a person."""
    first = report.measurements[0]
    layout = "channels-last" if first.channels_last else "contiguous"
    lines = [f"{first.device}, {first.precision}, {layout}, {'compiled' if first.compiled else 'eager'}, "
             f"batch {first.batch}, median of {len(first.seconds)} timed passes:"]
    width = max(len(m.title) for m in report.measurements)
    for m in report.measurements:
        paper = f", paper A100 {m.paper_images_per_s:,.1f}" if m.paper_images_per_s else ""
        plain = f", {m.speedup:.2f}x timm's plain fp32 eager ({m.plain_images_per_s:,.1f})" if m.speedup else ""
        lines.append(f"{m.title:<{width}} {m.images_per_s:>10,.1f} images/s  ({m.latency_ms:,.1f} ms per batch of "
                     f"{m.batch}{paper}{plain})")
    for ratio in report.ratios:
        lines.append(f"{ratio.convnext} / {ratio.swin} at {ratio.input_size}: {ratio.measured:.2f}x here, "
                     f"{ratio.paper:.2f}x in the paper")
    return "\n".join(lines)
