"""Predict tab: classify an uploaded image with any model and any weights, on any device and in any
precision, and say which weights were used and how long the forward pass took."""
from __future__ import annotations

from pathlib import Path

import gradio as gr
import torch

from explorer.device import Precision, RunOptions, device_label
from explorer.inference import predict
from explorer.ui.common import MODEL_EVENTS, device_inputs, friendly, model_choices, uploaded_image
from explorer.ui.image_file import ImageFile
from explorer.weights import (BUNDLED, PRETRAINED, WeightsUnavailableError, bundled_available, load,
                              pretrained_cached)
from explorer.zoo import ExplorerError

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"
ONLINE_DEFAULT = "convnext_tiny"
INTRO = "Classify an image. The paper's ImageNet weights come from the hub when this machine is online. "
BUNDLED_READY = ("The bundled **ConvNeXt-Shapes**, trained by this project on generated images of eight "
                 "shapes, works offline.")
BUNDLED_MISSING = ("The bundled **ConvNeXt-Shapes** (eight generated shapes) has no trained weights yet: "
                   "`python -m explorer.train_shapes --out assets/weights` trains it. Until then, models "
                   "run with random weights, which show structure, not knowledge.")
WEIGHT_CHOICES = [("default (random init; the bundled model's own)", "default"),
                  ("the paper's, from the hub", PRETRAINED),
                  ("a checkpoint file", "file")]


def load_chosen(name: str, source: str, checkpoint: str | None):
    """The model with the chosen weights; the paper's weights fall back to the bundled model offline."""
    if source == "file":
        if not checkpoint:
            raise ExplorerError("Upload a checkpoint file (.safetensors, .pth or .bin) first.")
        return load(name, checkpoint)
    if source == PRETRAINED and name != BUNDLED:
        try:
            return load(name, PRETRAINED)
        except WeightsUnavailableError as error:
            gr.Warning(f"{error} Showing the bundled {BUNDLED} instead.")
            return load(BUNDLED)
    return load(name)


@friendly
def classify(name: str, source: str, checkpoint: str | None, image: str | None, device: str = "auto",
             precision: str = "fp32", compile: bool = False):
    prediction = predict(load_chosen(name, source, checkpoint), uploaded_image(image), topk=5, device=device,
                         precision=precision, compile=compile)
    scores = {f"{top.label} ({top.index})": top.prob for top in prediction.top}
    how = RunOptions(torch.device(prediction.device), Precision.parse(precision), compile=compile).describe()
    info = (f"**{prediction.model}** with **{prediction.weights}** on {device_label(torch.device(prediction.device))} "
            f"({how}): {prediction.latency_ms:.1f} ms for the forward pass.")
    return scores, info


def weights_inputs(prefix: str, default: str, choices) -> tuple[gr.Dropdown, gr.Radio, gr.File]:
    """A model picker and the weights choice; the file upload shows only when a file is chosen."""
    model = gr.Dropdown(choices, value=default, label="Model", elem_id=f"{prefix}-model")
    source = gr.Radio(WEIGHT_CHOICES, value="default", label="Weights", elem_id=f"{prefix}-weights")
    checkpoint = gr.File(label="Checkpoint file", file_types=[".safetensors", ".pth", ".pt", ".bin"],
                         type="filepath", visible=False, elem_id=f"{prefix}-checkpoint")
    source.change(lambda choice: gr.update(visible=choice == "file"), source, checkpoint)
    return model, source, checkpoint


def default_model() -> str:
    """The paper's ConvNeXt-T when its weights are on this machine, else the bundled model; ConvNeXt-T
    with random weights only if the bundled files are missing too."""
    if pretrained_cached(ONLINE_DEFAULT) or not bundled_available():
        return ONLINE_DEFAULT
    return BUNDLED


def build_predict_tab() -> None:
    with gr.Tab("Predict", id="predict"):
        gr.Markdown(INTRO + (BUNDLED_READY if bundled_available() else BUNDLED_MISSING))
        with gr.Row():
            with gr.Column():
                image = ImageFile(label="Image", elem_id="predict-image", height=300)
                model, source, checkpoint = weights_inputs("predict", default_model(), model_choices())
                with gr.Accordion("Device and precision", open=False):
                    device, precision = device_inputs("predict")
                    compile = gr.Checkbox(False, label="torch.compile (the first run of each model compiles: slow)",
                                          elem_id="predict-compile")
                run = gr.Button("Classify", variant="primary", elem_id="predict-run")
            with gr.Column():
                scores = gr.Label(num_top_classes=5, label="Top 5", elem_id="predict-scores")
                info = gr.Markdown(elem_id="predict-info")
        examples = sorted(str(path) for path in EXAMPLES_DIR.glob("*.png"))
        if examples:
            gr.Examples(examples, inputs=image)
    run.click(classify, [model, source, checkpoint, image, device, precision, compile], [scores, info], **MODEL_EVENTS)
