"""Procedural images of eight shape classes, with each object's mask: the bundled model's data.

Each image holds one filled shape (circle, square, triangle, star, cross, ring, diamond or hexagon)
of a random color, size, position and rotation, over a cluttered background: a color gradient,
random lines and pixel noise. The generator also returns the object's boolean mask, so that an
attribution map can be checked against where the object really is ("pointing").

Everything is deterministic given a seed: image `i` of a `ShapesDataset(seed=s)` is drawn from
`numpy.random.default_rng([s, i])`, so any image can be made again on its own, in any worker.

This module also holds `SHAPES_NET`, the one place where the bundled ConvNeXt's architecture is
written down; the zoo (`convnext_shapes`) and the training script both read it from here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

if TYPE_CHECKING:  # only for type hints: the zoo imports this module
    from explorer.zoo import ModelSpec

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon")
MIN_SIZE, MAX_SIZE = 0.2, 0.6  # the shape's extent before rotation, as a fraction of the image side
MIN_CONTRAST = 90.0  # least RGB distance between the shape's color and the background under it
RING_HOLE = (0.45, 0.65)  # a ring's inner radius, as a fraction of its outer radius
STAR_INNER = 0.42  # a star's inner radius, as a fraction of its outer radius
CIRCLE_VERTICES = 72  # circles and rings are drawn as polygons this fine


@dataclass(frozen=True)
class ShapesNet:
    """The bundled ConvNeXt: a real timm ConvNeXt, narrow and shallow, for 8 classes."""

    depths: tuple[int, ...] = (1, 1, 2, 1)  # blocks per stage (ConvNeXt-T has 3, 3, 9, 3)
    dims: tuple[int, ...] = (16, 32, 64, 128)  # channels per stage (ConvNeXt-T has 96 ... 768)
    input_size: int = 128  # square input side; stage 4 sees a 4x4 grid
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet's, as timm uses
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


SHAPES_NET = ShapesNet()


def build_shapes_convnext(spec: ModelSpec | None = None, input_size: int | None = None) -> nn.Module:
    """The bundled ConvNeXt with random weights (the zoo's `build=` for `convnext_shapes`).

    ConvNeXt does not depend on the input size, so `input_size` is accepted and ignored.
    """
    from timm.models.convnext import ConvNeXt  # imported here: timm costs a second to import

    return ConvNeXt(depths=SHAPES_NET.depths, dims=SHAPES_NET.dims, num_classes=len(CLASSES))


class ShapeImage(NamedTuple):
    """One generated sample."""

    image: np.ndarray  # (H, W, 3) uint8
    mask: np.ndarray  # (H, W) bool, True on the object
    label: int  # index into CLASSES


def _regular_polygon(corners: int, radius: float, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(corners) / corners
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star() -> np.ndarray:
    outer = _regular_polygon(5, 0.5, -np.pi / 2)
    inner = _regular_polygon(5, 0.5 * STAR_INNER, -np.pi / 2 + np.pi / 5)
    return np.stack([outer, inner], axis=1).reshape(10, 2)  # tips and notches alternate


def _cross() -> np.ndarray:
    a, b = 0.5, 0.5 / 3  # arm half-length, arm half-width
    return np.array([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b),
                     (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)])


def _triangle() -> np.ndarray:
    # equilateral with side 1, centred on its centroid
    return _regular_polygon(3, 1 / np.sqrt(3), -np.pi / 2)


# Each outline is centred on the origin and fits a unit box before rotation (its longest extent is 1).
_OUTLINES: dict[str, np.ndarray] = {
    "circle": _regular_polygon(CIRCLE_VERTICES, 0.5),
    "square": np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]),
    "triangle": _triangle(),
    "star": _star(),
    "cross": _cross(),
    "ring": _regular_polygon(CIRCLE_VERTICES, 0.5),
    "diamond": np.array([(0.0, -0.5), (0.3, 0.0), (0.0, 0.5), (-0.3, 0.0)]),
    "hexagon": _regular_polygon(6, 0.5),
}


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _shape_mask(label: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """The filled shape of class `label` at a random size, rotation and position, as a bool mask."""
    name = CLASSES[label]
    size = rng.uniform(MIN_SIZE, MAX_SIZE) * side
    outline = _rotate(_OUTLINES[name], rng.uniform(0, 2 * np.pi)) * size
    reach = np.abs(outline).max(axis=0)  # half-extent after rotation, per axis
    centre = rng.uniform(reach + 1, side - 1 - reach)  # the whole shape stays inside the image
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon([tuple(p) for p in outline + centre], fill=255)
    if name == "ring":
        hole = _OUTLINES["ring"] * size * rng.uniform(*RING_HOLE)
        draw.polygon([tuple(p) for p in hole + centre], fill=0)
    return np.asarray(canvas) > 0


def _background(side: int, rng: np.random.Generator) -> np.ndarray:
    """A color gradient in a random direction with random lines on it, as float (H, W, 3) in 0..255."""
    start, end = rng.uniform(0, 255, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    axis = np.linspace(-0.5, 0.5, side)
    ramp = np.clip(np.cos(angle) * axis[None, :] + np.sin(angle) * axis[:, None] + 0.5, 0, 1)
    canvas = Image.fromarray((start + ramp[..., None] * (end - start)).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(3, 9)):
        ends = rng.uniform(-0.1, 1.1, size=4) * side
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.line([tuple(ends[:2]), tuple(ends[2:])], fill=color, width=int(rng.integers(1, max(2, side // 32) + 1)))
    return np.asarray(canvas, dtype=np.float32)


def _contrasting_color(under: np.ndarray, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
    """A random color far enough from the mean background color under the shape to be seen."""
    mean = under.mean(axis=0)
    color = rng.uniform(0, 255, size=3)
    for _ in range(tries):
        if np.linalg.norm(color - mean) >= MIN_CONTRAST:
            break
        color = rng.uniform(0, 255, size=3)
    return color


def make_image(label: int, side: int, rng: np.random.Generator) -> ShapeImage:
    """One image of class `label` with the object's mask, drawn with `rng`."""
    background = _background(side, rng)
    mask = _shape_mask(label, side, rng)
    image = background.copy()
    image[mask] = _contrasting_color(background[mask], rng)
    noise = rng.standard_normal((side, side, 3), dtype=np.float32) * rng.uniform(4, 20)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    return ShapeImage(image, mask, label)


def sample(seed: int, index: int, side: int) -> ShapeImage:
    """Image `index` of the stream `seed`: label `index % 8`, everything else drawn from the seed."""
    return make_image(index % len(CLASSES), side, np.random.default_rng([seed, index]))


def normalize(pixels: torch.Tensor, net: ShapesNet = SHAPES_NET) -> torch.Tensor:
    """(..., 3, H, W) uint8 pixels -> float, scaled to 0..1 and normalized with the model's mean and std."""
    mean = torch.tensor(net.mean).view(3, 1, 1)
    std = torch.tensor(net.std).view(3, 1, 1)
    return (pixels.float().div_(255) - mean) / std


def to_tensor(image: np.ndarray, net: ShapesNet = SHAPES_NET) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float, normalized with the model's mean and std."""
    return normalize(torch.from_numpy(image).permute(2, 0, 1), net)


class ShapesDataset(torch.utils.data.Dataset):
    """`length` images of the stream `seed` as (normalized image tensor, label); masks on request."""

    def __init__(self, seed: int, length: int, side: int = SHAPES_NET.input_size) -> None:
        self.seed, self.length, self.side = seed, length, side

    def __len__(self) -> int:
        return self.length

    def sample(self, index: int) -> ShapeImage:
        return sample(self.seed, index, self.side)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.sample(index)
        return to_tensor(item.image), item.label

    def batch(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images `start .. start+count-1` as (N, 3, H, W) inputs, (N, H, W) masks and (N,) labels."""
        items = [self.sample(i) for i in range(start, start + count)]
        images = torch.stack([to_tensor(item.image) for item in items])
        masks = torch.from_numpy(np.stack([item.mask for item in items]))
        labels = torch.tensor([item.label for item in items])
        return images, masks, labels


EXAMPLES_SEED = 7  # the stream the bundled example images come from


def save_examples(folder: Path, side: int = 256, per_class: int = 1) -> list[Path]:
    """Write `per_class` images of every class as PNGs named after their class (assets/examples/)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(per_class * len(CLASSES)):
        item = sample(EXAMPLES_SEED, index, side)
        path = folder / f"{CLASSES[item.label]}-{index // len(CLASSES)}.png"
        Image.fromarray(item.image).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":  # python -m explorer.shapes assets/examples
    import sys

    for written in save_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "assets/examples")):
        print(written)
