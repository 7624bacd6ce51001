"""A corpus of malformed, odd and hostile files, made in code: images and checkpoints.

Each generator returns `Case`s. A case either must work, and then carries the picture the model must
see (`reference`, made independently of the code under test, as exact 8-bit RGB pixels) and maybe a
picture it must not see (`not_reference`: the unrotated photo, the second frame); or must be refused,
and then carries a regular expression that the refusal's message matches.

Checkpoint cases are for `CHECKPOINT_MODEL`; they are made lazily (`make`), because each holds a
whole state dict (45 MB). Hostile pickles write a marker file if they are ever unpickled.
"""
from __future__ import annotations

import io
import os
import pickle
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

WORKS = "works"
NOT_AN_IMAGE = r"is not an image this app reads"
DAMAGED = r"is damaged or truncated"
TOO_LARGE = r"is too large \(over 40 megapixels\)"
STRIP = r"a strip rather than a picture"
UNSAFE = r"is not a checkpoint we can load safely"
NOT_SAFETENSORS = r"is not a valid safetensors file"
EXIF_ORIENTATION = 0x0112
RED, GREEN, BLUE, WHITE = (220, 30, 30), (30, 200, 60), (40, 60, 230), (255, 255, 255)


@dataclass(frozen=True)
class Case:
    name: str  # the file's name as uploaded: its extension matters
    data: bytes | None  # the file's bytes (None for checkpoints: see `make`)
    expect: str  # WORKS, or a regex the refusal must match
    reference: Image.Image | None = None  # works: what the model must see, as RGB pixels
    not_reference: Image.Image | None = None  # works: what it must not see (proves the check can fail)
    make: Callable[[], bytes] | None = None  # checkpoints: builds the bytes on use
    reference_state: Callable[[], dict] | None = None  # checkpoints that work: the weights they hold

    def __str__(self) -> str:
        return self.name

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        path.write_bytes(self.data if self.data is not None else self.make())
        return path


# --- helpers ------------------------------------------------------------------------------------

