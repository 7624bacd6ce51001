"""An image upload that reaches the handler as it was sent: `open_image` judges it, not gradio.

A module of its own because gradio writes a type stub (`image_file.pyi`, git-ignored) beside every
module that defines a component, copying the whole module into it.
"""
from __future__ import annotations

import gradio as gr


class ImageFile(gr.Image):
    """An image upload handed to the handler as the uploaded file's path, untouched.

    gr.Image opens every upload with PIL, converts it to RGB and saves it again before the handler
    runs, so a damaged file or a decompression bomb failed inside gradio with a traceback (and a
    bomb was decoded in full) before `open_image` could refuse it with a sentence; 16-bit, CMYK and
    transparent images lost what `to_rgb` does for them."""

    is_template = True  # drawn by the frontend as a gr.Image

    def __init__(self, **kwargs):
        super().__init__(type="filepath", image_mode=None, **kwargs)

    def get_config(self, cls=None):
        return super().get_config(cls or gr.Image)  # the page's settings are gr.Image's parameters

    def preprocess(self, payload):
        if payload is None or payload.path is None:  # nothing, or a data: URL gradio decodes itself
            return super().preprocess(payload)
        return payload.path
