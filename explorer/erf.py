"""Effective receptive fields (Luo et al. 2016), measured as RepLKNet ("Scaling Up Your Kernels to
31x31", CVPR 2022) does, and their high-contribution area ratios.

The procedure, per image: resize it to the input size as a square (bicubic, no crop, so the whole
image is used) and normalize it with the model's mean and std; run the model up to a stage (default:
the last, before pooling); take the ReLU of that stage's output at the central position
(h // 2, w // 2), summed over channels; its gradient with respect to the input, ReLU, summed over the
RGB channels, is that image's map. The ERF is the mean of the maps over the images (and, for random
weights, over several seeds): an (H, W) array at the input resolution.

The analysis (`area_ratios`): log10(1 + map), divided by its maximum; for each t in `THRESHOLDS` the
smallest centred square of odd side that holds more than t of the total, its side in pixels and its
area ratio side^2 / (H * W). A larger ratio at t = 0.5 or 0.99: more of the image contributes.

Random weights show the architecture's prior, and two of the libraries' init conventions hide
most of it: timm's ConvNeXt starts every block's layer scale `gamma` at 1e-6 and timm's ResNet
starts the last BatchNorm of every block at zero, so at init their residual branches are (almost)
switched off. `BRANCHES_ON` is random init with those set to 1, labelled as such.

Results for the fixed image sets (noise, the bundled examples) are kept on disk (`cached_erf`),
keyed on the request, the weights file and the code, so that a lesson opens at once.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from explorer.attribution import CamLayer
from explorer.figure_cache import CACHE_ENV, cache_root, package_versions  # noqa: F401 - CACHE_ENV: where results are kept
from explorer.inference import ImageError, open_image, to_rgb
from explorer.weights import BUNDLED, PRETRAINED, WEIGHTS_DIR, load
from explorer.zoo import ExplorerError, StageLayout, build_model, check_input_size, get_spec, spatial_layout

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
RANDOM = "random"  # `weights`: random init, averaged over `seeds`
BRANCHES_ON = "random-branches-on"  # random init with layer scale and zero-initialized norms set to 1
NOISE, EXAMPLES = "noise", "examples"  # `images`: seeded noise pictures, or the bundled examples
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_IMAGES = 4  # noise pictures: with DEFAULT_SEEDS, 8 passes a model, about 5 s at 224 on 2 cores
DEFAULT_SEEDS = 2
MAX_IMAGES = 256  # per request; each is one forward and backward pass
MAX_SEEDS = 16
BATCH = 4  # images per pass: memory stays bounded, and a pass costs no more than four single ones
NOISE_SEED = 0
CACHE_FILES_KEPT = 64  # bound of the disk cache: about 200 KB each at 224 px, 13 MB in all
CODE_FILES = ("erf.py", "blocks.py", "roadmap.py", "shapes.py", "zoo.py")  # what a random model's map depends on

Progress = Callable[[float, str], None]


class ErfError(ExplorerError):
    """A request the ERF cannot be computed for: no images, an unknown stage, a bad count."""


# --- requests and results -------------------------------------------------------------------------

@dataclass(frozen=True)
class ErfRequest:
    """What to measure; every field is plain data, so that a request can key the disk cache."""

    model: str  # registry name
    weights: str | None = None  # None (the model's default: random, the bundled model's own), RANDOM,
    #                             BRANCHES_ON, PRETRAINED or a checkpoint path
    images: str | tuple[str, ...] = NOISE  # NOISE, EXAMPLES, a folder, or image files
    count: int = DEFAULT_IMAGES  # noise pictures made (NOISE); other sources use every image they hold
    seeds: int = DEFAULT_SEEDS  # random inits averaged (random weights only)
    stage: str | None = None  # a module name from the model's layout; None: the last stage
    input_size: int | None = None  # None: the model's

    @property
    def random(self) -> bool:
        return self.weights in (RANDOM, BRANCHES_ON) or (self.weights is None and self.model != BUNDLED)


@dataclass(frozen=True)
class AreaRatio:
    threshold: float
    side: int  # of the smallest centred square holding more than `threshold` of the total, in pixels
    ratio: float  # side^2 / (H * W)


@dataclass(frozen=True)
class ErfResult:
    """One effective receptive field and its analysis; `to_json` gives the command line's document."""

    model: str
    label: str  # what a person reads, from the registry
    weights: str  # which weights, in words
    input_size: int
    stage: str
    images: int  # how many images were used
    skipped: int  # files that could not be read as images
    seeds: int  # random inits averaged (1 for trained weights)
    map: np.ndarray = field(repr=False)  # (H, W) float32: the mean input gradient, before the log
    ratios: tuple[AreaRatio, ...] = ()
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"model": self.model, "weights": self.weights, "input_size": self.input_size, "stage": self.stage,
                "images": self.images, "skipped": self.skipped, "seeds": self.seeds,
                "area_ratio": {str(r.threshold): round(r.ratio, 6) for r in self.ratios},
                "side": {str(r.threshold): r.side for r in self.ratios}, "seconds": round(self.seconds, 3)}


