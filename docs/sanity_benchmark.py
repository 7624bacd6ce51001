"""Sanity-check figures for docs/benchmarks.md: seconds per check, and every method's results on the bundled model.

    python docs/sanity_benchmark.py timing [--threads N]
    python docs/sanity_benchmark.py methods [--images 16] [--seed 20261515] [--threads N]

`timing`: Grad-CAM's cascade and its deletion/insertion curves (20 steps) on ConvNeXt-T at 224 (random
init: the time does not depend on the weights' values) and on the bundled model, after one warm-up;
the median of three runs. The faithfulness time is split into the map's own two curves and the whole
check with the random and Sobel baselines.

`methods`: for every attribution method, the cascade and the deletion/insertion check of the bundled
model's predicted class on `--images` held-out images: `explorer.shapes.sample(seed, i, side)` at the model's input side, from a
seed that no training run, test or example uses (training used seeds 0-6, 20260101 and 20260102,
the examples 7). Prints the mean (and standard deviation) over the images, as Markdown.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from explorer.attribution import METHOD_TITLES, METHODS, attribute  # noqa: E402
from explorer.inference import preprocess  # noqa: E402
from explorer.sanity import (DEFAULT_STEPS, ORDERS, TOP_LEVEL, blurred, cascade, faithfulness,  # noqa: E402
                             pixel_order, probability_curve)
from explorer.shapes import sample  # noqa: E402
from explorer.weights import BUNDLED, LoadedModel, load  # noqa: E402
from explorer.zoo import SHAPES_NET, build_model  # noqa: E402

RUNS = 3
HELD_OUT_SEED = 20_261_515


def machine() -> str:
    load1, load5, _ = os.getloadavg()
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads; load average {load1:.2f} (1 min), {load5:.2f} (5 min)")


def _median_seconds(run) -> float:
    run()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing() -> None:
    tiny = load("convnext_tiny")  # random init, with the paper's preprocessing (224)
    models = {"ConvNeXt-T @224 (random init)": LoadedModel(build_model("convnext_tiny"), "convnext_tiny", "random init",
                                                           tiny.labels, tiny.data_config),
              f"convnext_shapes @{SHAPES_NET.input_size} (bundled)": load(BUNDLED)}
    image = Image.fromarray(sample(HELD_OUT_SEED, 3, 256).image)
    print(f"Machine: {machine()}\n")
    print("| model | Grad-CAM cascade, 7 maps (s) | map's deletion + insertion, 20 steps (s) | "
          "whole faithfulness check with both baselines (s) |\n|---|---|---|---|")
    for title, loaded in models.items():
        result = attribute(loaded, image, "gradcam")
        batch = preprocess(image, loaded.data_config)
        order = pixel_order(result.map)
        hidden, deleted = blurred(batch), torch.zeros_like(batch)

        def curves() -> None:
            probability_curve(loaded.model, batch, deleted, order, DEFAULT_STEPS, result.target)
            probability_curve(loaded.model, hidden, batch, order, DEFAULT_STEPS, result.target)

        cascade_s = _median_seconds(lambda: cascade(loaded, image, "gradcam"))
        curves_s = _median_seconds(curves)
        whole_s = _median_seconds(lambda: faithfulness(loaded, image, "gradcam"))
        print(f"| {title} | {cascade_s:.2f} | {curves_s:.2f} | {whole_s:.2f} |")


def _cell(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def methods(images: int, seed: int) -> None:
    loaded = load(BUNDLED)
    pictures = [sample(seed, index, SHAPES_NET.input_size) for index in range(images)]
    print(f"Machine: {machine()}\n")
    print(f"{images} held-out images, `explorer.shapes.sample({seed}, i, {SHAPES_NET.input_size})` for i < {images}; "
          f"the predicted class is explained. Mean ± standard deviation over the images.\n")
    head = ("| method | Spearman, top layers random | Spearman, all random | SSIM, all random | deletion AUC | "
            "random deletion | edge deletion | insertion AUC | random insertion | edge insertion | "
            "beats both on deletion | beats both on insertion | s per image |")
    print(head + "\n" + "|---" * head.count(" | ") + "|---|")
    correct = 0
    for method in METHODS:
        found: dict[str, list[float]] = {}
        wins = {"deletion": 0, "insertion": 0}
        start = time.perf_counter()
        for item in pictures:
            image = Image.fromarray(item.image)
            checked = cascade(loaded, image, method)
            found.setdefault("top", []).append(checked.levels[TOP_LEVEL].spearman)
            found.setdefault("all", []).append(checked.levels[-1].spearman)
            found.setdefault("ssim", []).append(checked.levels[-1].ssim)
            curves = faithfulness(loaded, image, method).curves
            for key in ORDERS:
                found.setdefault(f"{key} deletion", []).append(curves[key].deletion_auc)
                found.setdefault(f"{key} insertion", []).append(curves[key].insertion_auc)
            wins["deletion"] += curves["map"].deletion_auc < min(curves[k].deletion_auc for k in ("random", "edge"))
            wins["insertion"] += curves["map"].insertion_auc > max(curves[k].insertion_auc for k in ("random", "edge"))
            if method == METHODS[0]:
                correct += checked.original.target == item.label
        seconds = (time.perf_counter() - start) / images
        cells = [_cell(found[key]) for key in ("top", "all", "ssim", "map deletion", "random deletion", "edge deletion",
                                               "map insertion", "random insertion", "edge insertion")]
        print(f"| {METHOD_TITLES[method]} | " + " | ".join(cells)
              + f" | {wins['deletion']}/{images} | {wins['insertion']}/{images} | {seconds:.1f} |", flush=True)
    print(f"\nThe model named {correct} of the {images} images correctly.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["timing", "methods"])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.what == "timing":
        timing()
    else:
        methods(args.images, args.seed)


if __name__ == "__main__":
    main()
