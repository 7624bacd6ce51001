"""Predict tab: classify an uploaded image with any model and any weights, on any device and in any
precision, and say which weights were used and how long the forward pass took."""
from __future__ import annotations

from dataclasses import dataclass
import gradio as gr
import torch
from gradio.media import get_image

from explorer.device import Precision, RunOptions, device_label
from explorer.inference import predict
from explorer.ui.common import MODEL_EVENTS, device_inputs, friendly, model_choices, uploaded_image
from explorer.ui.image_source import EXAMPLES_DIR, caveat, image_source
from explorer.weights import (BUNDLED, PRETRAINED, RANDOM_INIT, bundled_available, load, paper_or_random,
                              pretrained_cached)
from explorer.zoo import ExplorerError, get_spec

ONLINE_DEFAULT = "convnext_tiny"
# Photos of ImageNet classes that ship with gradio (two cheetahs, class 293, and a lion, 291): the
# examples when the paper's ImageNet weights are on this machine.
IMAGENET_EXAMPLES = ("cheetah.jpg", "cheetah1.jpg", "lion.jpg")
INTRO = "Classify an image. The paper's ImageNet weights come from the hub when this machine is online. "
BUNDLED_READY = ("The bundled **ConvNeXt-Shapes**, trained by this project on generated images of eight "
                 "shapes, works offline.")
BUNDLED_MISSING = ("The bundled **ConvNeXt-Shapes** (eight generated shapes) ships with the project, but its "
                   "files are missing from `assets/weights/`: `git checkout assets/weights` restores them. Until "
                   "then, models run with random weights, which show structure, not knowledge.")
WEIGHT_CHOICES = [("default (random init; the bundled model's own)", "default"),
                  ("the paper's, from the hub", PRETRAINED),
                  ("a checkpoint file", "file")]


def load_chosen(name: str, source: str, checkpoint: str | None):
    """The model with the chosen weights; where the paper's cannot be had, `paper_or_random`'s
    fallback (random init of the same model), with a warning that says so."""
    if source == "file":
        if not checkpoint:
            raise ExplorerError("Upload a checkpoint file (.safetensors, .pth or .bin) first.")
        return load(name, checkpoint)
    if source == PRETRAINED:
        loaded, which = paper_or_random(name)
        if loaded.weights == RANDOM_INIT:
            gr.Warning(f"{get_spec(name).label}: {which}.")
        return loaded
    return load(name)


@friendly
def classify(name: str, source: str, checkpoint: str | None, image: str | None, device: str = "auto",
             precision: str = "fp32", compile: bool = False):
    picture = uploaded_image(image)
    prediction = predict(load_chosen(name, source, checkpoint), picture, topk=5, device=device,
                         precision=precision, compile=compile)
    scores = {f"{top.label} ({top.index})": top.prob for top in prediction.top}
    how = RunOptions(torch.device(prediction.device), Precision.parse(precision), compile=compile).describe()
    info = (f"**{prediction.model}** with **{prediction.weights}** on {device_label(torch.device(prediction.device))} "
            f"({how}): {prediction.latency_ms:.1f} ms for the forward pass.\n\n{caveat(prediction.model, picture)}")
    return scores, prediction.image, info


@dataclass(frozen=True)
class Opening:
    """What the image tabs show when the app opens."""

    model: str  # registry name
    weights: str  # "default" or PRETRAINED, as in WEIGHT_CHOICES
    examples: tuple[str, ...]  # example image files


def opening() -> Opening:
    """The paper's ConvNeXt-T with ImageNet photos when its weights are on this machine; else the
    bundled model with its generated shapes; ConvNeXt-T with random weights only if both are missing."""
    if pretrained_cached(ONLINE_DEFAULT):
        return Opening(ONLINE_DEFAULT, PRETRAINED, tuple(get_image(name) for name in IMAGENET_EXAMPLES))
    shapes = tuple(sorted(str(path) for path in EXAMPLES_DIR.glob("*.png")))
    return Opening(BUNDLED if bundled_available() else ONLINE_DEFAULT, "default", shapes)


def weights_inputs(prefix: str, start: Opening, choices) -> tuple[gr.Dropdown, gr.Radio, gr.File]:
    """A model picker and the weights choice; the file upload shows only when a file is chosen."""
    model = gr.Dropdown(choices, value=start.model, label="Model", elem_id=f"{prefix}-model")
    source = gr.Radio(WEIGHT_CHOICES, value=start.weights, label="Weights", elem_id=f"{prefix}-weights")
    checkpoint = gr.File(label="Checkpoint file", file_types=[".safetensors", ".pth", ".pt", ".bin"],
                         type="filepath", visible=False, elem_id=f"{prefix}-checkpoint")
    source.change(lambda choice: gr.update(visible=choice == "file"), source, checkpoint)
    return model, source, checkpoint


def build_predict_tab(start: Opening) -> None:
    with gr.Tab("Predict", id="predict"):
        gr.Markdown(INTRO + (BUNDLED_READY if bundled_available() else BUNDLED_MISSING))
        with gr.Row():
            with gr.Column():
                picture = image_source("predict", start.examples, height=300)
                model, source, checkpoint = weights_inputs("predict", start, model_choices())
                with gr.Accordion("Device and precision", open=False):
                    device, precision = device_inputs("predict")
                    compile = gr.Checkbox(False, label="torch.compile (the first run of each model compiles: slow)",
                                          elem_id="predict-compile")
                run = gr.Button("Classify", variant="primary", elem_id="predict-run")
            with gr.Column():
                scores = gr.Label(num_top_classes=5, label="Top 5", elem_id="predict-scores")
                seen = gr.Image(label="What the model saw (its input, after preprocessing)", interactive=False,
                                height=200, elem_id="predict-seen")
                info = gr.Markdown(elem_id="predict-info")
    picture.on([run.click], classify, [model, source, checkpoint, picture.image, device, precision, compile],
               [scores, seen, info], **MODEL_EVENTS)