# --- the analysis -------------------------------------------------------------------------------

def scaled_log(erf: np.ndarray) -> np.ndarray:
    """RepLKNet's view of a map: log10(1 + map) divided by its maximum (all zeros stay zeros)."""
    logged = np.log10(1 + np.clip(np.asarray(erf, dtype=np.float64), 0, None))
    peak = logged.max()
    return logged / peak if peak > 0 else logged


def area_ratios(erf: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> tuple[AreaRatio, ...]:
    """For each threshold t, the smallest centred square of odd side holding more than t of the
    total of `scaled_log(erf)`; the whole image (ratio 1) when no such square fits inside it."""
    data = scaled_log(erf)
    height, width = data.shape
    cy, cx = height // 2, width // 2
    total = data.sum()
    # the sum inside the square of half-side i, for every i that fits
    reach = min(cy, cx, height - 1 - cy, width - 1 - cx)
    sums = np.array([data[cy - i:cy + i + 1, cx - i:cx + i + 1].sum() for i in range(reach + 1)])
    found = []
    for t in thresholds:
        inside = np.nonzero(sums > t * total)[0] if total > 0 else np.array([0])
        side = 2 * int(inside[0]) + 1 if inside.size else max(height, width)
        found.append(AreaRatio(t, side, min(side * side / (height * width), 1.0)))
    return tuple(found)


def radial_profile(erf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance in pixels, mean share of the total per pixel at that distance) from the centre
    (h // 2, w // 2), in rings one pixel wide; the shares of all pixels sum to 1."""
    data = np.clip(np.asarray(erf, dtype=np.float64), 0, None)
    total = data.sum()
    share = data / total if total > 0 else data
    height, width = data.shape
    rows, cols = np.indices((height, width))
    ring = np.rint(np.hypot(rows - height // 2, cols - width // 2)).astype(int)  # (H, W)
    counts = np.bincount(ring.ravel())
    sums = np.bincount(ring.ravel(), weights=share.ravel())
    kept = counts > 0
    return np.nonzero(kept)[0].astype(float), sums[kept] / counts[kept]


# --- images -------------------------------------------------------------------------------------

def _readable(paths: Iterable[Path | str]) -> tuple[list[Image.Image], int]:
    """The images among `paths`, opened safely, and how many files could not be read."""
    images, skipped = [], 0
    for path in paths:
        try:
            images.append(open_image(path))
        except ImageError:
            skipped += 1
    return images, skipped


def folder_images(folder: str | os.PathLike) -> tuple[list[Image.Image], int]:
    """Every image in a folder (not its subfolders), by name; unreadable files are skipped and counted."""
    directory = Path(folder)
    if not directory.is_dir():
        raise ErfError(f"{directory} is not a folder; give a folder of images with --images.")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ErfError(f"The folder {directory} is empty; put some images (PNG, JPEG, ...) in it.")
    return _checked(*_readable(files), f"the folder {directory}")


def _checked(images: list[Image.Image], skipped: int, where: str) -> tuple[list[Image.Image], int]:
    if not images:
        raise ErfError(f"None of the {skipped} files in {where} could be read as an image; use PNG, JPEG, "
                       f"GIF, WebP, BMP or TIFF files.")
    return images, skipped


def noise_images(count: int, size: int, seed: int = NOISE_SEED) -> list[Image.Image]:
    """`count` pictures of uniform RGB noise, `size` pixels square, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def _images(request: ErfRequest, size: int) -> tuple[list[Image.Image], int]:
    if request.images == NOISE:
        return noise_images(request.count, size), 0
    if request.images == EXAMPLES:
        return folder_images(EXAMPLES_DIR)
    if isinstance(request.images, str):
        return folder_images(request.images)
    if not request.images:
        raise ErfError("Choose some images first: upload a few, or use the examples or noise.")
    return _checked(*_readable(request.images), "the uploaded files")


def square_batch(images: Sequence[Image.Image], size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(N, 3, size, size): each image resized to a square (bicubic, no crop), normalized."""
    arrays = [np.asarray(to_rgb(image).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
              for image in images]  # N x (size, size, 3)
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0  # (N, H, W, 3) -> (N, 3, H, W)
    return (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


# --- the gradient -------------------------------------------------------------------------------

class _StageReached(Exception):
    """Raised by the hook once the stage's output exists: nothing after the stage needs to run."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__()
        self.output = output


def _stop_at(module: nn.Module) -> torch.utils.hooks.RemovableHandle:
    def hook(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
        raise _StageReached(output)
    return module.register_forward_hook(hook)


def stage_output(model: nn.Module, layout: StageLayout, stage: str, batch: torch.Tensor) -> torch.Tensor:
    """The output of `stage` for `batch`, as (N, C, h, w) (Swin's (N, h, w, C) through the same probe
    as Grad-CAM's), with the graph back to `batch`; the layers after the stage do not run."""
    with CamLayer(model, layout, stage) as module:
        handle = _stop_at(module)
        try:
            model(batch)
        except _StageReached as reached:
            return reached.output
        finally:
            handle.remove()
    raise ErfError(f"The model never ran its stage {stage}.")  # not for any registry layout


def gradient_map(model: nn.Module, layout: StageLayout, stage: str, batch: torch.Tensor) -> torch.Tensor:
    """The sum over the batch of each image's map: ReLU(d centre / d input) summed over RGB, (H, W).

    One backward pass serves the whole batch: in eval mode no image's output depends on another's
    input, so the gradient of the summed centres is, image by image, the gradient of its own centre."""
    pixels = batch.clone().requires_grad_()
    with torch.enable_grad():
        features = stage_output(model, layout, stage, pixels)  # (N, C, h, w)
        height, width = features.shape[-2:]
        centre = features[:, :, height // 2, width // 2].relu().sum()  # ReLU at the centre, summed over channels
        (gradient,) = torch.autograd.grad(centre, pixels)  # (N, 3, H, W)
    return gradient.relu().sum(dim=(0, 1))  # (H, W)


def _batches(tensor: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(tensor), size):
        yield tensor[start:start + size]


# --- models -------------------------------------------------------------------------------------

def switch_branches_on(model: nn.Module) -> nn.Module:
    """Every residual branch at full strength: layer-scale `gamma` at 1, and norms that the library
    initialized at zero (timm ResNet's last BatchNorm of each block) at 1."""
    from explorer.train_shapes import start_layer_scale

    start_layer_scale(model, 1.0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None \
                    and not bool(module.weight.any()):
                module.weight.fill_(1.0)
    return model


def _random_models(name: str, size: int, seeds: int, branches_on: bool) -> Iterator[nn.Module]:
    for seed in range(seeds):
        with torch.random.fork_rng():  # the caller's random state is left as it was
            torch.manual_seed(seed)
            model = build_model(name, size)
        yield switch_branches_on(model) if branches_on else model


def weights_label(request: ErfRequest) -> str:
    if request.weights == BRANCHES_ON:
        return f"random init, residual branches on (layer scale and zero-init norms at 1), {request.seeds} seeds"
    if request.random:
        return f"random init, {request.seeds} seeds"
    return load(request.model, request.weights).weights


def stages_of(name: str) -> tuple[str, ...]:
    return get_spec(name).layout.stages


def _check(request: ErfRequest) -> tuple[int, str]:
    """The input size and stage of a request, after checking every field a person chose."""
    spec = get_spec(request.model)
    stages = spatial_layout(request.model).stages
    stage = request.stage or stages[-1]
    if stage not in stages:
        raise ErfError(f"{request.model} has no stage called '{stage}'; use one of {', '.join(stages)}.")
    size = request.input_size or spec.input_size
    check_input_size(size)
    if spec.fixed_input and size != spec.input_size:
        raise ErfError(f"{request.model} is built for {spec.input_size}x{spec.input_size} inputs (its attention "
                       f"windows depend on it); leave --input-size out or use {spec.input_size}.")
    if request.images == NOISE and not 1 <= request.count <= MAX_IMAGES:
        raise ErfError(f"--noise must be between 1 and {MAX_IMAGES} images, not {request.count}.")
    if request.random and not 1 <= request.seeds <= MAX_SEEDS:
        raise ErfError(f"--seeds must be between 1 and {MAX_SEEDS}, not {request.seeds}.")
    return size, stage


def compute_erf(request: ErfRequest, progress: Progress | None = None) -> ErfResult:
    """The ERF of one model, stage and set of images (see the module's docstring)."""
    size, stage = _check(request)
    spec = get_spec(request.model)
    start = time.perf_counter()
    report = progress or (lambda _fraction, _what: None)
    report(0.0, f"{spec.label}: loading")
    data_config = load(request.model, None if request.random else request.weights).data_config
    images, skipped = _images(request, size)
    batch = square_batch(images, size, data_config["mean"], data_config["std"])  # (N, 3, size, size)
    if request.random:
        models = _random_models(request.model, size, request.seeds, request.weights == BRANCHES_ON)
        seeds, lock = request.seeds, None
    else:
        loaded = load(request.model, request.weights)
        models, seeds, lock = iter([loaded.model]), 1, loaded.lock
    total = torch.zeros(size, size)
    passes, done = seeds * -(-len(images) // BATCH), 0
    for model in models:
        for part in _batches(batch, BATCH):
            if lock is None:
                total += gradient_map(model, spec.layout, stage, part)
            else:
                with lock:  # a shared model: hooks must see this pass only
                    total += gradient_map(model, spec.layout, stage, part)
            done += 1
            report(done / passes, f"{spec.label}: pass {done} of {passes}")
    erf = (total / (len(images) * seeds)).numpy().astype(np.float32)
    return ErfResult(request.model, spec.label, weights_label(request), size, stage, len(images), skipped, seeds,
                     erf, area_ratios(erf), time.perf_counter() - start)


# --- the disk cache -----------------------------------------------------------------------------

def cache_dir() -> Path:
    return cache_root() / "erf"


def _code_version() -> str:
    here = Path(__file__).resolve().parent
    versions = package_versions()
    digest = hashlib.sha256(f"torch {versions['torch']} timm {versions['timm']}".encode())
    for name in CODE_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def _weights_version(request: ErfRequest) -> str:
    if request.random:
        return RANDOM
    if request.weights is None:  # the bundled model's own file
        file = WEIGHTS_DIR / f"{BUNDLED}.safetensors"
    elif request.weights == PRETRAINED:
        return PRETRAINED
    else:
        file = Path(request.weights)
    stat = file.stat()
    return f"{file.resolve()}@{stat.st_mtime_ns}:{stat.st_size}"


def _images_version(request: ErfRequest) -> str:
    if request.images == NOISE:
        return f"noise {request.count} seed {NOISE_SEED}"
    files = sorted(EXAMPLES_DIR.iterdir())
    return ";".join(f"{p.name}@{p.stat().st_mtime_ns}" for p in files)


def _cache_key(request: ErfRequest) -> str:
    fields = {**asdict(request), "weights_version": _weights_version(request),
              "images_version": _images_version(request), "code": _code_version()}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def _prune(folder: Path, kept: int) -> None:
    files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in files[kept:]:
        stale.unlink(missing_ok=True)


def cached_erf(request: ErfRequest, progress: Progress | None = None) -> ErfResult:
    """`compute_erf`, kept on disk for the fixed image sets (noise, the bundled examples); other
    requests are computed every time. The newest `CACHE_FILES_KEPT` results are kept."""
    if request.images not in (NOISE, EXAMPLES):
        return compute_erf(request, progress)
    _check(request)
    folder = cache_dir()
    file = folder / f"{_cache_key(request)}.npz"
    try:
        with np.load(file) as stored:
            meta = json.loads(str(stored["meta"]))
            erf = stored["map"]
        os.utime(file)  # recently used: pruned last
        ratios = tuple(AreaRatio(**ratio) for ratio in meta.pop("ratios"))
        return ErfResult(**meta, map=erf, ratios=ratios)
    except (OSError, KeyError, ValueError, TypeError):  # not there yet, or written by another version
        pass
    result = compute_erf(request, progress)
    meta = {**asdict(replace(result, map=np.zeros(0))), "ratios": [asdict(r) for r in result.ratios]}
    del meta["map"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = file.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, map=result.map, meta=json.dumps(meta))
        partial.replace(file)
        _prune(folder, CACHE_FILES_KEPT)
    except OSError:  # a read-only home: the result is still good, only not kept
        pass
    return result


# --- comparisons --------------------------------------------------------------------------------

KERNEL_SWEEP = ("roadmap:move_dw", "roadmap:kernel5", "roadmap:kernel7", "roadmap:kernel9", "roadmap:kernel11")
FAMILIES = ("resnet50", "convnext_tiny", "swin_tiny_patch4_window7_224", "roadmap:resnet50", "roadmap:convnext_t")
TRAINED = "trained"  # `comparison` weights: the bundled model's own, or the paper's for every other model
COMPARISONS = {  # kind -> what a person reads
    "kernel_sweep": "the roadmap's kernel sweep, 3x3 to 11x11",
    "families": "ResNet-50, ConvNeXt-T and Swin-T, and the roadmap's start and end",
    "stages": "stage by stage inside one model",
    "trained": "random init against trained weights, one model",
    "models": "the models I pick",
}


@dataclass(frozen=True)
class Comparison:
    """A set of ERFs shown side by side."""

    kind: str  # a key of COMPARISONS
    title: str
    requests: tuple[ErfRequest, ...]


def _own_weights(name: str, weights: str | None) -> str | None:
    if weights == TRAINED:
        return None if name == BUNDLED else PRETRAINED
    return weights


def _stage_name(name: str, stage: int | None) -> str | None:
    """The module name of stage `stage` (0-based) of a model; None (the last) stays None."""
    stages = stages_of(name)
    if stage is None:
        return None
    if not 0 <= stage < len(stages):
        raise ErfError(f"{name} has {len(stages)} stages; pick stage 1 to {len(stages)}.")
    return stages[stage]


def comparison(kind: str, models: Sequence[str] = (), weights: str | None = RANDOM,
               images: str | tuple[str, ...] = NOISE, count: int = DEFAULT_IMAGES, seeds: int = DEFAULT_SEEDS,
               stage: int | None = None) -> Comparison:
    """The requests of one comparison (COMPARISONS): the kernel sweep and the families use their own
    models, the others `models` (stage by stage and random-against-trained: the first one only).
    `weights` may be TRAINED; `stage` is 0-based (None: each model's last)."""
    if kind not in COMPARISONS:
        raise ErfError(f"Unknown comparison '{kind}'; use one of {', '.join(COMPARISONS)}.")
    names = {"kernel_sweep": KERNEL_SWEEP, "families": FAMILIES}.get(kind, tuple(models))
    if not names:
        raise ErfError("Pick a model first.")
    if kind == "stages":
        name = names[0]
        template = ErfRequest(name, _own_weights(name, weights), images, count, seeds)
        requests = tuple(replace(template, stage=module) for module in stages_of(name))
        title = f"{get_spec(name).label}, stage 1 to {len(requests)}"
    elif kind == "trained":
        name = names[0]
        requests = tuple(ErfRequest(name, choice, images, count, seeds, _stage_name(name, stage))
                         for choice in (RANDOM, BRANCHES_ON, _own_weights(name, TRAINED)))
        title = f"{get_spec(name).label}: random init against trained weights"
    else:
        requests = tuple(ErfRequest(name, _own_weights(name, weights), images, count, seeds, _stage_name(name, stage))
                         for name in names)
        title = COMPARISONS[kind][0].upper() + COMPARISONS[kind][1:]
    return Comparison(kind, title, requests)


def growth(results: list[ErfResult]) -> str:
    """What the numbers say, in a sentence: does the area ratio at t = 0.5 grow along the row?"""
    ratios = [result.ratios[2].ratio for result in results]
    if len(ratios) < 2:
        return ""
    grows = all(b >= a for a, b in zip(ratios, ratios[1:]))
    trend = "grows at every step" if grows else "does **not** grow steadily"
    return (f"Along the row, the area ratio at t = 0.5 {trend}: "
            + " -> ".join(f"{ratio:.3f}" for ratio in ratios) + ".")


def compare(chosen: Comparison, progress: Progress | None = None) -> list[ErfResult]:
    """Every ERF of a comparison (from the disk cache where it can), in order."""
    report = progress or (lambda _fraction, _what: None)
    count = len(chosen.requests)

    def part(index: int) -> Progress:
        return lambda fraction, what: report((index + fraction) / count, what)

    return [cached_erf(request, part(index)) for index, request in enumerate(chosen.requests)]
