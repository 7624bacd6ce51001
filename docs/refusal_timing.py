"""How long a refusal takes: every refused image of the bad-input corpus through the image
handlers, and a pretrained load while the weights hub cannot be reached. For docs/benchmarks.md.

    python docs/refusal_timing.py

These were time limits inside tests/test_bad_input.py (5 s per refused image) and tests/test_weights.py
(10 s for an unreachable hub); as measurements they say how much room there is, without failing a
test on a loaded machine. The tests still check that each refusal happens and what it says.
Prints one Markdown table: the median and slowest seconds per handler, then the hub's seconds.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402

from explorer.weights import PRETRAINED, WeightsUnavailableError, load  # noqa: E402
from tests.test_bad_input import IMAGE_HANDLERS, REFUSED_IMAGES  # noqa: E402


def seconds(call) -> float:
    start = time.monotonic()
    try:
        call()
    except (gr.Error, WeightsUnavailableError):
        return time.monotonic() - start
    raise SystemExit(f"{call} was not refused")


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="refusals-"))
    paths = [str(case.write(folder)) for case in REFUSED_IMAGES]
    print("| handler | refused images | median s | slowest s |\n|---|---|---|---|")
    for name, handler in IMAGE_HANDLERS.items():
        times = [seconds(lambda: handler(path)) for path in paths]
        print(f"| {name} | {len(times)} | {statistics.median(times):.3f} | {max(times):.3f} |")

    from huggingface_hub import constants  # a closed local port: nothing leaves the machine

    constants.HF_HUB_CACHE = tempfile.mkdtemp(prefix="hub-")
    constants.ENDPOINT = "http://127.0.0.1:9"
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(variable, None)
    first = seconds(lambda: load("convnext_tiny", PRETRAINED))  # includes importing timm and huggingface_hub
    again = [seconds(lambda: load("convnext_tiny", PRETRAINED)) for _ in range(5)]
    print(f"\nconvnext_tiny's paper weights with the hub unreachable (a closed local port): refused after "
          f"{first:.2f} s the first time (imports included), then a median {statistics.median(again):.3f} s")


if __name__ == "__main__":
    main()
