"""The app module: importing it builds nothing; handlers turn mistakes into messages."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import gradio as gr
import pytest

from tests.conftest import ROOT


# Run in a new interpreter: in this one, other test modules may already have imported and built things.
IMPORT_APP = """
import json, sys
import torch
built = []
plain_init = torch.nn.Module.__init__
def counted_init(self, *args, **kwargs):
    built.append(type(self).__name__)
    plain_init(self, *args, **kwargs)
torch.nn.Module.__init__ = counted_init
import gradio as gr
import app
import threading
print(json.dumps({"built": built, "filling": "figure-cache-fill" in [t.name for t in threading.enumerate()],
                  "demo": isinstance(app.demo, gr.Blocks)}))
"""


def test_import_builds_no_model(tmp_path):
    env = {**os.environ, "CONVNEXT_EXPLORER_CACHE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", IMPORT_APP], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"built": [], "filling": False, "demo": True}
    assert list(tmp_path.iterdir()) == []  # nothing counted, so nothing written to the cache


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


def test_the_image_tabs_open_on_the_paper_model_when_its_weights_are_here(monkeypatch):
    from pathlib import Path

    from PIL import Image

    import explorer.ui.predict as predict_tab
    from explorer.weights import PRETRAINED

    monkeypatch.setattr(predict_tab, "pretrained_cached", lambda name: name == "convnext_tiny")
    start = predict_tab.opening()
    assert (start.model, start.weights) == ("convnext_tiny", PRETRAINED)
    assert {Path(file).stem for file in start.examples} == {"cheetah", "cheetah1", "lion"}
    for file in start.examples:  # real photos on disk, so they work offline
        assert min(Image.open(file).size) >= 200


def test_offline_the_image_tabs_open_on_the_bundled_model_and_its_shapes(monkeypatch):
    from pathlib import Path

    import explorer.ui.predict as predict_tab
    from explorer.shapes import CLASSES

    monkeypatch.setattr(predict_tab, "pretrained_cached", lambda name: False)
    monkeypatch.setattr(predict_tab, "bundled_available", lambda: True)
    start = predict_tab.opening()
    assert (start.model, start.weights) == ("convnext_shapes", "default")
    assert {Path(file).stem.split("-")[0] for file in start.examples} == set(CLASSES)
    monkeypatch.setattr(predict_tab, "bundled_available", lambda: False)
    assert predict_tab.opening().model == "convnext_tiny"  # random weights, and the tab says so


def test_the_request_clock_holds_the_background_drawing_until_the_server_is_quiet(monkeypatch):
    """Every HTTP request sets the clock (other ASGI traffic does not), and the wait returns only once
    `QUIET_S` has passed since the last request: read on a clock the test moves itself."""
    import asyncio

    import app

    now = [100.0]
    monkeypatch.setattr(app.time, "monotonic", lambda: now[0])
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
    monkeypatch.setattr(app.time, "sleep", sleep)

    async def answer(scope, receive, send) -> None:
        pass
    clock = app.RequestClock(answer)
    asyncio.run(clock({"type": "http"}, None, None))
    assert app.RequestClock.last == 100.0
    now[0] = 100.4
    asyncio.run(clock({"type": "lifespan"}, None, None))  # not a request
    assert app.RequestClock.last == 100.0
    app.RequestClock.wait_for_quiet()
    assert now[0] >= 100.0 + app.QUIET_S and sum(slept) == pytest.approx(app.QUIET_S - 0.4)
    slept.clear()
    app.RequestClock.wait_for_quiet()  # quiet already: no wait
    assert slept == []
