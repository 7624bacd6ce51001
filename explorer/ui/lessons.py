"""Lessons tab: the paper's argument one lesson at a time, each with a live part to try.

The texts and their index live in `lessons/` (see `explorer.lessons`). Every lesson has one panel
here: a few controls and the figures they drive. A panel is filled when its lesson is shown, so the
tab costs nothing until someone opens it. Where the reader is survives a reload (browser storage).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from explorer.analysis import default_block, of_kind, summarize, trace_block
from explorer.compare import STAGES, report
from explorer.erf import compare, comparison
from explorer.inspect import depthwise_kernels, distance_profiles
from explorer.lessons import lessons, text
from explorer.paper import PAIRED, family_pairs, imagenet_results, throughput_pairs
from explorer.plots import (block_diagram, distance_chart, erf_grid, erf_profiles, kernel_grid, paired_bars,
                            results_chart, roadmap_chart, stage_bars, sweep_chart)
from explorer.report import counted, erf_table, html_table, paper_comparison
from explorer.roadmap import get_step, roadmap_table, step_name, steps, what_if
from explorer.ui.architecture import ISOTROPIC_SIZES, show_isotropic
from explorer.ui.common import friendly
from explorer.ui.erf import growth
from explorer.ui.inside import paper_or_random
from explorer.ui.links import Linked
from explorer.weights import BUNDLED, bundled_available, load
from explorer.zoo import IN1K_CLASSES, build_model, get_spec, specs_by_family

STORAGE_KEY = "convnext-explorer-lesson"
TAB_LABELS = {"architecture": "Architecture", "roadmap": "Roadmap", "blocks": "Blocks", "predict": "Predict",
              "inside": "Look inside", "bench": "Benchmark", "erf": "Receptive field", "counting": "Counting",
              "collapse": "Feature collapse"}
INPUT_SIZE = 224
# A panel's redraws run one at a time, in the order asked: a drawing started by Next must not land
# after (and overwrite) the one for a choice the reader made while it was running.
PANEL_EVENTS = {"concurrency_id": "lesson-panel", "concurrency_limit": 1}
WIDTHS = [48, 64, 80, 96, 112, 128]
KERNELS = {3: "move_dw", 5: "kernel5", 7: "kernel7", 9: "kernel9", 11: "kernel11"}  # size -> its roadmap step


@dataclass
class Panel:
    """A lesson's live part: `show(*inputs)` gives the values of `outputs`."""

    inputs: list
    outputs: list
    show: Callable


# --- what the panels show -----------------------------------------------------------------------

def _step_line(step_id: str) -> str:
    """A step's counted figures beside the paper's."""
    step, summary = get_step(step_id), summarize(step_name(step_id))
    line = (f"**{step.title}**: {summary.gflops:.3f} GFLOPs and {summary.params / 1e6:.2f} M parameters "
            f"counted; the paper prints {step.paper_gflops:.2f} GFLOPs and {step.paper_top1:.2f}% top-1.")
    return f"{line} *{step.note}*" if step.note else line


def _block_of(step_id: str, stage: int = 1):
    """The layers of the second block of a step's stage `stage` (from 1), traced on the meta device."""
    name = step_name(step_id)
    model = build_model(name, INPUT_SIZE, device="meta")
    block = default_block(model, get_spec(name).layout).replace("stages.0", f"stages.{stage - 1}")
    return block, trace_block(model, block, INPUT_SIZE)


def show_results(pretraining: str):
    title = {"in1k": "Trained on ImageNet-1K", "in22k": "Pre-trained on ImageNet-22K, fine-tuned on 1K"}[pretraining]
    rows = roadmap_table()
    return results_chart(imagenet_results(pretraining), title), roadmap_chart(rows[:-1], "convnext_t", rows[-1])


def show_macro(step_id: str, metric: str):
    summaries = [summarize(step_name("resnet50")), summarize(step_name(step_id))]
    return _step_line(step_id), stage_bars(summaries, metric)


