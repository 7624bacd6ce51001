"""What every tab shares: turning a person's mistake into a message instead of a traceback, the limit
on events that run a model, the model picker, and the device and precision choosers."""
from __future__ import annotations

import functools
from collections.abc import Callable

import gradio as gr
from PIL import Image

from explorer.device import AUTO, Precision, available_devices
from explorer.inference import open_image
from explorer.zoo import ExplorerError, ModelSpec, specs_by_family

# Events that run a model share one group of slots: two at a time bound the memory of big models'
# activations and keep a 2-core machine answering; the rest wait in the queue (app.py bounds it).
MODEL_EVENTS = {"concurrency_id": "model", "concurrency_limit": 2}


def friendly(handler: Callable) -> Callable:
    """Show an ExplorerError as an error message in the page; the server keeps serving."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except ExplorerError as error:  # a person's mistake, not the server's: no traceback in the log
            raise gr.Error(str(error), print_exception=False) from None

    return wrapped


def parse_input_size(value) -> int:
    """An input size typed or picked in a dropdown, as a whole number (the registry checks its range)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExplorerError(f"Input size '{value}' is not a whole number; try 224 or 384.") from None


def spec_choices(specs: list[ModelSpec]) -> list[tuple[str, str]]:
    """(label, name) pairs for a dropdown."""
    return [(spec.label, spec.name) for spec in specs]


def model_choices() -> list[tuple[str, str]]:
    """Every model of every family, labelled with its family, for a single dropdown."""
    return [(f"{family}: {spec.label}", spec.name)
            for family, specs in specs_by_family().items() for spec in specs]


def uploaded_image(path: str | None) -> Image.Image:
    """The image a person uploaded (or an example they clicked, or their drawing), opened safely."""
    if not path:
        raise ExplorerError("Upload an image first, draw one, or click one of the examples.")
    return open_image(path)


def device_inputs(prefix: str, precision: Precision = Precision.FP32) -> tuple[gr.Dropdown, gr.Radio]:
    """A device chooser (auto: CUDA, then MPS, then the CPU; or any device this machine has) and a
    precision chooser (fp32, TF32 on NVIDIA Ampere or newer, bf16 autocast)."""
    devices = available_devices()
    device = gr.Dropdown([(f"{AUTO} ({devices[0]})", AUTO)] + [(kind, kind) for kind in devices], value=AUTO,
                         label="Device", elem_id=f"{prefix}-device")
    choice = gr.Radio([p.value for p in Precision], value=precision.value, label="Precision",
                      elem_id=f"{prefix}-precision")
    return device, choice
