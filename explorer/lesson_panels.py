"""What each lesson's live part shows: one function per panel (`explorer.lessons.PANELS`), from the
values of its controls to its text and figures. Every count comes from `explorer.figure_cache`, and
a panel drawn once is kept, as the views of `explorer.views` are (do not modify its figures);
`choices()` lists every value of the controls, which `precount_lessons` draws ahead of the first visitor.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache, partial

import plotly.graph_objects as go

from explorer.analysis import of_kind, summarize, typical_block
from explorer.compare import STAGES, report
from explorer.erf import ErfResult, compare, comparison, growth
from explorer.inspect import depthwise_kernels, distance_profiles
from explorer.layouts import TRIOS
from explorer.lessons import lessons, text
from explorer.paper import PAIRED, family_pairs, imagenet_results, throughput_pairs
from explorer.plots import (block_diagram, distance_chart, erf_grid, erf_profiles, kernel_grid, paired_bars,
                            results_chart, roadmap_chart, stage_bars, sweep_chart)
from explorer.report import counted, erf_table, html_table, paper_comparison
from explorer.roadmap import get_step, roadmap_table, step_name, what_if
from explorer.views import VIEWS_KEPT, isotropic
from explorer.weights import BUNDLED, bundled_available, load, paper_or_random
from explorer.zoo import IN1K_CLASSES, get_spec, specs_by_family

Progress = Callable[[float, str], None]
_MEASURING = threading.Lock()  # see kernel_fields

PRETRAINING = {"in1k": "Trained on ImageNet-1K", "in22k": "Pre-trained on ImageNet-22K, fine-tuned on 1K"}
MACRO_STEPS = ("recipe", "stage_ratio", "patchify")
METRICS = ("gflops", "params")
WIDTHS = (48, 64, 80, 96, 112, 128)  # width C of stage 1 of the depthwise network
KERNELS = {3: "move_dw", 5: "kernel5", 7: "kernel7", 9: "kernel9", 11: "kernel11"}  # size -> its roadmap step
MICRO_STEPS = ("gelu", "fewer_act", "fewer_norm", "ln", "convnext_t")
FAMILY_SIZES = (224, 384)


def family_models() -> list[str]:
    """The ConvNeXt models of the family panel: ImageNet-1K heads at 224."""
    return [s.name for s in specs_by_family()["ConvNeXt"] if s.num_classes == IN1K_CLASSES and s.input_size == 224]


def _step_line(step_id: str) -> str:
    """A step's counted figures beside the paper's."""
    step, summary = get_step(step_id), summarize(step_name(step_id))
    line = (f"**{step.title}**: {summary.gflops:.3f} GFLOPs and {summary.params / 1e6:.2f} M parameters "
            f"counted; the paper prints {step.paper_gflops:.2f} GFLOPs and {step.paper_top1:.2f}% top-1.")
    return f"{line} *{step.note}*" if step.note else line


@lru_cache(maxsize=VIEWS_KEPT)
def show_results(pretraining: str) -> tuple[go.Figure, go.Figure]:
    rows = roadmap_table()
    return (results_chart(imagenet_results(pretraining), PRETRAINING[pretraining]),
            roadmap_chart(rows[:-1], "convnext_t", rows[-1]))


@lru_cache(maxsize=VIEWS_KEPT)
def show_macro(step_id: str, metric: str) -> tuple[str, go.Figure]:
    summaries = [summarize(step_name("resnet50")), summarize(step_name(step_id))]
    return _step_line(step_id), stage_bars(summaries, metric)


@lru_cache(maxsize=VIEWS_KEPT)
def show_width(width: int) -> tuple[str, go.Figure]:
    width = int(width)
    counts = [what_if("depthwise", "width", w).gflops for w in WIDTHS]
    printed = {64: get_step("depthwise").paper_top1, 96: get_step("width").paper_top1}
    chosen = what_if("depthwise", "width", width)
    line = (f"The depthwise network with C = {width}: **{chosen.gflops:.3f} GFLOPs**, "
            f"{chosen.params / 1e6:.2f} M parameters. ResNet-50 counts {summarize(step_name('resnet50')).gflops:.3f}.")
    return line, sweep_chart(list(WIDTHS), counts, [printed.get(w) for w in WIDTHS], width, "width C of stage 1")


@lru_cache(maxsize=VIEWS_KEPT)
def show_inverted(stage: int) -> tuple[str, go.Figure, go.Figure]:
    lines, figures = [], []
    for step_id in ("width", "inverted"):
        block = typical_block(step_name(step_id), int(stage))
        figures.append(block_diagram(list(block.layers),
                                     f"{get_step(step_id).title}: {block.block}, {block.params / 1e3:.1f} K params"))
        lines.append(_step_line(step_id))
    return "\n\n".join(lines), *figures


def kernel_fields(progress: Progress | None = None) -> list[ErfResult]:
    """The effective receptive fields of the kernel sweep's five networks (random init: no trained
    weights exist for them), measured once and kept on disk by `explorer.erf`. One measurement at a
    time: a second caller (the background fill, another visitor) waits and reads the first's results."""
    report_to = progress or (lambda _fraction, _what: None)
    with _MEASURING:
        return compare(comparison("kernel_sweep"),
                       lambda fraction, what: report_to(fraction, f"Receptive fields: {what}"))


