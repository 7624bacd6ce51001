"""ERF figures for docs/benchmarks.md: seconds per map and the area ratios of the app's comparisons.

    python docs/erf_benchmark.py [--threads N] [--images 8]

Timings: each model is built once (random init; the time does not depend on the weights' values),
then `--images` noise images at 224 go through `explorer.erf.gradient_map` in batches of
`explorer.erf.BATCH`, one forward (up to the last stage) and one backward pass each; the median of
three runs is printed, and beside it one whole `compute_erf` (model building included). Area ratios:
the comparisons the app and the Large-kernel lesson show, with their default images and seeds (read
from the disk cache when they are there). Prints Markdown.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from explorer.erf import (BATCH, BRANCHES_ON, KERNEL_SWEEP, NOISE, RANDOM, ErfRequest, compare,  # noqa: E402
                          comparison, compute_erf, gradient_map, noise_images, square_batch)
from explorer.report import erf_table  # noqa: E402
from explorer.weights import load  # noqa: E402
from explorer.zoo import build_model, get_spec  # noqa: E402

TIMED = ("resnet50", "swin_tiny_patch4_window7_224", "convnext_tiny", *KERNEL_SWEEP)
RUNS = 3


def machine() -> str:
    training = subprocess.run(["pgrep", "-f", "train_shapes"], capture_output=True, text=True).stdout.split()
    load1, load5, _ = os.getloadavg()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads; load average {load1:.2f} (1 min), {load5:.2f} (5 min); "
            f"training run: {'running' if training else 'not running'}")


def timings(images: int) -> None:
    print(f"| model | {images} images, passes only (s) | per image (s) | whole compute_erf (s) |\n|---|---|---|---|")
    for name in TIMED:
        spec = get_spec(name)
        model = build_model(name)
        config = load(name).data_config
        batch = square_batch(noise_images(images, spec.input_size), spec.input_size, config["mean"], config["std"])
        gradient_map(model, spec.layout, spec.layout.stages[-1], batch[:1])  # warm-up
        runs = []
        for _ in range(RUNS):
            start = time.perf_counter()
            for first in range(0, images, BATCH):
                gradient_map(model, spec.layout, spec.layout.stages[-1], batch[first:first + BATCH])
            runs.append(time.perf_counter() - start)
        passes = statistics.median(runs)
        whole = compute_erf(ErfRequest(name, RANDOM, NOISE, images, seeds=1)).seconds
        print(f"| {spec.label} | {passes:.2f} | {passes / images:.3f} | {whole:.2f} |", flush=True)


def ratios() -> None:
    shown = [comparison("kernel_sweep"), comparison("families", weights=RANDOM),
             comparison("families", weights=BRANCHES_ON), comparison("trained", ["convnext_shapes"], images="examples")]
    for chosen in shown:
        results = compare(chosen)
        print(f"\n**{chosen.title}** ({results[0].weights if chosen.kind != 'trained' else 'three weights'})\n")
        print(erf_table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--skip-ratios", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"Machine: {machine()}\n")
    timings(args.images)
    if not args.skip_ratios:
        ratios()
    print(f"\nAfterwards: {machine()}")


if __name__ == "__main__":
    main()
