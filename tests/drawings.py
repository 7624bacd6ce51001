"""A held-out "drawn" set for the bundled model, made by a second drawing routine of its own.

`explorer.shapes` draws the training images (polygons with jittered corners, strokes in pieces,
padding, blur, noise, JPEG). This module shares none of that code: it draws each class the plain
way a student's drawing program does, with PIL's own primitives (`ellipse`, `regular_polygon`,
`polygon`, wide `line`s), on white, black, gray or one-color paper, on canvases of any proportion
from 1:2 to 2:1, some saved as JPEG, and gives the file to the model as the app would: through
`explorer.inference`'s preprocessing (padding to a square). The model never trains on these.

The class definitions it follows are the app's: a circle may be a thin outline, a ring is a band
whose hole is 45-65% of its width, a diamond is a rhombus on its tip 0.6 as wide as it is tall, a
cross is a plus sign whose arms are a third as wide as they are long, a star has five points.
"""
from __future__ import annotations

import io
import math
import random
from typing import NamedTuple

from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon")  # the app's order
PAPERS = ((255, 255, 255), (0, 0, 0), (128, 128, 128), (250, 245, 230))
MIN_CONTRAST = 120  # least sum of absolute RGB differences between ink and paper


class Drawing(NamedTuple):
    image: Image.Image  # RGB, any size
    label: int  # index into CLASSES
    description: str  # for a failure message


def _turned(points: list[tuple[float, float]], angle: float, centre: tuple[float, float]) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(centre[0] + x * c - y * s, centre[1] + x * s + y * c) for x, y in points]


def _ink(paper: tuple[int, int, int], rnd: random.Random) -> tuple[int, int, int]:
    while True:
        ink = tuple(rnd.randrange(256) for _ in range(3))
        if sum(abs(a - b) for a, b in zip(ink, paper)) >= MIN_CONTRAST:
            return ink


def drawing(label: int, rnd: random.Random) -> Drawing:
    """One drawing of class `label`, everything else drawn from `rnd`."""
    width, height = rnd.randrange(240, 900), rnd.randrange(240, 900)
    while max(width, height) > 2 * min(width, height):
        width, height = rnd.randrange(240, 900), rnd.randrange(240, 900)
    paper = rnd.choice(PAPERS) if rnd.random() < 0.8 else tuple(rnd.randrange(256) for _ in range(3))
    ink = _ink(paper, rnd)
    image = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(image)
    short = min(width, height)
    size = rnd.uniform(0.15, 0.85) * short  # the shape's extent before turning
    reach = size * 0.75  # half the diagonal of a square of side `size`, with a margin: any turn fits
    centre = (rnd.uniform(reach, width - reach), rnd.uniform(reach, height - reach))
    angle = rnd.uniform(0, 2 * math.pi)
    name = CLASSES[label]
    outline = name != "ring" and rnd.random() < 0.2
    line = max(2, round(size * rnd.uniform(0.02, 0.06)))  # an outline's pen width
    r = size / 2
    box = (centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r)

    def shape(points: list[tuple[float, float]]) -> None:
        turned = _turned(points, angle, centre)
        draw.polygon(turned, fill=None if outline else ink, outline=ink if outline else None, width=line if outline else 1)

    if name == "circle":
        draw.ellipse(box, fill=None if outline else ink, outline=ink, width=line if outline else 1)
    elif name == "ring":
        draw.ellipse(box, outline=ink, width=round(r * (1 - rnd.uniform(0.45, 0.65))))
    elif name in ("square", "triangle", "hexagon"):
        sides = {"square": 4, "triangle": 3, "hexagon": 6}[name]
        radius = {"square": r * math.sqrt(2), "triangle": 2 * r / math.sqrt(3), "hexagon": r}[name]  # side = size
        draw.regular_polygon((centre[0], centre[1], radius), sides, rotation=math.degrees(angle),
                             fill=None if outline else ink, outline=ink if outline else None,
                             width=line if outline else 1)
    elif name == "star":
        shape([((r if k % 2 == 0 else 0.4 * r) * math.sin(k * math.pi / 5),
                -(r if k % 2 == 0 else 0.4 * r) * math.cos(k * math.pi / 5)) for k in range(10)])
    elif name == "diamond":
        shape([(0, -r), (0.6 * r, 0), (0, r), (-0.6 * r, 0)])
    elif name == "cross":
        if outline:
            a, b = r, r / 3
            shape([(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)])
        else:  # two wide strokes of the pen
            for ends in (((-r, 0), (r, 0)), ((0, -r), (0, r))):
                draw.line(_turned(list(ends), angle, centre), fill=ink, width=round(2 * r / 3))
    jpeg = rnd.random() < 0.3
    if jpeg:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rnd.randrange(50, 95))
        image = Image.open(buffer).convert("RGB")
    style = "outline" if outline else "filled"
    return Drawing(image, label, f"{style} {name}, {size / short:.0%} of a {width}x{height} canvas"
                                 f"{' (JPEG)' if jpeg else ''}")


def drawn_set(seed: int, per_class: int) -> list[Drawing]:
    """`per_class` drawings of every class from the seed `seed`."""
    rnd = random.Random(seed)
    return [drawing(label, rnd) for _ in range(per_class) for label in range(len(CLASSES))]