def show_kernel(size: int, progress: Progress | None = None) -> tuple[str, go.Figure, str, go.Figure, go.Figure, str]:
    size = int(size)
    counts = [what_if("move_dw", "kernel_size", k).gflops for k in KERNELS]
    chosen = what_if("move_dw", "kernel_size", size)
    line = (f"Kernel {size}x{size}: **{chosen.gflops:.3f} GFLOPs**, {chosen.params / 1e6:.2f} M parameters; "
            f"the paper's top-1 for it is {get_step(KERNELS[size]).paper_top1:.2f}%.")
    top1 = [get_step(step).paper_top1 for step in KERNELS.values()]
    results = kernel_fields(progress)
    first, last = results[0], results[-1]
    fields = (f"**Effective receptive fields** of the five networks ({first.weights}, {first.images} noise "
              f"images, {first.stage} at {first.input_size}x{first.input_size}). {growth(results)} At t = 0.99 "
              f"it goes from {first.ratios[3].ratio:.3f} (3x3) to {last.ratios[3].ratio:.3f} (11x11).")
    return (line, sweep_chart(list(KERNELS), counts, top1, size, "depthwise kernel size"), fields,
            erf_grid(results, comparison("kernel_sweep").title),
            erf_profiles(results, "Contribution against distance from the centre"), erf_table(results))


@lru_cache(maxsize=VIEWS_KEPT)
def show_micro(step_id: str) -> tuple[str, go.Figure]:
    block = typical_block(step_name(step_id))
    counts = (f"One block ({block.block}) has norm layers: {counted(of_kind(block.layers, 'norm'))}; "
              f"activations: {counted(of_kind(block.layers, 'act'))}.")
    return f"{_step_line(step_id)}\n\n{counts}", block_diagram(list(block.layers), f"{get_step(step_id).title}: one block")


@lru_cache(maxsize=VIEWS_KEPT)
def show_family(name: str, size: int) -> tuple[str, str]:
    summary = summarize(name, int(size))
    return f"**{summary.label}** at {summary.input_size}: {paper_comparison(summary)}", html_table(summary)


@lru_cache(maxsize=VIEWS_KEPT)
def show_next(size: str) -> tuple[str, go.Figure, go.Figure]:
    """The isotropic comparison of one size, and the ConvNeXt V2 block at stage 1 of ConvNeXt-T."""
    v2 = report("convnextv2", *STAGES[1])
    return *isotropic(size), block_diagram(list(v2.layers), f"{v2.title}: {v2.params / 1e3:.1f} K params")


def _paired_chart(pairs: list[tuple], title: str, axis: str, ratio: bool = False) -> go.Figure:
    labels = [f"{label} ({convnext / swin:.2f}x)" if ratio else label for label, swin, convnext in pairs]
    series = {family: [pair[i + 1] for pair in pairs] for i, family in enumerate(PAIRED)}
    return paired_bars(labels, series, title, axis)


BEYOND = {  # chooser value -> (label, the chart)
    "coco": ("COCO detection", lambda: _paired_chart(
        family_pairs("coco", "backbone", "ap_box", lambda r: f", {r['framework']}, {r['pretraining']}"),
        "COCO box AP (Table 3), 3x schedule", "box AP")),
    "ade20k": ("ADE20K segmentation", lambda: _paired_chart(
        family_pairs("ade20k", "backbone", "miou_ms", lambda r: f", {r['input_crop']}px, {r['pretraining']}"),
        "ADE20K mIoU with UperNet, multi-scale testing (Table 4)", "mIoU")),
    "throughput": ("A100 throughput", lambda: _paired_chart(
        throughput_pairs(), "A100 throughput at equal FLOPs (Table 12); ConvNeXt / Swin in brackets",
        "images / s", ratio=True)),
}


@lru_cache(maxsize=VIEWS_KEPT)
def show_beyond(table: str) -> go.Figure:
    return BEYOND[table][1]()


def show_inside(stage: int) -> tuple[str, go.Figure, go.Figure]:
    loaded, weights = ((load(BUNDLED), "the bundled model's trained weights") if bundled_available()
                       else paper_or_random("convnext_tiny"))
    stage = min(int(stage), len(get_spec(loaded.name).layout.stages)) - 1
    line = f"**{get_spec(loaded.name).label}** with {weights}."
    return (line, kernel_grid(depthwise_kernels(loaded, stage, 0, sort_by_norm=True)),
            distance_chart(distance_profiles(loaded), "How much of the 7x7 kernel each stage uses"))


def choices() -> dict[str, list[tuple]]:
    """Every value of every panel's controls that counts or loads a model: panel -> argument tuples."""
    return {
        "results": [(p,) for p in PRETRAINING],
        "macro": [(s, METRICS[0]) for s in MACRO_STEPS],
        "resnextify": [(w,) for w in WIDTHS],
        "inverted": [(s,) for s in STAGES],
        "kernel": [(k,) for k in KERNELS],
        "micro": [(s,) for s in MICRO_STEPS],
        "family": [(n, s) for n in family_models() for s in FAMILY_SIZES],
        "next": [(s,) for s in TRIOS],
        "inside": [(s,) for s in STAGES],  # loads the bundled model: 3.4 s on the first visit otherwise
    }


SHOWS = {"results": show_results, "macro": show_macro, "resnextify": show_width, "inverted": show_inverted,
         "kernel": show_kernel, "micro": show_micro, "family": show_family, "next": show_next,
         "beyond": show_beyond, "inside": show_inside}


def precount_lessons() -> list[tuple[str, Callable[[], object]]]:
    """(what, a call) that counts every lesson's live numbers: the texts' placeholders and each panel
    at every choice (the kernel panel's receptive fields are measured apart: `kernel_fields`)."""
    work: list[tuple[str, Callable[[], object]]] = [
        (f"lesson {i + 1}'s text", partial(text, i)) for i in range(len(lessons()))]
    for panel, values in choices().items():
        show = SHOWS[panel] if panel != "kernel" else _kernel_counts
        work += [(f"the {panel} lesson at {values}", partial(show, *values)) for values in values]
    return work


def _kernel_counts(size: int) -> float:
    return what_if("move_dw", "kernel_size", int(size)).gflops
