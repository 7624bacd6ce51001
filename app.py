"""ConvNeXt Explorer: the web app. `python app.py [--host 127.0.0.1] [--port 7860]`.

`demo` is defined at import time but nothing is built, downloaded or launched until it is served.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import time
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from explorer.figure_cache import fill_in_background
from explorer.ui.api import build_api
from explorer.ui.architecture import build_architecture_tab
from explorer.ui.blocks import build_blocks_tab
from explorer.ui.bench import build_bench_tab
from explorer.ui.collapse import build_collapse_tab
from explorer.ui.counting import build_counting_tab
from explorer.ui.erf import build_erf_tab
from explorer.ui.inside import build_inside_tab
from explorer.ui.lessons import build_lessons_tab, lesson_memory
from explorer.ui.links import link_button, wire
from explorer.ui.predict import build_predict_tab, opening
from explorer.ui.roadmap import build_roadmap_tab

TITLE = "ConvNeXt Explorer"
PAGE = Path(__file__).parent / "explorer" / "ui"  # page.css: tables, highlights and figures in both themes;
# page.js: a CSV download under every table
# gradio's plotly (4.6 MB of JavaScript) is fetched when the first figure arrives and then takes the
# browser 2 s to start: the first page waited 3.3 s for it after its figures had come. The page's head
# has it fetched at once, and page.js starts it while the server draws the first views; gradio's own
# import then finds it ready.
PLOTLY = next((Path(gr.__file__).parent / "templates" / "frontend" / "assets").glob("PlotlyPlot-*.js"), None)
HEAD = f'<link rel="modulepreload" href="./assets/{PLOTLY.name}">' if PLOTLY else ""
# Uploads larger than this are refused by gradio before any handler runs. The largest file a person
# needs to upload is a checkpoint: ConvNeXt-XL with its ImageNet-22K head is 1.57 GB in fp32, the
# largest model the app knows; 2 GB fits it with room for a training script's extra entries, and
# stops a runaway upload from filling the disk. Images are bounded by pixels, not bytes (open_image).
MAX_UPLOAD = 2 * 1024**3  # bytes
QUEUE_SIZE = 64  # events waiting at once (16 busy people with a few clicks each); beyond, "queue full"
MALLOC_ARENAS = 2  # see _bound_malloc_arenas
QUIET_S = 1.0  # the background drawing of the views waits until no request has come for this long
M_ARENA_MAX = -8  # glibc's mallopt parameter number
# Gradio's usage analytics (and the version check that comes with them, a call to the internet at
# start) stay off unless a person opts in with GRADIO_ANALYTICS_ENABLED=True, gradio's own variable,
# which alone would default to on: a classroom server sends nothing out.
ANALYTICS = os.environ.get("GRADIO_ANALYTICS_ENABLED") == "True"
# Soft, with its indigo one shade darker where text sits on it or it is text: 4.5:1 contrast or more
THEME = gr.themes.Soft().set(
    block_label_text_color="*primary_700", block_title_text_color="*primary_700",
    checkbox_label_background_fill_selected="*primary_600",
    button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
)
HEADER = """# ConvNeXt Explorer
An interactive companion to *A ConvNet for the 2020s* (Liu et al., CVPR 2022): how a ResNet-50 was
modernized, one design decision at a time, into ConvNeXt, with every number counted from live models."""

with gr.Blocks(title=TITLE, analytics_enabled=ANALYTICS) as demo:
    gr.Markdown(HEADER)
    link_button()
    lesson_position = lesson_memory()
    start = opening()  # one choice of model, weights and examples for both image tabs
    with gr.Tabs(elem_id="explorer-tabs") as tabs:
        architecture = build_architecture_tab(demo)
        roadmap = build_roadmap_tab()
        lessons = build_lessons_tab(lesson_position, tabs, roadmap.controls["step"])  # links open other tabs
        blocks = build_blocks_tab()
        build_predict_tab(start)
        build_inside_tab(demo, start)
        build_erf_tab()
        build_counting_tab()
        build_collapse_tab(start)
        build_bench_tab()
    wire(demo, tabs, lesson_position, [architecture, roadmap, lessons, blocks])  # deep links (explorer.links)
    build_api(demo)  # last: the events above stay out of the API; the named endpoints go in


def command_line() -> argparse.ArgumentParser:
    """`python app.py`'s options (public: DESIGN.md)."""
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    return parser


def _bound_malloc_arenas() -> None:
    """glibc gives each thread its own memory arena and keeps what is freed there: under 16 clients
    (tests/test_load.py) the server grew by 360 MB over 800 requests with gradio's worker threads each
    in its own arena, and by 50 MB with two arenas. Nothing to do where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass


class RequestClock:
    """When the server last began to answer a request (ASGI middleware). Drawing every view at start
    took 5 s of this process's time, and the first page, drawn meanwhile, 1.5-2 s longer: the drawing
    now waits for a quiet spell before each of its parts, so it never competes with a page or a click."""

    last = time.monotonic()

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            RequestClock.last = time.monotonic()
        await self.app(scope, receive, send)

    @classmethod
    def wait_for_quiet(cls) -> None:
        while (idle := time.monotonic() - cls.last) < QUIET_S:
            time.sleep(QUIET_S - idle)


def main() -> None:
    args = command_line().parse_args()
    _bound_malloc_arenas()
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE).launch(
        server_name=args.host, server_port=args.port, theme=THEME, show_error=True,
        max_file_size=MAX_UPLOAD, css_paths=[PAGE / "page.css"], js=(PAGE / "page.js").read_text(), head=HEAD,
        app_kwargs={"middleware": [Middleware(RequestClock)]}, prevent_thread_lock=True,
    )
    # once the server answers: count what the views show, unless already on disk, and draw them
    fill_in_background(wait=RequestClock.wait_for_quiet)
    demo.block_thread()


if __name__ == "__main__":
    main()
