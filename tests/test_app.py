"""The app module: importing it builds nothing; handlers turn mistakes into messages."""
from __future__ import annotations

import gradio as gr
import pytest


def test_import_builds_no_model():
    from explorer.analysis import summarize

    summarize.cache_clear()
    import app

    assert isinstance(app.demo, gr.Blocks)
    assert summarize.cache_info().currsize == 0


def test_architecture_handler_reports_a_bad_size_as_a_message():
    from explorer.ui.architecture import show

    with pytest.raises(gr.Error, match="multiple of 32"):
        show("convnext_tiny", "100", "")
    with pytest.raises(gr.Error, match="whole number"):
        show("convnext_tiny", "large", "")


def test_architecture_handler_overlays_a_second_model():
    from explorer.ui.architecture import show

    headline, rows, params_fig, gflops_fig = show("convnext_tiny", 224, "swin_tiny_patch4_window7_224")
    assert "ConvNeXt-T" in headline and "Swin-T" in headline
    assert len(gflops_fig.data) == 2 and rows[-1][0] == "total"
