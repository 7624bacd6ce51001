"""The shapes generator and the bundled `convnext_shapes` model: masks, weights, card, accuracy, pointing.

Accuracy and pointing are measured on images from a fresh random seed at every run; the seed is
printed, so a failure can be reproduced with `ShapesDataset(SEED, 400)`. Grad-CAM is computed here
with captum directly, independent of the project's own attribution code.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.shapes import CLASSES, MAX_SIZE, MIN_SIZE, SHAPES_NET, ShapesDataset, sample
from explorer.zoo import build_model, get_spec

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"
WEIGHTS = WEIGHTS_DIR / "convnext_shapes.safetensors"
CARD = WEIGHTS_DIR / "convnext_shapes.json"
MAX_BYTES = 20 * 1024 * 1024
EVAL_IMAGES = 400
MIN_TOP1, MIN_POINTING = 0.97, 0.85
CARD_KEYS = {"name", "classes", "input_size", "mean", "std", "depths", "dims", "command", "train_seconds",
             "device", "top1", "pointing", "cam_layer", "eval_images", "seed"}
SIDE = SHAPES_NET.input_size


# --- the generator -------------------------------------------------------------------------------

def test_same_seed_same_images_other_seed_other_images():
    for index in range(8):
        first, again, other = sample(11, index, 64), sample(11, index, 64), sample(12, index, 64)
        assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)
        assert first.label == again.label == other.label
        assert not np.array_equal(first.image, other.image)


def test_images_masks_and_labels_have_the_promised_types():
    item = sample(3, 5, 96)
    assert item.image.shape == (96, 96, 3) and item.image.dtype == np.uint8
    assert item.mask.shape == (96, 96) and item.mask.dtype == bool
    assert CLASSES[item.label] == "ring"


def test_all_eight_classes_occur_in_equal_numbers():
    labels = [sample(0, index, 32).label for index in range(80)]
    assert sorted(set(labels)) == list(range(len(CLASSES)))
    assert all(labels.count(label) == 10 for label in range(len(CLASSES)))


def _boundary_outside(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """Pixels outside the mask within `width` pixels of it."""
    grown = mask.copy()
    for _ in range(width):
        grown[1:] |= grown[:-1].copy()
        grown[:-1] |= grown[1:].copy()
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
    return grown & ~mask


@pytest.mark.parametrize("label", range(len(CLASSES)), ids=CLASSES)
def test_masks_cover_the_drawn_shape_and_nothing_else(label):
    for index in range(label, label + 8 * 12, 8):
        item = sample(21, index, SIDE)
        mask, pixels = item.mask, item.image.astype(float)
        assert mask.any() and not mask.all()
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())  # whole shape in view
        rows, cols = np.nonzero(mask)
        extent = max(np.ptp(rows), np.ptp(cols)) + 1
        # the shape is MIN_SIZE..MAX_SIZE of the side before rotation; rotated, its box side lies
        # between 1/sqrt(2) of that (the box's diagonal spans the shape) and sqrt(2) times it
        assert MIN_SIZE * SIDE / np.sqrt(2) - 2 <= extent <= MAX_SIZE * SIDE * np.sqrt(2) + 2
        # inside: one color plus pixel noise; just outside: clearly another color
        inside = pixels[mask]
        assert inside.std(axis=0).max() < 25
        outside = pixels[_boundary_outside(mask)]
        assert np.median(np.linalg.norm(outside - inside.mean(axis=0), axis=1)) > 40


def test_dataset_gives_normalized_tensors_and_batches_with_masks():
    data = ShapesDataset(seed=4, length=16, side=64)
    image, label = data[3]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and label == 3
    images, masks, labels = data.batch(0, 8)
    assert images.shape == (8, 3, 64, 64) and masks.shape == (8, 64, 64) and labels.tolist() == list(range(8))
    assert torch.equal(images[3], image)


# --- the bundled model ---------------------------------------------------------------------------
# Until the weights are trained and committed these tests cannot run; they say so instead of failing.
needs_weights = pytest.mark.skipif(
    not (WEIGHTS.is_file() and CARD.is_file()),
    reason="the bundled convnext_shapes weights are not trained yet: python -m explorer.train_shapes --out assets/weights")

@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD.read_text())


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    from safetensors.torch import load_file

    model = build_model("convnext_shapes")
    model.load_state_dict(load_file(WEIGHTS), strict=True)
    return model.eval()


@needs_weights
def test_weights_file_is_bundled_and_small():
    assert WEIGHTS.is_file(), "train it: python -m explorer.train_shapes"
    assert WEIGHTS.stat().st_size <= MAX_BYTES


@needs_weights
def test_card_describes_the_model(card):
    assert CARD_KEYS <= set(card)
    spec = get_spec("convnext_shapes")
    assert card["name"] == spec.name and tuple(card["classes"]) == CLASSES
    assert card["input_size"] == spec.input_size == SHAPES_NET.input_size
    assert tuple(card["depths"]) == SHAPES_NET.depths and tuple(card["dims"]) == SHAPES_NET.dims
    assert tuple(card["mean"]) == SHAPES_NET.mean and tuple(card["std"]) == SHAPES_NET.std
    assert card["command"].startswith("python -m explorer.train_shapes")
    assert card["top1"] >= MIN_TOP1 and card["pointing"] >= MIN_POINTING and card["eval_images"] >= EVAL_IMAGES


@needs_weights
def test_weights_load_strictly_into_the_zoo_model(model):
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in build_model("convnext_shapes", device="meta").parameters())


def _grad_cam_peaks(model: torch.nn.Module, layer: torch.nn.Module, images: torch.Tensor,
                    labels: torch.Tensor) -> list[tuple[int, int] | None]:
    """Each image's Grad-CAM peak (row, col) at the input size, or None where the map is all zero.

    Nearest upsampling gives each cell of the layer's grid its block of pixels; the peak is the
    centre of the pixels that hold the maximum.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    maps = LayerGradCam(model, layer).attribute(images, target=labels, relu_attributions=True)
    maps = LayerAttribution.interpolate(maps, tuple(images.shape[-2:]), "nearest")[:, 0].detach()
    peaks: list[tuple[int, int] | None] = []
    for heat in maps:
        if heat.max() <= 0:
            peaks.append(None)
            continue
        rows, cols = torch.nonzero(heat == heat.max(), as_tuple=True)
        peaks.append((round(rows.float().mean().item()), round(cols.float().mean().item())))
    return peaks