def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """Smooth color gradients plus a little noise: survives JPEG without losing its content."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 24, (height, width, 3))
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], axis=-1)
    return Image.fromarray((pixels + noise).clip(0, 255).astype(np.uint8))


def halves(width: int, height: int, first: tuple, second: tuple) -> Image.Image:
    """Left half `first`, right half `second`: an image whose orientation shows."""
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:, : width // 2], pixels[:, width // 2:] = first, second
    return Image.fromarray(pixels)


def rgb(pixels: np.ndarray) -> Image.Image:
    """(H, W) gray or (H, W, 3) values in [0, 255] as an RGB image."""
    pixels = np.asarray(pixels).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(pixels[..., None], 3, axis=-1) if pixels.ndim == 2 else pixels)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, bit_depth: int, color_type: int, row: Callable[[int], bytes]) -> bytes:
    """A PNG written by hand (any bit depth PIL cannot save), compressed row by row."""
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(b"\0" + row(y)) for y in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def with_exif(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(image, "JPEG", exif=exif, quality=95)


def decoded(data: bytes) -> Image.Image:
    """The stored pixels as RGB, orientation ignored (JPEG is lossy: compare with what is in the file)."""
    return Image.open(io.BytesIO(data)).convert("RGB")


def patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = encode(photo(16, 16), "JPEG")
    sof = data.index(b"\xff\xc0")  # baseline frame header: length (2), precision (1), height, width
    return patched(data, sof + 5, ">HH", height, width)


# --- images -------------------------------------------------------------------------------------

def damaged_images() -> list[Case]:
    png_bytes, jpeg_bytes = encode(photo(), "PNG"), encode(photo(), "JPEG")
    bad_crc = bytearray(png_bytes)
    bad_crc[png_bytes.index(b"IDAT") + 10] ^= 0xFF
    truncated = {fmt: encode(photo(), fmt) for fmt in ("GIF", "WEBP", "TIFF", "BMP")}
    return [
        Case("empty.png", b"", NOT_AN_IMAGE),
        Case("empty.jpg", b"", NOT_AN_IMAGE),
        Case("half.png", png_bytes[: len(png_bytes) // 2], DAMAGED),
        Case("signature-only.png", png_bytes[:8], NOT_AN_IMAGE),
        Case("half.jpg", jpeg_bytes[: len(jpeg_bytes) // 2], DAMAGED),
        Case("header-only.jpg", jpeg_bytes[:200], DAMAGED),
        Case("bad-crc.png", bytes(bad_crc), DAMAGED),
        *[Case(f"half.{fmt.lower()}", data[: len(data) * 2 // 3], f"{DAMAGED}|{NOT_AN_IMAGE}")
          for fmt, data in truncated.items()],
    ]


def not_images() -> list[Case]:
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("photo.png", encode(photo(), "PNG"))
    text_chunk = PngImagePlugin.PngInfo()
    text_chunk.add_text("comment", "A" * 20_000_000, zip=True)  # 20 MB of text in 20 kB: a zTXt bomb
    return [
        Case("notes.png", b"This is a text file with a .png name.\n" * 10, NOT_AN_IMAGE),
        Case("page.jpg", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", NOT_AN_IMAGE),
        Case("data.webp", b'{"image": "not really"}', NOT_AN_IMAGE),
        Case("document.png", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", NOT_AN_IMAGE),
        Case("archive.png", zipped.getvalue(), NOT_AN_IMAGE),
        Case("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', NOT_AN_IMAGE),
        Case("noise.png", random.Random(8).randbytes(5000), NOT_AN_IMAGE),
        # PostScript: PIL would hand it to Ghostscript; only the formats photos come in are parsed
        Case("poster.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", NOT_AN_IMAGE),
        Case("image.tga", encode(photo(), "TGA"), NOT_AN_IMAGE),
        Case("text-bomb.png", encode(photo(8, 8), "PNG", pnginfo=text_chunk), DAMAGED),
    ]


def oversized_images() -> list[Case]:
    side = 20_000
    gif = patched(encode(photo(16, 16), "GIF"), 6, "<HH", side, side)  # logical screen size
    bmp = patched(encode(photo(16, 16), "BMP"), 18, "<ii", side, side)  # BITMAPINFOHEADER size
    return [
        # a real 20000x20000 PNG of one color: 400 megapixels in 50 kB
        Case("bomb-20000.png", png(side, side, 1, 0, lambda _y: bytes(side // 8)), TOO_LARGE),
        Case("bomb-20000.jpg", jpeg_claiming(side, side), TOO_LARGE),
        Case("bomb-20000.gif", gif, TOO_LARGE),
        Case("bomb-20000.bmp", bmp, TOO_LARGE),
        Case("just-over-40mp.png", png(7000, 6000, 1, 0, lambda _y: bytes(875)), TOO_LARGE),
        Case("strip-1x20000.png", png(1, side, 8, 0, lambda _y: b"\x80"), STRIP),
        Case("strip-20000x1.png", png(side, 1, 8, 0, lambda _y: bytes(side)), STRIP),
    ]


def odd_images() -> list[Case]:
    """Images in every mode and container people have, each with the picture the model must see."""
    base = photo()
    pixels = np.asarray(base)
    cases = [Case("photo.png", encode(base, "PNG"), WORKS, base),
             Case("photo.bmp", encode(base, "BMP"), WORKS, base),
             Case("photo.webp", encode(base, "WEBP", lossless=True), WORKS, base),
             Case("png-named.jpg", encode(base, "PNG"), WORKS, base),
             Case("multipage.tiff", encode(base, "TIFF", save_all=True, append_images=[halves(96, 64, RED, BLUE)]),
                  WORKS, base)]
    jpeg = encode(base, "JPEG", quality=90)
    cases.append(Case("photo.jpg", jpeg, WORKS, decoded(jpeg)))

    gray = pixels.mean(axis=-1).round().astype(np.uint8)
    cases.append(Case("gray.png", encode(Image.fromarray(gray), "PNG"), WORKS, rgb(gray)))
    bits = gray > 128
    cases.append(Case("bilevel.png", encode(Image.fromarray(bits), "PNG"), WORKS, rgb(bits * 255.0)))

    ramp = (np.arange(64 * 96, dtype=np.uint16).reshape(64, 96) * 10 + 1000)  # 16-bit gray, 1000..62430
    cases.append(Case("gray-16bit.png", encode(Image.fromarray(ramp), "PNG"), WORKS,
                      rgb((ramp - ramp.min()) * 255.0 / (ramp.max() - ramp.min()))))
    deep = pixels.astype(np.uint16) * 256 + 7  # 16 bits per channel: the high byte is the 8-bit value
    cases.append(Case("rgb-48bit.png", png(96, 64, 16, 2, lambda y: deep[y].astype(">u2").tobytes()), WORKS, base))

    floats = gray.astype(np.float32) / 255.0 * 4.0 - 1.0  # -1..3
    floats[0, :5], floats[1, :5], floats[2, :5] = np.nan, np.inf, -np.inf
    finite = floats[np.isfinite(floats)]
    expected = np.nan_to_num(floats, nan=finite.min(), posinf=finite.max(), neginf=finite.min())
    cases.append(Case("float-nan-inf.tiff", encode(Image.fromarray(floats), "TIFF"), WORKS,
                      rgb((expected - finite.min()) * 255.0 / (finite.max() - finite.min()))))

    cmyk = encode(Image.new("CMYK", (96, 64), (200, 10, 30, 0)), "JPEG", quality=95)
    cases.append(Case("cmyk.jpg", cmyk, WORKS, decoded(cmyk)))

    palette = np.array([RED, GREEN, BLUE, WHITE], np.uint8)
    indices = (np.arange(64 * 96).reshape(64, 96) // 7 % 4).astype(np.uint8)
    indexed = Image.frombytes("P", (96, 64), indices.tobytes())
    indexed.putpalette(palette.tobytes())
    cases.append(Case("palette.png", encode(indexed, "PNG"), WORKS, rgb(palette[indices])))
    see_through = palette[indices].copy()
    see_through[indices == 1] = WHITE  # index 1 (green) is transparent: white shows through
    cases.append(Case("palette-transparent.png", encode(indexed, "PNG", transparency=1), WORKS, rgb(see_through)))

    alpha = np.where(np.arange(96) < 48, 0, 255).astype(np.uint8)[None, :].repeat(64, axis=0)
    cases.append(Case("rgba.png", encode(Image.fromarray(np.dstack([pixels, alpha])), "PNG"), WORKS,
                      rgb(np.where(alpha[..., None] == 0, 255, pixels))))
    cases.append(Case("gray-alpha.png", encode(Image.fromarray(np.dstack([gray, alpha])), "PNG"), WORKS,
                      rgb(np.where(alpha == 0, 255, gray))))

    first, second = halves(96, 64, RED, BLUE), halves(96, 64, GREEN, WHITE)
    for name, fmt, options in (("animated.gif", "GIF", {}), ("animated.png", "PNG", {}),
                               ("animated.webp", "WEBP", {"lossless": True})):
        cases.append(Case(name, encode(first, fmt, save_all=True, append_images=[second], duration=100, loop=0,
                                       **options), WORKS, first, second))

    # EXIF orientation: the camera stored the pixels turned; the reference turns them with numpy
    stored = halves(80, 40, RED, BLUE)
    turns = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1),
             2: lambda a: a[:, ::-1]}
    for orientation, turn in turns.items():
        data = with_exif(stored, orientation)
        on_disk = decoded(data)
        cases.append(Case(f"exif-orientation-{orientation}.jpg", data, WORKS,
                          rgb(turn(np.asarray(on_disk))), on_disk))

    cases += [Case("one-pixel.png", encode(Image.new("RGB", (1, 1), RED), "PNG"), WORKS,
                   Image.new("RGB", (300, 300), RED), Image.new("RGB", (300, 300), BLUE)),
              Case("two-by-three.png", encode(Image.new("L", (2, 3), 90), "PNG"), WORKS,
                   Image.new("RGB", (300, 300), (90,) * 3)),
              Case("just-under-40mp.png", png(6000, 6000, 8, 0, lambda _y: bytes([90]) * 6000), WORKS,
                   Image.new("RGB", (300, 300), (90,) * 3))]
    return cases


def image_cases() -> list[Case]:
    return damaged_images() + not_images() + oversized_images() + odd_images()


# --- checkpoints --------------------------------------------------------------------------------

CHECKPOINT_MODEL = "resnet18"


class RunsCode:
    """Unpickling this runs `function(*arguments)`: what a hostile checkpoint does."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


