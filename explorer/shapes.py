"""Procedural images of eight shape classes, with each object's mask: the bundled model's data.

Each image holds one shape (circle, square, triangle, star, cross, ring, diamond or hexagon) of a
random color, size, position and rotation, drawn the ways people draw: filled or as an outline of
any stroke width, sometimes with a hand-drawn wobble, on a plain or a cluttered background, on a
square or a wide or tall canvas, sometimes blurred or saved as JPEG. A `Recipe` holds the ranges of
all of these; `DRAWINGS` is the training recipe, `EXAMPLES` the clear one of the bundled examples.

A non-square canvas is padded to a square with its border color and then scaled, exactly as
`inference.pad_to_square` prepares the bundled model's input (its card says `"resize": "pad"`), so
the model trains on what it will be shown.

The generator also returns the object's boolean mask (the region the shape covers: for an outline,
the outline and what it encloses; for a ring, its band), so that an attribution map can be checked
against where the object really is ("pointing").

Everything is deterministic given a seed: image `i` of a `ShapesDataset(seed=s)` is drawn from
`numpy.random.default_rng([s, i])`, so any image can be made again on its own, in any worker.

The classes, their order and the input side are those of the bundled model, `zoo.SHAPES_NET`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from explorer.zoo import SHAPES_NET, ShapesNet

CLASSES = SHAPES_NET.classes  # label i of a drawing is the bundled model's class i
MIN_CONTRAST = 90.0  # least RGB distance between the shape's color and the background under it
RING_HOLE = (0.45, 0.65)  # a ring's inner radius, as a fraction of its outer radius
STAR_INNER = 0.42  # a star's inner radius, as a fraction of its outer radius
CIRCLE_VERTICES = 72  # circles and rings are drawn as polygons this fine
SUPERSAMPLE = 2  # images are drawn at this multiple of their side, then scaled down (smooth edges)


@dataclass(frozen=True)
class Recipe:
    """The random ranges a generated image is drawn from; each share is a probability per image."""

    sizes: tuple[float, float] = (0.08, 0.95)  # the shape's extent before rotation, / the canvas's short side
    outline_share: float = 0.25  # drawn as an outline, not filled (never a ring: its band is the shape)
    strokes: tuple[float, float] = (0.02, 0.10)  # an outline's stroke width, / the shape's extent
    wobble_share: float = 0.4  # drawn by an unsteady hand: jittered corners, wavy circles, uneven strokes
    wobble: tuple[float, float] = (0.01, 0.05)  # how unsteady, / the shape's extent
    plain_share: float = 0.5  # one flat color or a soft two-color gradient, not a cluttered background
    non_square_share: float = 0.5  # a wide or tall canvas, up to max_aspect : 1, padded to a square
    max_aspect: float = 2.0
    blur_share: float = 0.25
    blur: tuple[float, float] = (0.3, 1.2)  # Gaussian blur radius, in pixels of the final image
    jpeg_share: float = 0.25
    jpeg_quality: tuple[int, int] = (20, 90)
    noise: tuple[float, float] = (0.0, 16.0)  # per-pixel Gaussian noise's standard deviation, 0..255


DRAWINGS = Recipe()  # what the bundled model is trained and measured on
EXAMPLES = Recipe(sizes=(0.5, 0.8), outline_share=0.0, wobble_share=0.0, non_square_share=0.0, blur_share=0.0,
                  jpeg_share=0.0, noise=(0.0, 6.0))  # the bundled example images: each class plainly shown
PLAIN_COLORS = ((255, 255, 255), (0, 0, 0), (128, 128, 128), (235, 235, 235))  # white paper, black, grays


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


def _wavy(points: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """An outline as an unsteady hand draws it: corners moved at random, or, for a fine polygon
    (a circle), the radius swayed by a few slow waves around it; `amount` is in the outline's units."""
    if len(points) < CIRCLE_VERTICES:
        return points + rng.normal(0.0, amount, points.shape)
    angles = np.arctan2(points[:, 1], points[:, 0])
    sway = sum(rng.normal(0.0, amount) * np.cos(k * angles + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    radius = np.linalg.norm(points, axis=1, keepdims=True)
    return points * (1 + sway[:, None] / np.maximum(radius, 1e-9))


def _stroke(draw: ImageDraw.ImageDraw, points: np.ndarray, width: float, uneven: bool, rng: np.random.Generator) -> None:
    """A closed outline through `points`, `width` pixels wide, drawn in short pieces whose widths vary
    slowly along it when `uneven`, with round joints."""
    closed = np.vstack([points, points[:1]])
    pieces = []
    for start, end in zip(closed[:-1], closed[1:]):
        count = max(1, int(np.linalg.norm(end - start) / max(2.0, width)))
        pieces += [start + (end - start) * t for t in np.arange(count) / count]
    pieces.append(closed[-1])
    phase, waves = rng.uniform(0, 2 * np.pi), rng.uniform(1, 4)
    for i, (a, b) in enumerate(zip(pieces[:-1], pieces[1:])):
        w = width * (1 + 0.35 * np.sin(phase + 2 * np.pi * waves * i / len(pieces))) if uneven else width
        draw.line([tuple(a), tuple(b)], fill=255, width=max(1, round(w)))
        r = w / 2
        draw.ellipse([b[0] - r, b[1] - r, b[0] + r, b[1] + r], fill=255)


def _shape_masks(label: int, width: int, height: int, recipe: Recipe,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The shape of class `label` at a random size, rotation and position on a width x height canvas:
    (painted pixels, the object's mask), both (height, width) bool. Filled, the two are the same; as
    an outline, only the stroke is painted and the mask also holds what it encloses."""
    name = CLASSES[label]
    size = rng.uniform(*recipe.sizes) * min(width, height)
    points = _rotate(_OUTLINES[name], rng.uniform(0, 2 * np.pi)) * size
    hole = _OUTLINES["ring"] * size * rng.uniform(*RING_HOLE) if name == "ring" else None
    wobbly = rng.random() < recipe.wobble_share
    if wobbly:
        points = _wavy(points, rng.uniform(*recipe.wobble) * size, rng)
        hole = None if hole is None else _wavy(hole, rng.uniform(*recipe.wobble) * size / 2, rng)
    outlined = name != "ring" and rng.random() < recipe.outline_share
    stroke_width = max(1.5 * SUPERSAMPLE, rng.uniform(*recipe.strokes) * size) if outlined else 0.0
    reach = np.abs(points).max(axis=0) + stroke_width / 2 + 2 * SUPERSAMPLE  # half-extent after rotation, per
    # axis, with a margin of two pixels of the final image
    fit = min(1.0, float((np.array([width, height]) / (2 * reach)).min()))  # a turned square may not fit
    points, reach, stroke_width = points * fit, reach * fit, stroke_width * fit
    hole = None if hole is None else hole * fit
    centre = rng.uniform(reach, np.array([width, height]) - reach)  # anywhere, with the whole shape in view
    painted, enclosed = Image.new("L", (width, height), 0), Image.new("L", (width, height), 0)
    ImageDraw.Draw(enclosed).polygon([tuple(p) for p in points + centre], fill=255)
    if hole is not None:
        ImageDraw.Draw(enclosed).polygon([tuple(p) for p in hole + centre], fill=0)
    if outlined:
        _stroke(ImageDraw.Draw(painted), points + centre, stroke_width, wobbly, rng)
        paint = np.asarray(painted) > 0
        return paint, paint | (np.asarray(enclosed) > 0)
    mask = np.asarray(enclosed) > 0
    return mask, mask


def _cluttered(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A color gradient in a random direction with random lines on it."""
    start, end = rng.uniform(0, 255, size=(2, 3))
    canvas = _gradient(width, height, start, end, rng)
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.integers(3, 9)):
        ends = rng.uniform(-0.1, 1.1, size=4) * (width, height, width, height)
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        draw.line([tuple(ends[:2]), tuple(ends[2:])], fill=color,
                  width=int(rng.integers(1, max(2, min(width, height) // 32) + 1)))
    return canvas


def _gradient(width: int, height: int, start: np.ndarray, end: np.ndarray, rng: np.random.Generator) -> Image.Image:
    angle = rng.uniform(0, 2 * np.pi)
    across = np.linspace(-0.5, 0.5, width)[None, :] * np.cos(angle)
    down = np.linspace(-0.5, 0.5, height)[:, None] * np.sin(angle)
    ramp = np.clip(across + down + 0.5, 0, 1)[..., None]  # (H, W, 1)
    return Image.fromarray((start + ramp * (end - start)).astype(np.uint8))


def _plain(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Paper as people draw on: white, black, gray, any flat color, or a soft two-color gradient."""
    kind = rng.integers(3)
    if kind == 0:
        return Image.new("RGB", (width, height), PLAIN_COLORS[rng.integers(len(PLAIN_COLORS))])
    if kind == 1:
        return Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(0, 256, size=3)))
    start = rng.uniform(0, 255, size=3)
    return _gradient(width, height, start, np.clip(start + rng.normal(0, 50, size=3), 0, 255), rng)


def _contrasting_color(under: np.ndarray, rng: np.random.Generator, tries: int = 20) -> np.ndarray:
    """A random color far enough from the mean background color under the shape to be seen."""
    mean = under.mean(axis=0)
    color = rng.uniform(0, 255, size=3)
    for _ in range(tries):
        if np.linalg.norm(color - mean) >= MIN_CONTRAST:
            break
        color = rng.uniform(0, 255, size=3)
    return color


def _canvas_size(side: int, recipe: Recipe, rng: np.random.Generator) -> tuple[int, int]:
    """(width, height) of the canvas to draw on, its short side `side` times SUPERSAMPLE."""
    short = side * SUPERSAMPLE
    if rng.random() >= recipe.non_square_share:
        return short, short
    long = round(short * rng.uniform(1, recipe.max_aspect))
    return (long, short) if rng.random() < 0.5 else (short, long)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def make_image(label: int, side: int, rng: np.random.Generator, recipe: Recipe = DRAWINGS) -> ShapeImage:
    """One side x side image of class `label` with the object's mask, drawn with `rng` by `recipe`."""
    from explorer.inference import pad_to_square  # the model's own preprocessing (a top-level import would cycle)

    width, height = _canvas_size(side, recipe, rng)
    background = _plain(width, height, rng) if rng.random() < recipe.plain_share else _cluttered(width, height, rng)
    painted, mask = _shape_masks(label, width, height, recipe, rng)
    pixels = np.asarray(background, dtype=np.float32).copy()
    pixels[painted] = _contrasting_color(pixels[painted], rng)
    picture = pad_to_square(Image.fromarray(pixels.astype(np.uint8))).resize((side, side), Image.Resampling.BOX)
    cover = pad_to_square(Image.fromarray(mask), fill=0).convert("L").resize((side, side), Image.Resampling.BOX)
    if rng.random() < recipe.blur_share:
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(*recipe.blur)))
    noise = rng.standard_normal((side, side, 3), dtype=np.float32) * rng.uniform(*recipe.noise)
    picture = Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8))
    if rng.random() < recipe.jpeg_share:
        picture = _jpeg(picture, int(rng.integers(*recipe.jpeg_quality)))
    return ShapeImage(np.array(picture), np.asarray(cover) >= 128, label)


def sample(seed: int, index: int, side: int, recipe: Recipe = DRAWINGS) -> ShapeImage:
    """Image `index` of the stream `seed`: label `index % 8`, everything else drawn from the seed."""
    return make_image(index % len(CLASSES), side, np.random.default_rng([seed, index]), recipe)


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
        item = sample(EXAMPLES_SEED, index, side, EXAMPLES)
        path = folder / f"{CLASSES[item.label]}-{index // len(CLASSES)}.png"
        Image.fromarray(item.image).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":  # python -m explorer.shapes assets/examples
    import sys

    for written in save_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "assets/examples")):
        print(written)