def show_width(width: int):
    width = int(width)
    counted = [what_if("depthwise", "width", w).gflops for w in WIDTHS]
    printed = {64: get_step("depthwise").paper_top1, 96: get_step("width").paper_top1}
    chosen = what_if("depthwise", "width", width)
    line = (f"The depthwise network with C = {width}: **{chosen.gflops:.3f} GFLOPs**, "
            f"{chosen.params / 1e6:.2f} M parameters. ResNet-50 counts {summarize(step_name('resnet50')).gflops:.3f}.")
    return line, sweep_chart(WIDTHS, counted, [printed.get(w) for w in WIDTHS], width, "width C of stage 1")


def show_inverted(stage: int):
    lines, figures = [], []
    for step_id in ("width", "inverted"):
        block, layers = _block_of(step_id, int(stage))
        params = sum(layer.params for layer in layers)
        figures.append(block_diagram(layers, f"{get_step(step_id).title}: {block}, {params / 1e3:.1f} K params"))
        lines.append(_step_line(step_id))
    return "\n\n".join(lines), *figures


def show_kernel(size: int, progress=gr.Progress()):
    size = int(size)
    counted = [what_if("move_dw", "kernel_size", k).gflops for k in KERNELS]
    chosen = what_if("move_dw", "kernel_size", size)
    line = (f"Kernel {size}x{size}: **{chosen.gflops:.3f} GFLOPs**, {chosen.params / 1e6:.2f} M parameters; "
            f"the paper's top-1 for it is {get_step(KERNELS[size]).paper_top1:.2f}%.")
    top1 = [get_step(step).paper_top1 for step in KERNELS.values()]
    sweep = comparison("kernel_sweep")  # random init: no trained weights exist for the sweep's networks
    results = compare(sweep, lambda fraction, what: progress(fraction, desc=f"Receptive fields: {what}"))
    first, last = results[0], results[-1]
    fields = (f"**Effective receptive fields** of the five networks ({first.weights}, {first.images} noise "
              f"images, {first.stage} at {first.input_size}x{first.input_size}). {growth(results)} At t = 0.99 "
              f"it goes from {first.ratios[3].ratio:.3f} (3x3) to {last.ratios[3].ratio:.3f} (11x11).")
    return (line, sweep_chart(list(KERNELS), counted, top1, size, "depthwise kernel size"), fields,
            erf_grid(results, sweep.title), erf_profiles(results, "Contribution against distance from the centre"),
            erf_table(results))


def show_micro(step_id: str):
    block, layers = _block_of(step_id)
    counts = (f"One block ({block}) has norm layers: {counted(of_kind(layers, 'norm'))}; "
              f"activations: {counted(of_kind(layers, 'act'))}.")
    return f"{_step_line(step_id)}\n\n{counts}", block_diagram(layers, f"{get_step(step_id).title}: one block")


def show_family(name: str, size: int):
    summary = summarize(name, int(size))
    return f"**{summary.label}** at {summary.input_size}: {paper_comparison(summary)}", html_table(summary)


def show_next(size: str):
    """The isotropic comparison of one size, and the ConvNeXt V2 block at stage 1 of ConvNeXt-T."""
    v2 = report("convnextv2", *STAGES[1])
    title = f"{v2.title}: {v2.params / 1e3:.1f} K params"
    return *show_isotropic(size), block_diagram(list(v2.layers), title)


def _paired_chart(pairs: list[tuple], title: str, axis: str, ratio: bool = False):
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


def show_beyond(table: str):
    return BEYOND[table][1]()


def show_inside(stage: int):
    loaded, weights = ((load(BUNDLED), "the bundled model's trained weights") if bundled_available()
                       else paper_or_random("convnext_tiny"))
    stage = min(int(stage), len(get_spec(loaded.name).layout.stages)) - 1
    line = f"**{get_spec(loaded.name).label}** with {weights}."
    return (line, kernel_grid(depthwise_kernels(loaded, stage, 0, sort_by_norm=True)),
            distance_chart(distance_profiles(loaded), "How much of the 7x7 kernel each stage uses"))