def _state(seed: int = 0) -> dict:
    import torch

    from explorer.zoo import build_model

    torch.manual_seed(seed)
    return dict(build_model(CHECKPOINT_MODEL).state_dict())


def _torch_bytes(content, **options) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(content, buffer, **options)
    return buffer.getvalue()


def _safetensors_bytes(state: dict) -> bytes:
    from safetensors.torch import save

    return save({key: value.contiguous() for key, value in state.items()})


def _edited(edit: Callable[[dict], None]) -> Callable[[], dict]:
    def state() -> dict:
        content = {key: value.clone() for key, value in _state().items()}
        edit(content)
        return content
    return state


def _poke(key: str, value: float) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        state[key].view(-1)[0] = value
    return edit


def _to_dtype(dtype_name: str) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        import torch

        dtype = getattr(torch, dtype_name)
        for key, value in state.items():
            if value.is_floating_point():
                state[key] = value.to(dtype)
    return edit


def _make_complex(state: dict) -> None:
    import torch

    state["fc.weight"] = state["fc.weight"].to(torch.complex64)


def _torchscript() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buffer)
    return buffer.getvalue()


def _other_architecture() -> dict:
    import timm

    return timm.create_model("convnext_atto").state_dict()  # 3.7 M parameters of a ConvNeXt


def _ten_classes(state: dict) -> None:
    import torch

    state["fc.weight"], state["fc.bias"] = torch.zeros(10, 512), torch.zeros(10)


def _safetensors_claiming(length: int) -> bytes:
    """A safetensors header of `length` bytes (as the file says) that promises data the file lacks."""
    header = b'{"fc.weight": {"dtype": "F32", "shape": [1000, 512], "data_offsets": [0, 2048000]}}'
    return struct.pack("<Q", length) + header


