"""ConvNeXt Explorer: the web app. `python app.py [--host 127.0.0.1] [--port 7860]`.

`demo` is defined at import time but nothing is built, downloaded or launched until it is served.
"""
from __future__ import annotations

import argparse

import gradio as gr

from explorer.ui.architecture import build_architecture_tab
from explorer.ui.bench import build_bench_tab
from explorer.ui.inside import build_inside_tab
from explorer.ui.predict import build_predict_tab
from explorer.ui.roadmap import build_roadmap_tab

TITLE = "ConvNeXt Explorer"
HEADER = """# ConvNeXt Explorer
An interactive companion to *A ConvNet for the 2020s* (Liu et al., CVPR 2022): how a ResNet-50 was
modernized, one design decision at a time, into ConvNeXt, with every number counted from live models."""

with gr.Blocks(title=TITLE) as demo:
    gr.Markdown(HEADER)
    with gr.Tabs():
        build_architecture_tab(demo)
        build_roadmap_tab(demo)
        build_predict_tab()
        build_inside_tab(demo)
        build_bench_tab()


def main() -> None:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    demo.queue(default_concurrency_limit=2).launch(
        server_name=args.host, server_port=args.port, theme=gr.themes.Soft(), show_error=True
    )


if __name__ == "__main__":
    main()