# --- the panels ---------------------------------------------------------------------------------

def _step_radio(step_ids: list[str], label: str) -> gr.Radio:
    return gr.Radio([(get_step(s).title, s) for s in step_ids], value=step_ids[0], label=label)


def _results_panel() -> Panel:
    pretraining = gr.Radio([("ImageNet-1K", "in1k"), ("ImageNet-22K pre-training", "in22k")], value="in1k",
                           label="Training data")
    with gr.Row():
        results, roadmap = gr.Plot(show_label=False), gr.Plot(show_label=False)
    return Panel([pretraining], [results, roadmap], show_results)


def _macro_panel() -> Panel:
    with gr.Row():
        step = _step_radio(["recipe", "stage_ratio", "patchify"], "Step")
        metric = gr.Radio([("GFLOPs", "gflops"), ("parameters", "params")], value="gflops", label="Per stage")
    return Panel([step, metric], [gr.Markdown(), gr.Plot(show_label=False)], show_macro)


def _resnextify_panel() -> Panel:
    width = gr.Slider(WIDTHS[0], WIDTHS[-1], value=96, step=16, label="Width C of stage 1 (depthwise network)")
    return Panel([width], [gr.Markdown(), gr.Plot(show_label=False)], show_width)


def _stage_panel(show: Callable) -> Panel:
    """A stage slider, a line of text and two figures side by side."""
    stage = gr.Slider(1, 4, value=1, step=1, label="Stage")
    line = gr.Markdown()
    with gr.Row():
        left, right = gr.Plot(show_label=False), gr.Plot(show_label=False)
    return Panel([stage], [line, left, right], show)


def _kernel_panel() -> Panel:
    size = gr.Slider(3, 11, value=7, step=2, label="Depthwise kernel size")
    outputs = [gr.Markdown(), gr.Plot(show_label=False), gr.Markdown(elem_id="lesson-erf-info"),
               gr.Plot(show_label=False, elem_id="lesson-erf-grid"), gr.Plot(show_label=False),
               gr.Markdown(elem_id="lesson-erf-table")]
    return Panel([size], outputs, show_kernel)


def _micro_panel() -> Panel:
    step = _step_radio(["gelu", "fewer_act", "fewer_norm", "ln", "convnext_t"], "Step")
    return Panel([step], [gr.Markdown(), gr.Plot(show_label=False)], show_micro)


def _family_panel() -> Panel:
    with gr.Row():
        convnexts = [s for s in specs_by_family()["ConvNeXt"] if s.num_classes == IN1K_CLASSES and s.input_size == 224]
        model = gr.Radio([(s.label, s.name) for s in convnexts], value=convnexts[0].name, label="Model")
        size = gr.Radio([224, 384], value=224, label="Input size")
    return Panel([model, size], [gr.Markdown(), gr.HTML()], show_family)


def _next_panel() -> Panel:
    size = gr.Radio(ISOTROPIC_SIZES, value="S", label="Size")
    text = gr.Markdown()
    with gr.Row():
        compute, block = gr.Plot(show_label=False, scale=2), gr.Plot(show_label=False, scale=1)
    return Panel([size], [text, compute, block], show_next)


def _beyond_panel() -> Panel:
    table = gr.Radio([(label, key) for key, (label, _chart) in BEYOND.items()], value="coco", label="The paper's table")
    return Panel([table], [gr.Plot(show_label=False)], show_beyond)


PANELS: dict[str, Callable[[], Panel]] = {
    "results": _results_panel,
    "macro": _macro_panel,
    "resnextify": _resnextify_panel,
    "inverted": lambda: _stage_panel(show_inverted),
    "kernel": _kernel_panel,
    "micro": _micro_panel,
    "family": _family_panel,
    "next": _next_panel,
    "beyond": _beyond_panel,
    "inside": lambda: _stage_panel(show_inside),
}


# --- the tab ------------------------------------------------------------------------------------

def _clamp(index) -> int:
    try:
        return min(max(int(index), 0), len(lessons()) - 1)
    except (TypeError, ValueError):
        return 0