def _first_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(8))
    return buffer.getvalue()


def hostile_checkpoints(marker: Path) -> list[Case]:
    """Pickles that would create `marker` (or run a shell command that does) if ever unpickled."""
    touch = RunsCode(Path.touch, marker)
    shell = RunsCode(os.system, f"touch {marker}")
    weights_and = lambda payload: {"state_dict": _state(), "extra": payload}  # noqa: E731
    return [
        Case("shell.pth", None, UNSAFE, make=lambda: pickle.dumps(shell, protocol=2)),
        Case("shell-protocol5.bin", None, UNSAFE, make=lambda: pickle.dumps({"model": shell}, protocol=5)),
        Case("touch-in-zip.pth", None, UNSAFE, make=lambda: _torch_bytes(weights_and(touch))),
        Case("touch-legacy-format.pt", None, UNSAFE,
             make=lambda: _torch_bytes(weights_and(touch), _use_new_zipfile_serialization=False)),
        Case("eval-builtin.pth", None, UNSAFE,
             make=lambda: pickle.dumps(RunsCode(eval, f"open({str(marker)!r}, 'w')"), protocol=2)),
        Case("torchscript.pt", None, UNSAFE, make=_torchscript),
    ]


def broken_checkpoints() -> list[Case]:
    rng = random.Random(4)
    return [
        Case("random.bin", None, UNSAFE, make=lambda: rng.randbytes(100_000)),
        Case("empty.pth", None, UNSAFE, make=lambda: b""),
        Case("half.pth", None, UNSAFE, make=lambda: _first_half(_torch_bytes(_state()))),
        Case("half.safetensors", None, NOT_SAFETENSORS, make=lambda: _first_half(_safetensors_bytes(_state()))),
        Case("huge-header.safetensors", None, NOT_SAFETENSORS, make=lambda: _safetensors_claiming(2**62)),
        Case("short.safetensors", None, NOT_SAFETENSORS, make=lambda: _safetensors_claiming(84)),
        Case("photo.pth", None, UNSAFE, make=lambda: encode(photo(), "PNG")),
        Case("weights.npy.bin", None, UNSAFE, make=_npy),
        Case("no-tensors.pth", None, r"holds no model weights", make=lambda: _torch_bytes({"epoch": 3, "lr": 0.1})),
        Case("weights.ckpt", None, r"has an unknown extension", make=lambda: _torch_bytes(_state())),
    ]


def mismatched_checkpoints() -> list[Case]:
    return [
        Case("convnext-atto.pth", None, r"does not fit resnet18: \d+ keys missing .* \d+ unexpected",
             make=lambda: _torch_bytes(_other_architecture())),
        Case("ten-classes.safetensors", None, r"2 shapes differ \(fc\.weight: file 10x512 vs model 1000x512",
             make=lambda: _safetensors_bytes(_edited(_ten_classes)())),
        Case("nan.safetensors", None, r"NaN or infinite values in 1 tensor \(e\.g\. conv1\.weight\)",
             make=lambda: _safetensors_bytes(_edited(_poke("conv1.weight", float("nan")))())),
        Case("inf.pth", None, r"NaN or infinite values in 1 tensor \(e\.g\. fc\.bias\)",
             make=lambda: _torch_bytes(_edited(_poke("fc.bias", float("-inf")))())),
        Case("overflowing.pth", None, r"outputs are not finite numbers",
             make=lambda: _torch_bytes(_edited(lambda s: s["fc.weight"].fill_(3e38))())),
        Case("integers.pth", None, r"number types differ \(conv1\.weight: file int64 vs model float32",
             make=lambda: _torch_bytes(_edited(_to_dtype("int64"))())),
        Case("complex.pth", None, r"1 number type differs \(fc\.weight: file complex64",
             make=lambda: _torch_bytes(_edited(_make_complex)())),
    ]


def working_checkpoints() -> list[Case]:
    """Unusual but valid files: each must give the same result as the weights it holds."""
    half = _edited(_to_dtype("float16"))
    brain = _edited(_to_dtype("bfloat16"))
    return [
        Case("fp16.safetensors", None, WORKS, make=lambda: _safetensors_bytes(half()), reference_state=half),
        Case("bf16.pth", None, WORKS, make=lambda: _torch_bytes(brain()), reference_state=brain),
        Case("ddp-training-run.pth", None, WORKS,
             make=lambda: _torch_bytes({"epoch": 9, "state_dict": {f"module.{k}": v for k, v in _state().items()}}),
             reference_state=_state),
        Case("SHOUTING.PTH", None, WORKS, make=lambda: _torch_bytes(_state()), reference_state=_state),
    ]


def checkpoint_cases(marker: Path) -> list[Case]:
    return hostile_checkpoints(marker) + broken_checkpoints() + mismatched_checkpoints() + working_checkpoints()
