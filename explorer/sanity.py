"""Can you trust the map? Two checks for any attribution method on any registry model.

- **Cascading randomization** (Adebayo et al. 2018, "Sanity checks for saliency maps"): the map of
  the original model, then the maps after re-initializing, one part more at each level, the head,
  the stages from last to first and the stem (the registry's `StageLayout` gives the parts). Each
  map is compared with the original by Spearman's rank correlation of |map| and by SSIM. A map that
  stays the same while the weights are destroyed shows the image, not what the model learned.
  The parts are re-initialized on a deep copy of the model; the shared, cached model is not touched.
- **Deletion and insertion** (Petsiuk et al. 2018, RISE): the pixels are taken in the map's order,
  highest first, and in `steps` steps either deleted (replaced by the mean color, zero after
  normalization) or inserted (revealed on a strongly blurred copy of the image); the target class's
  probability after each step gives a curve, and the area under it (x from 0 to 1) sums it up: a
  faithful map makes the deletion area small and the insertion area large. A random order and a
  Sobel edge map give the same curves as baselines a map must beat.

Re-initializing a part: every module in it that has `reset_parameters` (convolutions, linear
layers, norms) gets PyTorch's fresh initialization; parameters no such module owns (ConvNeXt's layer
scale, Swin's position-bias tables) are shuffled, so they keep their values' spread but lose their
order. (Their own init, 1e-6 for ConvNeXt's layer scale, would switch the residual branches off and
test something else.)
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from explorer.attribution import AttributionResult, attribute
from explorer.inference import preprocess
from explorer.weights import LoadedModel
from explorer.zoo import ExplorerError, StageLayout, get_spec

DEFAULT_STEPS = 20  # deletion/insertion steps (the curves have steps + 1 points)
MAX_STEPS = 1000
CURVE_BATCH = 16  # perturbed images per forward pass
SEED = 0  # re-initialization, the random order and the tie-breaking all draw from it
BLUR_SIGMA = 1 / 12  # insertion's blurred start: the Gaussian's sigma as a fraction of the image side
TOP_LEVEL = 2  # the cascade level after which "the top layers" (head and last stage) are random
STILL_SAME = 0.8  # Spearman at or above this after the top layers are random: the map barely changed
STILL_RELATED = 0.5  # ... at or above this with every layer random: the image's structure still shows

Progress = Callable[[float, str], None]


def _quiet(_fraction: float, _what: str) -> None:
    return None


# --- similarity ----------------------------------------------------------------------------------

def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of |a| and |b| over all pixels (scipy; ties get average ranks).

    A constant map has no order: two constant maps count as 1 when equal, and a constant map beside
    a varying one as 0 (they share no ranking), where scipy would give NaN.
    """
    from scipy.stats import spearmanr

    x, y = np.abs(a).ravel(), np.abs(b).ravel()
    flat_x, flat_y = bool(np.ptp(x) == 0), bool(np.ptp(y) == 0)
    if flat_x or flat_y:
        return float(flat_x and flat_y and np.array_equal(x, y))
    return float(spearmanr(x, y).statistic)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two [0, 1] maps (scikit-image's, 7x7 uniform windows, data range 1)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=1.0))


# --- cascading randomization -----------------------------------------------------------------------

def cascade_parts(layout: StageLayout) -> list[tuple[str, tuple[str, ...]]]:
    """(name, module names) of each part, in the order the cascade re-initializes them: the head, the
    stages from last to first, the stem."""
    stages = [(f"stage {index + 1}", (module,)) for index, module in enumerate(layout.stages)]
    return [("head", layout.head), *reversed(stages), ("stem", layout.stem)]


def reinitialize(part: nn.Module) -> None:
    """Fresh weights for every module of `part` that can reset itself; the other parameters shuffled."""
    reset: set[int] = set()
    for module in part.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            reset.update(id(parameter) for parameter in module.parameters(recurse=False))
    with torch.no_grad():
        for parameter in part.parameters():
            if id(parameter) not in reset:
                flat = parameter.view(-1)
                flat.copy_(flat[torch.randperm(flat.numel())])


@dataclass(frozen=True)
class Level:
    """One level of the cascade: what is random so far, its map, and how like the original it is."""

    randomized: tuple[str, ...]  # parts re-initialized so far ("head", "stage 4", ...); () for the original
    spearman: float  # rank correlation of |map| with the original's
    ssim: float  # structural similarity with the original's
    result: AttributionResult  # the map, computed on the partly random copy

    @property
    def name(self) -> str:
        return "original" if not self.randomized else f"+ {self.randomized[-1]}" if len(self.randomized) > 1 \
            else self.randomized[0]


@dataclass(frozen=True)
class CascadeResult:
    """The cascade for one image, method and class."""

    original: AttributionResult
    levels: tuple[Level, ...]  # the original first (spearman 1), then one per re-initialized part
    seconds: float

    def reading(self) -> str:
        """What the numbers say, in a sentence."""
        top = self.levels[min(TOP_LEVEL, len(self.levels) - 1)]
        full = self.levels[-1].spearman
        if top.spearman >= STILL_SAME:
            return (f"The map changed little when the top layers ({' and '.join(top.randomized)}) were randomized "
                    f"(Spearman {top.spearman:.2f}; {full:.2f} with every layer random): it depends on the image "
                    f"more than on what the model learned.")
        if full >= STILL_RELATED:
            return (f"The map changed when the top layers were randomized (Spearman {top.spearman:.2f}), but with "
                    f"every layer random it still keeps {full:.2f}: part of it is the image's own structure "
                    f"(edges, contrast), whatever the weights.")
        return (f"The map changed as the layers were randomized (Spearman {top.spearman:.2f} with the top layers "
                f"random, {full:.2f} with every layer random): it depends on what the model learned, as an "
                f"explanation should.")

    def to_json(self) -> dict:
        first = self.original
        return {"model": first.model, "weights": first.weights, "method": first.method, "layer": first.layer,
                "target": first.target, "label": first.label,
                "levels": [{"randomized": list(level.randomized), "spearman": round(level.spearman, 6),
                            "ssim": round(level.ssim, 6)} for level in self.levels],
                "seconds": round(self.seconds, 3)}


def _private_copy(loaded: LoadedModel) -> LoadedModel:
    """The model deep-copied (while no other request has hooks on it), with a lock of its own."""
    with loaded.lock:
        model = copy.deepcopy(loaded.model)
    return dataclasses.replace(loaded, model=model, lock=threading.RLock())


def cascade(loaded: LoadedModel, image: Image.Image, method: str = "gradcam", layer: str | None = None,
            target: int | str | None = None, progress: Progress = _quiet) -> CascadeResult:
    """Cascading randomization of `method`'s map for one class (default: the predicted one)."""
    start = time.perf_counter()
    parts = cascade_parts(get_spec(loaded.name).layout)
    progress(0.0, "The original map")
    original = attribute(loaded, image, method, layer, target)
    levels = [Level((), 1.0, 1.0, original)]
    randomized = _private_copy(loaded)
    with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state is left alone
        torch.manual_seed(SEED)
        for index, (part, modules) in enumerate(parts):
            progress((index + 1) / (len(parts) + 1), f"Randomizing the {part}")
            for module in modules:
                reinitialize(randomized.model.get_submodule(module))
            result = attribute(randomized, image, method, original.layer, original.target)
            levels.append(Level(levels[-1].randomized + (part,), spearman(original.map, result.map),
                                ssim(original.map, result.map), result))
    return CascadeResult(original, tuple(levels), time.perf_counter() - start)


# --- deletion and insertion ------------------------------------------------------------------------

def check_steps(steps: int) -> int:
    if not 1 <= steps <= MAX_STEPS:
        raise ExplorerError(f"{steps} steps is not possible: give between 1 and {MAX_STEPS} (the paper's "
                            f"curves use tens; {DEFAULT_STEPS} is the default).")
    return steps


def pixel_order(heat: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Flat pixel indices, highest value first; equal values in a random order drawn from `seed` (not
    top-left first)."""
    values = np.asarray(heat, dtype=np.float64).ravel()
    return np.lexsort((np.random.default_rng(seed).random(values.size), -values))


def probability_curve(model: nn.Module, start: torch.Tensor, end: torch.Tensor, order: np.ndarray, steps: int,
                      target: int) -> np.ndarray:
    """The target's probability as the pixels of `start` (1, 3, H, W) are replaced by `end`'s, in
    `order`, after 0, 1, ..., `steps` equal steps; (steps + 1,) float values."""
    height, width = start.shape[-2:]
    ranks = torch.empty(height * width, dtype=torch.long)
    ranks[torch.from_numpy(np.ascontiguousarray(order))] = torch.arange(height * width)  # pixel -> its place in the order
    counts = torch.from_numpy(np.round(np.linspace(0, height * width, steps + 1)).astype(np.int64))
    probabilities = []
    with torch.inference_mode():
        for chunk in counts.split(CURVE_BATCH):
            replaced = (ranks[None, :] < chunk[:, None]).view(-1, 1, height, width)  # (n, 1, H, W)
            frames = torch.where(replaced, end, start)  # (n, 3, H, W)
            probabilities.append(model(frames).softmax(dim=-1)[:, target])
    return torch.cat(probabilities).numpy().astype(np.float64)


def area(curve: np.ndarray) -> float:
    """The area under a curve sampled at equal steps over x in [0, 1] (trapezoids)."""
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def blurred(batch: torch.Tensor) -> torch.Tensor:
    """A Gaussian blur of a (1, 3, H, W) batch, insertion's start. RISE's sigma (5 px at 224) leaves
    the bundled model's large shapes recognizable (probability near 1 before a pixel is revealed, so
    every order scores the same); a sigma of 1/12 of the side takes them away."""
    from torchvision.transforms.functional import gaussian_blur

    sigma = BLUR_SIGMA * min(batch.shape[-2:])
    return gaussian_blur(batch, kernel_size=2 * int(np.ceil(3 * sigma)) + 1, sigma=sigma)


def edge_map(image: np.ndarray) -> np.ndarray:
    """Sobel edge magnitude of an (H, W, 3) uint8 image's gray levels: a map that knows no model."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    return sobel(rgb2gray(image))


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves of one pixel order."""

    deletion: np.ndarray  # (steps + 1,) target probability as its pixels are deleted
    insertion: np.ndarray  # (steps + 1,) ... as they are revealed on the blurred image

    @property
    def deletion_auc(self) -> float:
        return area(self.deletion)

    @property
    def insertion_auc(self) -> float:
        return area(self.insertion)


ORDERS = {"map": "the map's order", "random": "random order", "edge": "Sobel edges"}  # key -> what a person reads


@dataclass(frozen=True)
class FaithfulnessResult:
    """Deletion and insertion for one image, method and class, with the two baselines."""

    result: AttributionResult  # the map whose order is tested
    steps: int
    curves: dict[str, Curves]  # ORDERS key -> its curves
    seconds: float

    def reading(self) -> str:
        """What the numbers say, in a sentence."""
        own, others = self.curves["map"], [self.curves[key] for key in ORDERS if key != "map"]
        deletes = own.deletion_auc < min(c.deletion_auc for c in others)
        inserts = own.insertion_auc > max(c.insertion_auc for c in others)
        numbers = (f"deletion area {own.deletion_auc:.2f} against {self._baselines('deletion_auc')}, insertion area "
                   f"{own.insertion_auc:.2f} against {self._baselines('insertion_auc')}")
        if deletes and inserts:
            return (f"Deleting the map's pixels first lowers the score faster, and revealing them first raises it "
                    f"faster, than random pixels or edges ({numbers}): the pixels it ranks first drive the decision.")
        if not deletes and not inserts:
            return (f"The map's order does no better than random pixels or an edge detector ({numbers}): as a guide "
                    f"to what drives the decision it is a picture, not an explanation.")
        better, worse = ("deletion", "insertion") if deletes else ("insertion", "deletion")
        return (f"The map beats both baselines on {better} but not on {worse} ({numbers}): its top pixels matter, "
                f"but it does not rank the rest well.")

    def _baselines(self, attribute_name: str) -> str:
        return " and ".join(f"{getattr(self.curves[key], attribute_name):.2f} ({ORDERS[key]})"
                            for key in ORDERS if key != "map")

    def to_json(self) -> dict:
        first = self.result
        document = {"model": first.model, "weights": first.weights, "method": first.method, "layer": first.layer,
                    "target": first.target, "label": first.label, "steps": self.steps}
        for key, curves in self.curves.items():
            prefix = "" if key == "map" else f"{key}_"
            document[f"{prefix}deletion_auc"] = round(curves.deletion_auc, 6)
            document[f"{prefix}insertion_auc"] = round(curves.insertion_auc, 6)
        document["curves"] = {key: {"deletion": curves.deletion.round(6).tolist(),
                                    "insertion": curves.insertion.round(6).tolist()}
                              for key, curves in self.curves.items()}
        document["seconds"] = round(self.seconds, 3)
        return document


def faithfulness(loaded: LoadedModel, image: Image.Image, method: str = "gradcam", layer: str | None = None,
                 target: int | str | None = None, steps: int = DEFAULT_STEPS,
                 progress: Progress = _quiet) -> FaithfulnessResult:
    """Deletion and insertion curves of `method`'s map for one class (default: the predicted one),
    and of a random order and a Sobel edge map."""
    check_steps(steps)
    start = time.perf_counter()
    progress(0.0, "The map")
    result = attribute(loaded, image, method, layer, target)
    return _faithfulness_of(loaded, image, result, steps, progress, start)


def _faithfulness_of(loaded: LoadedModel, image: Image.Image, result: AttributionResult, steps: int,
                     progress: Progress, start: float) -> FaithfulnessResult:
    batch = preprocess(image, loaded.data_config)  # (1, 3, H, W)
    deleted, hidden = torch.zeros_like(batch), blurred(batch)  # the mean color; insertion's start
    heats = {"map": result.map, "random": np.random.default_rng(SEED).random(result.map.shape),
             "edge": edge_map(result.image)}
    curves = {}
    with loaded.lock:
        for index, (key, heat) in enumerate(heats.items()):
            progress((index + 1) / (len(heats) + 1), f"Deleting and inserting pixels in {ORDERS[key]}")
            order = pixel_order(heat)
            curves[key] = Curves(probability_curve(loaded.model, batch, deleted, order, steps, result.target),
                                 probability_curve(loaded.model, hidden, batch, order, steps, result.target))
    return FaithfulnessResult(result, steps, curves, time.perf_counter() - start)


# --- both --------------------------------------------------------------------------------------------

CASCADE_SHARE = 0.7  # of the progress bar: the cascade computes seven maps, the curves one model pass each


@dataclass(frozen=True)
class MapCheck:
    """Both checks of one map."""

    cascade: CascadeResult
    faithfulness: FaithfulnessResult

    def reading(self) -> str:
        return f"{self.cascade.reading()} {self.faithfulness.reading()}"


def check_map(loaded: LoadedModel, image: Image.Image, method: str = "gradcam", layer: str | None = None,
              target: int | str | None = None, steps: int = DEFAULT_STEPS, progress: Progress = _quiet) -> MapCheck:
    """The cascade and the deletion/insertion curves of one map (computed once for both)."""
    check_steps(steps)
    checked = cascade(loaded, image, method, layer, target,
                      progress=lambda fraction, what: progress(CASCADE_SHARE * fraction, what))
    start = time.perf_counter()
    curves = _faithfulness_of(loaded, image, checked.original, steps,
                              lambda fraction, what: progress(CASCADE_SHARE + (1 - CASCADE_SHARE) * fraction, what),
                              start)
    return MapCheck(checked, curves)