@pytest.fixture(scope="module")
def fresh_eval(model, card) -> tuple[float, float]:
    """(top-1, pointing) on EVAL_IMAGES images from a seed no one chose."""
    seed = random.SystemRandom().randrange(2**31)
    print(f"\nconvnext_shapes evaluated on ShapesDataset(seed={seed}, length={EVAL_IMAGES})")
    torch.set_num_threads(2)
    data, layer = ShapesDataset(seed, EVAL_IMAGES), model.get_submodule(card["cam_layer"])
    correct = hits = 0
    for start in range(0, EVAL_IMAGES, 100):
        images, masks, labels = data.batch(start, 100)
        with torch.no_grad():
            correct += (model(images).argmax(1) == labels).sum().item()
        for peak, mask in zip(_grad_cam_peaks(model, layer, images, labels), masks):
            hits += peak is not None and bool(mask[peak])
    top1, pointing = correct / EVAL_IMAGES, hits / EVAL_IMAGES
    print(f"top-1 {top1:.4f}, pointing {pointing:.4f} ({card['cam_layer']})")
    return top1, pointing


@needs_weights
def test_accuracy_on_fresh_images(fresh_eval):
    assert fresh_eval[0] >= MIN_TOP1


@needs_weights
def test_grad_cam_points_at_the_object(fresh_eval, card):
    assert card["cam_layer"] in ("stages.2", "stages.3")  # the last stage or the one before it
    assert fresh_eval[1] >= MIN_POINTING
