"""Images in, top-k classes out: safe image opening, timm's preprocessing, and prediction.

`open_image` decodes a file completely (so a damaged file fails here, with a sentence, not later),
after refusing decompression bombs, extreme strips and formats outside a short list from the header;
`to_rgb` turns any PIL image upright and into 8-bit RGB; `pad_to_square` adds a border of the
image's own edge color to make it square; `preprocess` applies the model's timm transform (after the
padding, for a model whose card asks for it, so that nothing of the image is cropped away) and
`input_image` turns its batch back into the picture the model saw; `predict` runs the model and
returns the top-k with that picture, on the device and in the precision asked for
(`explorer.device`: the best device here by default); `is_blank` says whether an image is one flat
color (an empty drawing canvas).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import IO, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.device import Precision, RunOptions, exclusive, guard_memory, pick_device, runner, timed
from explorer.weights import PAD_TO_SQUARE, LoadedModel
from explorer.zoo import ExplorerError

MAX_PIXELS = 40_000_000  # larger images are refused: 40 megapixels is far above any model's input
MAX_ASPECT = 100  # long side / short side: preprocessing scales the short side to ~256 px, so a 1x20000
# strip would become a 256x5,120,000 image (3.9 GB) before the center crop; 100:1 costs at most 20 MB
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")  # the PIL plugins allowed to parse a file
# (JPEG's opens phones' multi-picture JPEGs too); PIL's other decoders (EPS through Ghostscript, PSD,
# FITS, ...) are attack surface that no photo needs
FORMAT_NAMES = "PNG, JPEG, GIF, WebP, BMP or TIFF"
HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # stretched to 8 bits for display
TRANSPARENT_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
BACKGROUND = (255, 255, 255)  # what transparent pixels become


class ImageError(ExplorerError):
    """A file that cannot be used as an image."""


class TopClass(NamedTuple):
    index: int  # output index of the class
    label: str
    prob: float  # softmax probability


def top_classes(logits: torch.Tensor, labels: tuple[str, ...], count: int) -> tuple[TopClass, ...]:
    """The `count` most probable classes of a (1, classes) logit row (all when there are fewer),
    most probable first; non-finite logits (weights that overflow) are refused with a sentence."""
    if not bool(torch.isfinite(logits).all()):
        raise ExplorerError("The model's outputs are not finite numbers (NaN or infinity): its weights "
                            "overflow on this image, so there is nothing to rank; use other weights.")
    probs = logits.float().softmax(dim=-1)[0]  # (classes,)
    values, indices = probs.topk(min(count, probs.numel()))
    return tuple(TopClass(int(i), labels[int(i)], float(p)) for p, i in zip(values, indices))


@dataclass(frozen=True)
class Prediction:
    """The result of one `predict` call; `to_json` gives the command line's JSON document."""

    model: str  # registry name
    weights: str  # which weights, as `LoadedModel.weights` says
    device: str
    latency_ms: float  # forward pass only, preprocessing excluded
    top: tuple[TopClass, ...]  # most probable first
    image: np.ndarray = field(compare=False, repr=False)  # (H, W, 3) uint8: the preprocessed input as the model saw it (not in the JSON)

    def to_json(self) -> dict:
        return {"model": self.model, "weights": self.weights, "device": self.device,
                "latency_ms": self.latency_ms, "top": [guess._asdict() for guess in self.top]}


def open_image(source: str | os.PathLike | IO[bytes]) -> Image.Image:
    """Open and fully decode an image file; any problem becomes an ImageError with a sentence.

    Size and shape are checked from the header, before any pixel is decoded. Messages name the file,
    not its folder: in the app that folder is the server's upload cache."""
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    name = os.path.basename(path) if path else "the uploaded file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source, formats=IMAGE_FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:  # PIL's own limit is higher
                raise Image.DecompressionBombError(f"{width}x{height} pixels")
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise ImageError(f"{name} is {width}x{height} pixels, a strip rather than a picture (one side "
                                 f"over {MAX_ASPECT} times the other); crop it closer to a square and try again.")
            image.load()  # decode now: a truncated or damaged file fails here
    except ImageError:
        raise
    except FileNotFoundError as error:
        raise ImageError(f"There is no image file at {path}; check the path.") from error
    except IsADirectoryError as error:
        raise ImageError(f"{path} is a folder, not an image file; give the path of one image.") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"{name} is too large (over {MAX_PIXELS // 1_000_000} megapixels); "
                         f"resize it to a few megapixels and try again.") from error
    except UnidentifiedImageError as error:
        raise ImageError(f"{name} is not an image this app reads; use a {FORMAT_NAMES} file.") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded ({error}); "
                         f"save it again or use another image.") from error
    return image