def header(index: int):
    """The heading, the text and which lesson column is visible."""
    index = _clamp(index)
    lesson = lessons()[index]
    heading = f"**Lesson {index} · {index + 1} / {len(lessons())}**: {lesson.title}"  # the text has the title too
    shown = [gr.update(visible=i == index) for i in range(len(lessons()))]
    return heading, text(index), f"*Below:* {lesson.shows}", *shown


def _only_for(number: int, show: Callable, outputs: int) -> Callable:
    """`show`, run only when lesson `number` is the one on screen (the others leave their figures)."""
    skip = gr.skip() if outputs == 1 else [gr.skip()] * outputs  # one output is returned bare, not in a list
    tracked = "progress" in inspect.signature(show).parameters  # a long panel shows a progress bar

    def wrapped(index, *values, progress=gr.Progress()):
        if _clamp(index) != number:
            return skip
        return show(*values, progress=progress) if tracked else show(*values)
    return wrapped


def lesson_memory() -> gr.BrowserState:
    """Where the reader is, kept in the browser. Create it outside the tabs: a tab's components are
    mounted only when the tab is first opened, too late for the page's load event to read them."""
    # a fixed key: the lesson number is no secret, and it should outlive a restart of the server
    return gr.BrowserState(0, storage_key=STORAGE_KEY, secret=STORAGE_KEY)


def build_lessons_tab(saved: gr.BrowserState, tabs: gr.Tabs, roadmap_position: gr.Slider) -> Linked:
    with gr.Tab("Lessons", id="lessons"):
        index = gr.Number(0, visible=False, precision=0)
        with gr.Row():
            back = gr.Button("< Previous", elem_id="lesson-prev", scale=1)
            heading = gr.Markdown(elem_id="lesson-heading")
            forward = gr.Button("Next >", elem_id="lesson-next", scale=1)
        body = gr.Markdown(elem_id="lesson-text")
        shows = gr.Markdown(elem_id="lesson-shows")
        columns, fills = [], []
        for number, lesson in enumerate(lessons()):
            with gr.Column(visible=number == 0, elem_id=f"lesson-panel-{lesson.id}") as column:
                panel = PANELS[lesson.panel]()
                with gr.Row():
                    for tab in lesson.tabs:
                        link = gr.Button(f"Open the {TAB_LABELS[tab]} tab", size="sm", variant="secondary")
                        _link(link, tab, lesson.steps, tabs, roadmap_position)
            show = friendly(panel.show)
            for control in panel.inputs:
                control.change(show, panel.inputs, panel.outputs, trigger_mode="always_last", **PANEL_EVENTS)
            columns.append(column)
            fills.append((_only_for(number, show, len(panel.outputs)), [index, *panel.inputs], panel.outputs))

    def then_show(event) -> None:
        """After `event` has set the lesson number: its heading and text, then its panel."""
        shown = event.then(header, index, [heading, body, shows, *columns])
        for fill, inputs, outputs in fills:
            shown.then(fill, inputs, outputs, **PANEL_EVENTS)

    # Stepping is instant (no queue) and remembered in the browser; drawing follows.
    then_show(back.click(lambda i: (_clamp(i - 1),) * 2, index, [index, saved], queue=False))
    then_show(forward.click(lambda i: (_clamp(i + 1),) * 2, index, [index, saved], queue=False))
    return Linked({"lesson": index}, then_show)  # the page's opening sets the lesson (the link's, or the saved one)


def _link(button: gr.Button, tab: str, lesson_steps: tuple[str, ...], tabs: gr.Tabs, position: gr.Slider) -> None:
    """A button that opens a full tab; the Roadmap tab opens at the lesson's first step."""
    if tab == "roadmap" and lesson_steps:
        number = [s.id for s in steps()].index(lesson_steps[0]) + 1
        button.click(lambda: (gr.Tabs(selected=tab), number), None, [tabs, position], queue=False)
    else:
        button.click(lambda: gr.Tabs(selected=tab), None, tabs, queue=False)
