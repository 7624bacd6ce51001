"""Benchmark tab: images per second of the chosen models on this machine, beside the paper's Table 12
(A100), with the ConvNeXt/Swin ratio of each size pair, a table and the results as a CSV file."""
from __future__ import annotations

import tempfile

import gradio as gr

from explorer.bench import CSV_COLUMNS, DEFAULT_BATCH, DEFAULT_MODELS, benchmark, format_report, table_rows, to_csv
from explorer.device import available_devices, default_precision, pick_device
from explorer.plots import throughput_chart
from explorer.ui.common import device_inputs, friendly, model_choices
from explorer.zoo import ExplorerError

EACH_MODELS_OWN = 0  # the resolution choice that keeps every model at its own input size
RESOLUTIONS = [("each model's own", EACH_MODELS_OWN)] + [(f"{size}x{size}", size) for size in (160, 224, 288, 384)]

INTRO = """How fast is ConvNeXt next to Swin? The paper's Table 12 measured images per second on an A100
with TF32 and channels-last memory layout: ConvNeXt-T ran 1.47 times as fast as Swin-T at the same
FLOPs. Measure the same here: each model runs on a random batch, after warm-up passes, and the median
of ten timed passes gives images per second. The first run of a model with torch.compile compiles
it (a minute or more on a CPU); later runs reuse the compiled model. One run at a time: timings of
two at once would mean nothing."""


def _batch(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExplorerError(f"The batch '{value}' is not a whole number; try {DEFAULT_BATCH['cpu']}.") from None


def _csv_file(text: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".csv", prefix="throughput-", delete=False) as f:
        f.write(text)
    return f.name


@friendly
def run_benchmark(names: list[str], batch, resolution: int, precision: str, compile: bool, device: str,
                  baseline: bool, progress=gr.Progress()):
    """Chart, summary, table rows and CSV file of one benchmark run."""
    report = benchmark(names or [], _batch(batch), resolution or None, precision, compile, device, baseline,
                       progress=progress)
    summary = "```\n" + format_report(report) + "\n```"
    return throughput_chart(report), summary, table_rows(report), _csv_file(to_csv(report))


def build_bench_tab() -> None:
    best = available_devices()[0]
    paper_default = default_precision(pick_device(best))  # the paper's TF32 where the GPU has it (Ampere on)
    with gr.Tab("Benchmark", id="bench"):
        gr.Markdown(INTRO)
        with gr.Row():
            models = gr.Dropdown(model_choices(), value=list(DEFAULT_MODELS), multiselect=True, label="Models",
                                 elem_id="bench-models", scale=3)
            batch = gr.Number(DEFAULT_BATCH[best], precision=0, label="Batch", elem_id="bench-batch",
                              scale=1)
            resolution = gr.Dropdown(RESOLUTIONS, value=EACH_MODELS_OWN, label="Resolution",
                                     elem_id="bench-resolution", scale=1)
        with gr.Row():
            device, precision = device_inputs("bench", paper_default)
            compile = gr.Checkbox(False, label="torch.compile", elem_id="bench-compile")
            baseline = gr.Checkbox(False, label="also timm's plain path (fp32, eager), for the speed-up",
                                   elem_id="bench-baseline")
        run = gr.Button("Run the benchmark", variant="primary", elem_id="bench-run")
        chart = gr.Plot(show_label=False, elem_id="bench-chart")
        summary = gr.Markdown(elem_id="bench-summary")
        table = gr.Dataframe(headers=list(CSV_COLUMNS), interactive=False, elem_id="bench-table")
        csv_file = gr.File(label="Results as CSV", elem_id="bench-csv")
    run.click(run_benchmark, [models, batch, resolution, precision, compile, device, baseline],
              [chart, summary, table, csv_file])