def _stretch_to_8bit(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float32)
    finite = values[np.isfinite(values)]  # a float TIFF may hold NaN or infinity
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(scaled.round().astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """The image upright (EXIF orientation applied) in 8-bit RGB, transparency over white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in HIGH_BIT_DEPTH_MODES:
        image = _stretch_to_8bit(image)
    if image.mode in TRANSPARENT_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND), rgba)
    return image.convert("RGB")


def border_color(image: Image.Image) -> tuple[int, int, int]:
    """The median color of the outermost row and column of pixels on every side of an RGB image."""
    pixels = np.asarray(image)
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])  # (2W + 2H, 3)
    return tuple(int(c) for c in np.median(edge, axis=0))


def pad_to_square(image: Image.Image, fill: int | tuple[int, ...] | None = None) -> Image.Image:
    """The image centred on a square as wide as its long side, filled with `fill` (default: the RGB
    image's own border color); a square image comes back as it is. The whole picture then survives
    a square resize, undistorted."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new(image.mode, (side, side), border_color(image) if fill is None else fill)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def preprocess(image: Image.Image, data_config: dict) -> torch.Tensor:
    """A batch of one, (1, 3, H, W), made by the model's timm eval transform; first padded to a
    square when `data_config[PAD_TO_SQUARE]` says so."""
    from timm.data import create_transform

    config = dict(data_config)
    image = to_rgb(image)
    if config.pop(PAD_TO_SQUARE, False):
        image = pad_to_square(image)
    transform = create_transform(**config)
    return transform(image).unsqueeze(0)  # (3, H, W) -> (1, 3, H, W)


def input_image(batch: torch.Tensor, data_config: dict) -> np.ndarray:
    """The preprocessed (1, 3, H, W) batch back in RGB, (H, W, 3) uint8, as the model saw it."""
    mean = torch.tensor(data_config["mean"]).view(3, 1, 1)
    std = torch.tensor(data_config["std"]).view(3, 1, 1)
    rgb = (batch[0].detach() * std + mean).clamp(0, 1)  # (3, H, W) in [0, 1]
    return (rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()  # (H, W, 3)


def is_blank(image: Image.Image) -> bool:
    """Whether every pixel of the image, in RGB over white, has one and the same color."""
    low, high = zip(*to_rgb(image).getextrema())  # per channel (min, max) -> all mins, all maxes
    return low == high


def _forward(loaded: LoadedModel, batch: torch.Tensor, options: RunOptions) -> tuple[torch.Tensor, float]:
    """Logits on the CPU, and the seconds of the forward pass on the device."""
    with exclusive():
        run = runner(loaded.model, options, tuple(batch.shape))  # prepared and warmed up once
        placed = run.place(batch)
        logits, seconds = timed(lambda: run(placed), options.device)  # (1, num_classes)
        return logits.float().cpu(), seconds


def predict(loaded: LoadedModel, image: Image.Image, topk: int = 5, device: str | None = None, *,
            precision: str | Precision = Precision.FP32, channels_last: bool = True,
            compile: bool = False) -> Prediction:
    """The `topk` most probable classes of `image` (all classes when there are fewer), computed on
    `device` (None: CUDA, else MPS, else the CPU) in `precision`, optionally compiled."""
    if topk < 1:
        raise ExplorerError(f"--topk must be at least 1, not {topk}.")
    options = RunOptions(pick_device(device), Precision.parse(precision), channels_last, compile)
    batch = preprocess(image, loaded.data_config)
    with loaded.lock:  # attribution may be running the same model in another request
        logits, seconds = guard_memory(lambda: _forward(loaded, batch, options), options.device,
                                       f"{loaded.name} at {batch.shape[-1]}x{batch.shape[-2]}",
                                       "choose a smaller model or another device")
    top = top_classes(logits, loaded.labels, topk)
    return Prediction(loaded.name, loaded.weights, str(options.device), round(seconds * 1000, 3), top,
                      input_image(batch, loaded.data_config))
