"""What every tab shares: turning a person's mistake into a message instead of a traceback."""
from __future__ import annotations

import functools
from collections.abc import Callable

import gradio as gr

from explorer.zoo import ExplorerError


def friendly(handler: Callable) -> Callable:
    """Show an ExplorerError as an error message in the page; the server keeps serving."""

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except ExplorerError as error:
            raise gr.Error(str(error)) from None

    return wrapped
