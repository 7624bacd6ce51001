"""Images in, top-k out: every PIL mode, EXIF orientation, damaged files and decompression bombs."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from timm.data import ImageNetInfo

from explorer.inference import ImageError, Prediction, open_image, predict, preprocess, to_rgb
from explorer.weights import load
from explorer.zoo import ExplorerError

SMALL_CONFIG = {"input_size": (3, 64, 64), "interpolation": "bicubic", "mean": (0.485, 0.456, 0.406),
                "std": (0.229, 0.224, 0.225), "crop_pct": 0.875, "crop_mode": "center"}
EXIF_ORIENTATION = 0x0112
ROTATE_90_CW = 6  # the stored pixels must be turned 90 degrees clockwise to stand upright


@pytest.fixture(scope="module")
def resnet18():
    return load("resnet18")


def photo(width: int = 90, height: int = 60) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_predict_gives_topk_with_imagenet_labels(resnet18):
    prediction = predict(resnet18, photo(), topk=5)
    assert isinstance(prediction, Prediction) and len(prediction.top) == 5
    probs = [guess.prob for guess in prediction.top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    info = ImageNetInfo()
    assert all(guess.label == info.index_to_description(guess.index) for guess in prediction.top)
    assert (prediction.model, prediction.weights, prediction.device) == ("resnet18", "random init", "cpu")
    assert prediction.latency_ms > 0


def test_prediction_json_is_the_command_lines_document(resnet18):
    document = predict(resnet18, photo(), topk=2).to_json()
    assert set(document) == {"model", "weights", "device", "latency_ms", "top"}
    assert set(document["top"][0]) == {"index", "label", "prob"}


def test_topk_beyond_the_class_count_gives_every_class(resnet18):
    prediction = predict(resnet18, photo(), topk=5000)
    assert len(prediction.top) == 1000
    assert sum(guess.prob for guess in prediction.top) == pytest.approx(1, abs=1e-4)


def test_topk_below_one_is_refused(resnet18):
    with pytest.raises(ExplorerError, match="at least 1"):
        predict(resnet18, photo(), topk=0)


def image_in_mode(mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray((np.arange(60 * 90, dtype=np.uint16) * 12).reshape(60, 90))
    if mode == "P+transparency":
        image = photo().convert("P")
        image.info["transparency"] = 0
        return image
    return photo().convert(mode)


MODES = ["RGB", "RGBA", "LA", "P", "P+transparency", "L", "1", "I", "I;16", "F", "CMYK"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_becomes_one_rgb_batch(mode):
    image = image_in_mode(mode)
    assert to_rgb(image).mode == "RGB"
    assert tuple(preprocess(image, SMALL_CONFIG).shape) == (1, 3, 64, 64)


def test_16_bit_images_use_the_full_8_bit_range():
    pixels = np.asarray(to_rgb(image_in_mode("I;16")))
    assert pixels.min() == 0 and pixels.max() == 255  # not clipped to white above 255


def test_transparent_pixels_become_white():
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_honoured(tmp_path):
    stored = Image.new("RGB", (80, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 40, 40))  # left half red, as the camera stored it
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW
    file = tmp_path / "rotated.jpg"
    stored.save(file, exif=exif, quality=95)
    upright = to_rgb(open_image(file))
    assert upright.size == (40, 80)
    red, _, blue = upright.getpixel((20, 10))  # turned clockwise, the red half is on top
    assert red > 200 and blue < 60
    assert tuple(preprocess(open_image(file), SMALL_CONFIG).shape) == (1, 3, 64, 64)


def test_open_image_reads_paths_and_uploads(tmp_path):
    file = tmp_path / "photo.png"
    photo().save(file)
    assert open_image(file).size == (90, 60)
    assert open_image(io.BytesIO(file.read_bytes())).size == (90, 60)


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header claims another size: what a decompression bomb looks like to PIL."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.mark.parametrize("side", [8_000, 10_000, 20_000])  # our limit, PIL's warning, PIL's error
def test_decompression_bombs_are_refused(side, tmp_path):
    file = tmp_path / "bomb.png"
    file.write_bytes(png_claiming_size(side, side))
    with pytest.raises(ImageError, match="too large"):
        open_image(file)


def write_truncated_png(path: Path) -> None:
    buffer = io.BytesIO()
    photo().save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


NOT_IMAGES = {
    "truncated.png": write_truncated_png,
    "empty.png": lambda path: path.write_bytes(b""),
    "notes.jpg": lambda path: path.write_text("not an image\n"),
}


@pytest.mark.parametrize("filename", list(NOT_IMAGES))
def test_files_that_are_not_images_get_a_sentence(filename, tmp_path):
    file = tmp_path / filename
    NOT_IMAGES[filename](file)
    with pytest.raises(ImageError, match=filename):
        open_image(file)


def test_missing_image_is_named(tmp_path):
    with pytest.raises(ImageError, match="no image file at .*gone.png"):
        open_image(tmp_path / "gone.png")



def test_prediction_carries_the_picture_the_model_saw():
    from explorer.inference import is_blank

    loaded = load("convnext_shapes")
    square = Image.new("RGB", (300, 300), "white")
    square.paste((0, 0, 0), (140, 0, 160, 300))  # a black bar down the middle
    seen, side = predict(loaded, square).image, loaded.data_config["input_size"][-1]
    assert seen.shape == (side, side, 3) and seen.dtype == np.uint8  # the model's input size
    assert seen[side // 2, side // 2].max() < 60 and seen[side // 2, 10].min() > 200  # the bar, and white beside it
    assert is_blank(Image.new("RGBA", (40, 40), (0, 0, 0, 0))) and is_blank(Image.new("L", (9, 9), 7))
    assert not is_blank(square)
