"""The web API: named endpoints for scripts (`gradio_client`), each returning the JSON document of the
command of the same name (`python -m explorer COMMAND ... --json`), computed by the same `explorer`
functions. The README lists them with an example.

`build_api(demo)` is called once, after every tab is built: it first makes every event the tabs
registered private (the page still calls them by number; the API listing and gradio_client do not
see them), then adds the endpoints, each an event with no trigger on hidden components, so that a
client sees named, typed parameters with their defaults.

Weights are named: "default" (random init; the bundled model's own), "pretrained" (the paper's) or
"file" with a checkpoint uploaded in `checkpoint` (the command line's `--weights FILE`); `/erf` takes
"random" and "random-branches-on" too. Paths on the server are not accepted: gradio lets a client hand
over only files it uploaded, so a client cannot make the server read its own files.
"""
from __future__ import annotations

import gradio as gr
import numpy as np

from explorer.analysis import summarize
from explorer.attribution import attribute, overlay
from explorer.collapse import collapse_profile
from explorer.counting import count
from explorer.erf import BRANCHES_ON, DEFAULT_IMAGES, DEFAULT_SEEDS, NOISE, RANDOM, ErfRequest, cached_erf
from explorer.inference import predict as predict_top
from explorer.roadmap import roadmap_table
from explorer.sanity import DEFAULT_STEPS, cascade, faithfulness as deletion_insertion
from explorer.ui.common import MODEL_EVENTS, friendly, uploaded_image
from explorer.ui.image_file import ImageFile
from explorer.weights import BUNDLED, PRETRAINED, SAFETENSORS_SUFFIX, TORCH_SUFFIXES, LoadedModel, load
from explorer.zoo import ExplorerError

DEFAULT = "default"  # the `weights` value for the model's own: random init, the bundled model's trained weights
FILE = "file"  # the `weights` value for an uploaded checkpoint
TOPK = 5  # classes /predict lists unless asked otherwise, as the command line's --topk
MODEL_WEIGHTS = (DEFAULT, PRETRAINED, FILE)
ERF_WEIGHTS = (DEFAULT, PRETRAINED, RANDOM, BRANCHES_ON, FILE)


def weights_named(choice: str | None, checkpoint: str | None, allowed: tuple[str, ...] = MODEL_WEIGHTS) -> str | None:
    """The web API's weights as `load` (or an `ErfRequest`) takes them: None for "default", the
    uploaded checkpoint's path for "file"."""
    choice = choice or DEFAULT
    if choice not in allowed:
        raise ExplorerError(f"Unknown weights '{choice}': use one of {', '.join(allowed)} ('file' with a "
                            f"checkpoint uploaded as `checkpoint`).")
    if (choice == FILE) != bool(checkpoint):
        raise ExplorerError("Give weights='file' together with a checkpoint upload, and a checkpoint only with "
                            "weights='file'.")
    return {DEFAULT: None, FILE: checkpoint}.get(choice, choice)


def _loaded(model: str | None, weights: str | None, checkpoint: str | None) -> LoadedModel:
    return load(model or BUNDLED, weights_named(weights, checkpoint))


def _named(model: str | None) -> str:
    """A model the endpoint cannot do without (a raw HTTP call can send none)."""
    if not model:
        raise ExplorerError("Name a model: a timm name (convnext_tiny, resnet50, ...), roadmap:STEP, or "
                            "convnext_shapes.")
    return model


def _or(value, default):
    """An empty optional parameter means what leaving the option out means on the command line."""
    return default if value is None else value


# --- the endpoints: one explorer call each, returning the command line's document -----------------

@friendly
def summary(model: str, input_size: int | None = None) -> dict:
    """Per-stage shapes, parameters and GFLOPs of a model (`summary MODEL --input-size N --json`);
    input_size None is the model's own."""
    return summarize(_named(model), input_size).to_json()


@friendly
def roadmap(regime: str = "resnet50") -> list[dict]:
    """Every roadmap step, counted and as printed (`roadmap --regime R --json`): resnet50 or resnet200."""
    return roadmap_table(_or(regime, "resnet50"))


@friendly
def predict(image: str | None, model: str = BUNDLED, weights: str = DEFAULT, topk: int = TOPK,
            checkpoint: str | None = None) -> dict:
    """The top-k classes of an image (`predict MODEL IMAGE --topk K --json`)."""
    picture = uploaded_image(image)
    return predict_top(_loaded(model, weights, checkpoint), picture, _or(topk, TOPK)).to_json()


@friendly
def explain(image: str | None, model: str = BUNDLED, method: str = "gradcam", layer: str | None = None,
            target: str | None = None, weights: str = DEFAULT,
            checkpoint: str | None = None) -> tuple[np.ndarray, dict]:
    """An attribution map blended over the image the model saw, and what it explains (`cam ... --json`)."""
    picture = uploaded_image(image)
    result = attribute(_loaded(model, weights, checkpoint), picture, method, layer or None, target or None)
    return overlay(result), result.to_json()


