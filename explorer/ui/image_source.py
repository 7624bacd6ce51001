"""Where the image tabs' picture comes from: an upload (or an example), or a drawing on a canvas; what
the bundled model's eight classes are; and what to keep in mind when reading its answer.

The tab that is open is what the buttons send: with "Draw" open, a click first writes the drawing
into the upload component, then runs the handler on that component. So the handlers (and the web
API) read one image input, an upload's path that `open_image` judges, whatever the picture's origin.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from explorer.inference import is_blank
from explorer.ui.image_file import ImageFile
from explorer.weights import BUNDLED

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"
CANVAS_SIDE = 400  # px: the model sees it at its input size, 320 px for the bundled model
BRUSH_RADIUS = 12  # px on the canvas: a stroke that stays 10 px wide at the bundled model's 320 px
INK = "#000000"
# What each of the bundled model's classes is, as its generator draws them (display text only).
SHAPES = {
    "circle": "a round disc; a thin outline of a circle is a circle too",
    "square": "four equal sides at right angles, turned any way",
    "triangle": "three corners and three straight sides",
    "star": "five points",
    "cross": "a plus sign, its arms a third as wide as they are long",
    "ring": "a thick round band, its hole 45-65% of its width",
    "diamond": "a rhombus standing on its tip, narrower than a square turned 45 degrees (0.6 as wide as tall)",
    "hexagon": "six equal sides",
}
SHAPES_GUIDE = ("**The eight shapes ConvNeXt-Shapes knows** (filled or as a thick outline, any size, "
                "turned any way):\n\n" + "\n".join(f"- **{name}**: {what}" for name, what in SHAPES.items()))
ONLY_EIGHT = ("ConvNeXt-Shapes only knows eight shapes: whatever it is shown, a scribble, a face or a "
              "photo, it picks the closest of them, and its probability says how sure it is among those "
              "eight, not that the picture is a shape at all.")
BLANK = ("**The image is one flat color** (an empty canvas?): there is nothing in it to classify, so "
         "the scores are the model's answer for an empty picture. Draw a shape first.")


def drawing(canvas: dict | None, drawing_chosen: bool):
    """The canvas's composite (the strokes over its white background) when the Draw tab is open,
    nothing when its canvas was cleared away; the upload as it is when the Upload tab is open."""
    if not drawing_chosen:
        return gr.skip()
    return canvas["composite"] if canvas else None


def caveat(name: str, picture: Image.Image) -> str:
    """What to keep in mind when reading a result: that the picture is empty, and that the bundled
    model answers with one of its eight shapes, whatever it is shown."""
    notes = ([BLANK] if is_blank(picture) else []) + ([ONLY_EIGHT] if name == BUNDLED else [])
    return "\n\n".join(notes)


def _shape_examples() -> list[tuple[str, str]]:
    files = ((EXAMPLES_DIR / f"{name}-0.png", name) for name in SHAPES)
    return [(str(file), name) for file, name in files if file.is_file()]


@dataclass(frozen=True)
class ImageSource:
    """The upload component the handlers read, and the canvas that is written into it on a click."""

    image: ImageFile
    canvas: gr.Sketchpad
    drawing_chosen: gr.State  # whether the Draw tab is the open one

    def on(self, triggers: Sequence, fn: Callable, inputs: list, outputs: list, **kwargs) -> None:
        """`gr.on(triggers, fn, inputs, outputs, **kwargs)`, with the drawing written into `image`
        first when the Draw tab is open."""
        gr.on(triggers, drawing, [self.canvas, self.drawing_chosen], self.image, api_visibility="private",
              show_progress="hidden").then(fn, inputs, outputs, **kwargs)


def image_source(prefix: str, examples: tuple[str, ...], height: int | None = None) -> ImageSource:
    """Two tabs: "Upload" (a file, or one of `examples`) and "Draw" (a white canvas, a black brush,
    the eight shapes listed beside it)."""
    with gr.Tabs(elem_id=f"{prefix}-source"):
        with gr.Tab("Upload", id="upload") as upload_tab:
            image = ImageFile(label="Image (an upload, an example or your drawing)", elem_id=f"{prefix}-image",
                              height=height, format="png")
            if examples:
                gr.Examples(list(examples), inputs=image)
        with gr.Tab("Draw", id="draw") as draw_tab:
            with gr.Row():
                canvas = gr.Sketchpad(
                    value=Image.new("RGB", (CANVAS_SIDE, CANVAS_SIDE), "white"), type="pil", image_mode="RGB",
                    canvas_size=(CANVAS_SIDE, CANVAS_SIDE), fixed_canvas=True, layers=False, transforms=(),
                    brush=gr.Brush(default_size=BRUSH_RADIUS, colors=[INK], color_mode="fixed"),
                    label="Draw a shape", elem_id=f"{prefix}-canvas", height=CANVAS_SIDE + 120,
                    scale=3, min_width=CANVAS_SIDE)
                with gr.Column(scale=2, min_width=200):
                    gr.Markdown(SHAPES_GUIDE, elem_id=f"{prefix}-shapes")
            gr.Gallery(_shape_examples(), columns=len(SHAPES) // 2, height="auto", allow_preview=False,
                       label="As the model was trained on them", elem_id=f"{prefix}-shape-examples")
    drawing_chosen = gr.State(False)
    upload_tab.select(lambda: False, None, drawing_chosen, api_visibility="private", queue=False)
    draw_tab.select(lambda: True, None, drawing_chosen, api_visibility="private", queue=False)
    return ImageSource(image, canvas, drawing_chosen)