@friendly
def sanity(image: str | None, model: str = BUNDLED, method: str = "gradcam", layer: str | None = None,
           target: str | None = None, weights: str = DEFAULT, checkpoint: str | None = None) -> dict:
    """Cascading randomization of the map, top layer first (`sanity MODEL IMAGE ... --json`)."""
    picture = uploaded_image(image)
    return cascade(_loaded(model, weights, checkpoint), picture, method, layer or None, target or None).to_json()


@friendly
def faithfulness(image: str | None, model: str = BUNDLED, method: str = "gradcam", layer: str | None = None,
                 target: str | None = None, steps: int = DEFAULT_STEPS, weights: str = DEFAULT,
                 checkpoint: str | None = None) -> dict:
    """Deletion and insertion curves of the map against a random order and Sobel edges
    (`faithfulness MODEL IMAGE ... --steps N --json`)."""
    picture = uploaded_image(image)
    return deletion_insertion(_loaded(model, weights, checkpoint), picture, method, layer or None, target or None,
                              _or(steps, DEFAULT_STEPS)).to_json()


@friendly
def erf(model: str = BUNDLED, weights: str = DEFAULT, noise: int = DEFAULT_IMAGES, seeds: int = DEFAULT_SEEDS,
        stage: str | None = None, input_size: int | None = None, checkpoint: str | None = None) -> dict:
    """The effective receptive field of a stage on noise images, and its area ratios
    (`erf MODEL --noise N --seeds S --json`); kept on disk like the Receptive field tab's maps."""
    request = ErfRequest(model or BUNDLED, weights_named(weights, checkpoint, ERF_WEIGHTS), NOISE,
                         _or(noise, DEFAULT_IMAGES), _or(seeds, DEFAULT_SEEDS), stage or None, input_size)
    return cached_erf(request).to_json()


@friendly
def flops(model: str, input_size: int | None = None) -> dict:
    """What every FLOP counter counts, per operator kind (`flops MODEL --input-size N --json`)."""
    return count(_named(model), input_size).to_json()


@friendly
def collapse(image: str | None, model: str = BUNDLED, weights: str = DEFAULT, checkpoint: str | None = None) -> dict:
    """ConvNeXt V2's feature-collapse measure in every block (`collapse MODEL IMAGE --json`)."""
    picture = uploaded_image(image)
    return collapse_profile(_loaded(model, weights, checkpoint), picture).to_json()


# --- wiring ---------------------------------------------------------------------------------------

def keep_events_private(demo: gr.Blocks) -> None:
    """Take every event registered so far out of the API: they are the page's, not a script's. Their
    names move aside ("explain" -> "page_explain") so that the endpoints' own names are free."""
    for event in demo.fns.values():
        event.api_visibility = "private"
        event.api_name = f"page_{event.api_name}"


def build_api(demo: gr.Blocks) -> None:
    """Hide the tabs' events, then add the public endpoints (hidden components, no trigger)."""
    keep_events_private(demo)
    with gr.Column(visible=False):
        image = ImageFile(label="image")
        model = gr.Textbox(label="model")
        model_or_bundled = gr.Textbox(BUNDLED, label="model")
        input_size = gr.Number(None, precision=0, label="input_size")
        regime = gr.Textbox("resnet50", label="regime")
        weights = gr.Textbox(DEFAULT, label="weights")
        checkpoint = gr.File(None, type="filepath", label="checkpoint",
                             file_types=[SAFETENSORS_SUFFIX, *TORCH_SUFFIXES])
        topk = gr.Number(TOPK, precision=0, label="topk")
        method = gr.Textbox("gradcam", label="method")
        layer = gr.Textbox(None, label="layer")
        target = gr.Textbox(None, label="target")
        steps = gr.Number(DEFAULT_STEPS, precision=0, label="steps")
        noise = gr.Number(DEFAULT_IMAGES, precision=0, label="noise")
        seeds = gr.Number(DEFAULT_SEEDS, precision=0, label="seeds")
        stage = gr.Textbox(None, label="stage")
        document = gr.JSON(label="result")
        picture = gr.Image(type="numpy", format="png", label="overlay")

    attribution = [image, model_or_bundled, method, layer, target]
    endpoints = [
        (summary, [model, input_size], document, {}),
        (roadmap, [regime], document, {}),
        (predict, [image, model_or_bundled, weights, topk, checkpoint], document, MODEL_EVENTS),
        (explain, [*attribution, weights, checkpoint], [picture, document], MODEL_EVENTS),
        (sanity, [*attribution, weights, checkpoint], document, MODEL_EVENTS),
        (faithfulness, [*attribution, steps, weights, checkpoint], document, MODEL_EVENTS),
        (erf, [model_or_bundled, weights, noise, seeds, stage, input_size, checkpoint], document, MODEL_EVENTS),
        (flops, [model, input_size], document, MODEL_EVENTS),
        (collapse, [image, model_or_bundled, weights, checkpoint], document, MODEL_EVENTS),
    ]
    for handler, inputs, outputs, slots in endpoints:
        gr.on([], handler, inputs, outputs, api_name=handler.__name__, **slots)
