"""Effective receptive fields: the gradient against one computed by hand, the area-ratio analysis on
maps built by hand, Swin's channels-last path, every family, the disk cache and the command line."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explorer import erf
from explorer.erf import (BRANCHES_ON, NOISE, RANDOM, ErfError, ErfRequest, area_ratios, cached_erf, compute_erf,
                          gradient_map, noise_images, radial_profile, square_batch, switch_branches_on)
from explorer.zoo import ExplorerError, StageLayout, build_model, get_spec, specs_by_family
from tests.test_cli import run_cli

SWIN = "swin_tiny_patch4_window7_224"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(erf.CACHE_ENV, str(tmp_path / "cache"))


# --- the gradient -------------------------------------------------------------------------------

def _full_convolution(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2-D full convolution by shifting and adding, with no library's help."""
    out = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1))
    for i in range(b.shape[0]):
        for j in range(b.shape[1]):
            out[i:i + a.shape[0], j:j + a.shape[1]] += b[i, j] * a
    return out


class LinearStack(nn.Module):
    """n depthwise kxk convs with all-ones kernels on RGB, no nonlinearity."""

    def __init__(self, n: int, k: int) -> None:
        super().__init__()
        self.stack = nn.Sequential(*[nn.Conv2d(3, 3, k, padding=k // 2, groups=3, bias=False) for _ in range(n)])
        for conv in self.stack:
            nn.init.ones_(conv.weight)

    def forward(self, x):
        return self.stack(x)


@pytest.mark.parametrize("n, k", [(1, 3), (3, 3), (2, 5), (4, 7)])
def test_a_linear_stack_of_ones_kernels_gives_their_n_fold_convolution(n, k):
    side = 64
    images = noise_images(3, side)
    batch = square_batch(images, side, mean=(0, 0, 0), std=(1, 1, 1))  # pixels in [0, 1]: the centre is positive
    layout = StageLayout(stem=(), stages=("stack",), blocks="", head=())
    got = gradient_map(LinearStack(n, k), layout, "stack", batch).numpy() / len(images)

    pattern = np.ones((k, k))
    for _ in range(n - 1):
        pattern = _full_convolution(pattern, np.ones((k, k)))
    reach = n * (k // 2)  # the pattern's half-side
    expected = np.zeros((side, side))
    centre = side // 2
    expected[centre - reach:centre + reach + 1, centre - reach:centre + reach + 1] = 3 * pattern  # summed over RGB
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_the_map_is_the_mean_over_images_and_seeds():
    one = [compute_erf(ErfRequest("convnext_shapes", None, (str(p),))).map
           for p in sorted(erf.EXAMPLES_DIR.glob("*.png"))[:2]]
    files = tuple(str(p) for p in sorted(erf.EXAMPLES_DIR.glob("*.png"))[:2])
    both = compute_erf(ErfRequest("convnext_shapes", None, files))
    np.testing.assert_allclose(both.map, (one[0] + one[1]) / 2, rtol=1e-3, atol=1e-4 * float(both.map.max()))
    assert both.images == 2 and both.seeds == 1


# --- the analysis -------------------------------------------------------------------------------

def _sides(erf_map: np.ndarray) -> dict[float, int]:
    return {ratio.threshold: ratio.side for ratio in area_ratios(erf_map)}


def test_a_point_at_the_centre_is_one_pixel_at_every_threshold():
    point = np.zeros((64, 48))
    point[32, 24] = 5.0
    for ratio in area_ratios(point):
        assert ratio.side == 1 and ratio.ratio == pytest.approx(1 / (64 * 48))


def test_a_uniform_square():
    square = np.zeros((64, 64))
    square[32 - 10:32 + 11, 32 - 10:32 + 11] = 3.0  # 21x21, centred
    # a centred a x a square holds a^2 / 441 of it; the smallest odd a with more than t:
    assert _sides(square) == {0.2: 11, 0.3: 13, 0.5: 15, 0.99: 21}
    assert area_ratios(square)[2].ratio == pytest.approx(15 ** 2 / 64 ** 2)


def test_a_gaussian_matches_the_error_function():
    sigma, side = 10.0, 129
    offsets = np.arange(side) - side // 2
    gaussian = 1e-6 * np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma ** 2))  # log10(1+x) ~ linear
    for threshold, got in _sides(gaussian).items():
        # the continuous answer: half-width w with erf(w / (sigma sqrt 2))^2 = t, by bisection
        low, high = 0.0, 60.0
        for _ in range(60):
            middle = (low + high) / 2
            low, high = (middle, high) if math.erf(middle / (sigma * math.sqrt(2))) ** 2 < threshold else (low, middle)
        expected = 2 * math.ceil(low - 0.5) + 1  # a square of side 2i + 1 covers [-i - 0.5, i + 0.5]
        assert abs(got - expected) <= 2, (threshold, got, expected)


def test_the_analysis_takes_log10_of_one_plus_the_map():
    """A strong centre on a background of ones: by raw values the centre holds 99.6%; after the log it
    holds 6 / (6 + 0.30103 * 4095) of the total, so half needs a square of side a with
    6 + 0.30103 (a^2 - 1) > half the total."""
    background = np.ones((64, 64))
    background[32, 32] = 1e6
    total = 6 + math.log10(2) * (64 * 64 - 1)
    odd = next(s for s in range(1, 65, 2) if 6 + math.log10(2) * (s * s - 1) > 0.5 * total)
    assert _sides(background)[0.5] == odd == 47


def test_nothing_fits_means_the_whole_image():
    edge = np.zeros((32, 32))
    edge[0, :] = 1.0  # the top row lies outside every centred square but the whole image
    assert all(r.side == 32 and r.ratio == 1.0 for r in area_ratios(edge))


def test_radial_profile_of_a_ring():
    ring = np.zeros((41, 41))
    rows, cols = np.indices(ring.shape)
    ring[np.rint(np.hypot(rows - 20, cols - 20)) == 7] = 1.0
    distances, shares = radial_profile(ring)
    assert distances[np.argmax(shares)] == 7 and shares[distances != 7].max() == 0
    assert shares[distances == 7][0] == pytest.approx(1 / (ring > 0).sum())


# --- real models --------------------------------------------------------------------------------

def test_swin_channels_last_stage_matches_a_permuted_copy():
    model = build_model(SWIN)
    layout = get_spec(SWIN).layout
    batch = square_batch(noise_images(1, 224), 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    got = gradient_map(model, layout, "layers.2", batch)

    kept = {}
    handle = model.get_submodule("layers.2").register_forward_hook(lambda _m, _i, out: kept.update(out=out))
    pixels = batch.clone().requires_grad_()
    model(pixels)
    handle.remove()
    nchw = kept["out"].permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W), by hand
    centre = nchw[:, :, nchw.shape[2] // 2, nchw.shape[3] // 2].relu().sum()
    (gradient,) = torch.autograd.grad(centre, pixels)
    np.testing.assert_allclose(got.numpy(), gradient.relu().sum(dim=(0, 1)).numpy(), rtol=1e-4, atol=1e-8)
    assert got.sum() > 0


def _one_per_family() -> list[str]:
    """ViT excepted: its blocks output tokens, not a feature map (see the next test)."""
    return [specs[0].name for specs in specs_by_family().values() if not specs[0].layout.tokens]


def test_vit_has_no_feature_map_and_gets_a_sentence():
    with pytest.raises(ExplorerError, match="sequence of tokens"):
        compute_erf(ErfRequest("vit_small_patch16_224", RANDOM, NOISE, count=1, seeds=1))


@pytest.mark.parametrize("name", _one_per_family())
def test_every_family_gives_a_map_centred_on_the_image(name):
    spec = get_spec(name)
    size = spec.input_size if spec.fixed_input or name == erf.BUNDLED else 96
    result = compute_erf(ErfRequest(name, RANDOM, NOISE, count=1, seeds=1, input_size=size))
    assert result.map.shape == (size, size) and result.map.dtype == np.float32
    assert np.isfinite(result.map).all() and result.map.min() >= 0 and result.map.sum() > 0
    rows, cols = np.indices(result.map.shape)
    weight = result.map / result.map.sum()
    centre = ((rows * weight).sum(), (cols * weight).sum())  # the centre of mass
    # within one output stride (32 px) of the image's centre: ResNet's strided 1x1 shortcuts read the
    # top-left pixel of every 2x2, so with its residual branches off at init its field sits 16 px up-left
    assert abs(centre[0] - size // 2) <= 32 and abs(centre[1] - size // 2) <= 32, centre
    assert result.stage == spec.layout.stages[-1]
    assert [r.threshold for r in result.ratios] == [0.2, 0.3, 0.5, 0.99]
    assert all(a.side <= b.side for a, b in zip(result.ratios, result.ratios[1:]))


def test_branches_on_sets_layer_scale_and_zero_initialized_norms_to_one():
    convnext = switch_branches_on(build_model("convnext_tiny", 64))
    gammas = [p for n, p in convnext.named_parameters() if n.endswith(".gamma")]
    assert gammas and all(bool((g == 1).all()) for g in gammas)
    resnet = build_model("resnet18", 64)
    assert not bool(resnet.layer1[0].bn2.weight.any())  # timm starts the last norm of a block at zero
    switch_branches_on(resnet)
    assert bool((resnet.layer1[0].bn2.weight == 1).all())
    assert not bool((resnet.layer1[0].bn1.weight == 0).any())


def test_random_weights_leave_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    compute_erf(ErfRequest("convnext_shapes", RANDOM, NOISE, count=1, seeds=2))
    assert torch.equal(torch.rand(3), expected)


# --- mistakes -----------------------------------------------------------------------------------

def test_mistakes_get_sentences(tmp_path):
    with pytest.raises(ErfError, match="no stage called 'layer9'"):
        compute_erf(ErfRequest("resnet18", stage="layer9", count=1))
    with pytest.raises(ErfError, match="between 1 and"):
        compute_erf(ErfRequest("resnet18", count=0))
    with pytest.raises(ErfError, match="built for 224x224"):
        compute_erf(ErfRequest(SWIN, count=1, input_size=256))
    with pytest.raises(ExplorerError, match="multiple of 32"):
        compute_erf(ErfRequest("resnet18", count=1, input_size=100))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ErfError, match="is empty"):
        compute_erf(ErfRequest("convnext_shapes", None, str(empty)))
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(ErfError, match="None of the 1 files"):
        compute_erf(ErfRequest("convnext_shapes", None, str(empty)))
    with pytest.raises(ErfError, match="not a folder"):
        compute_erf(ErfRequest("convnext_shapes", None, str(empty / "missing")))


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    Image.new("RGB", (50, 70), (200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = compute_erf(ErfRequest("convnext_shapes", None, str(tmp_path)))
    assert (result.images, result.skipped) == (1, 1)


# --- the disk cache -----------------------------------------------------------------------------

def test_the_disk_cache_is_read_back_bounded_and_keyed_on_the_weights_file(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from explorer.weights import load

    request = ErfRequest("convnext_shapes", RANDOM, NOISE, count=1, seeds=1)
    first = cached_erf(request)
    real = erf.compute_erf
    monkeypatch.setattr(erf, "compute_erf", lambda *a, **k: pytest.fail("computed again instead of read back"))
    again = cached_erf(request)
    np.testing.assert_array_equal(first.map, again.map)
    assert again.to_json() == first.to_json()
    monkeypatch.setattr(erf, "compute_erf", real)

    checkpoint = tmp_path / "shapes.safetensors"
    save_file(load("convnext_shapes").model.state_dict(), checkpoint)
    trained = ErfRequest("convnext_shapes", str(checkpoint), NOISE, count=1)
    cached_erf(trained)
    calls = []
    monkeypatch.setattr(erf, "compute_erf", lambda *a, **k: calls.append(1) or real(*a, **k))
    cached_erf(trained)
    assert calls == []  # the same file: read back
    save_file(build_model("convnext_shapes").state_dict(), checkpoint)  # written again: a new version
    cached_erf(trained)
    assert calls == [1]

    monkeypatch.setattr(erf, "CACHE_FILES_KEPT", 2)
    cached_erf(ErfRequest("convnext_shapes", RANDOM, NOISE, count=2, seeds=1))
    assert len(list(erf.cache_dir().glob("*.npz"))) == 2


def test_uploaded_images_are_not_cached(tmp_path):
    Image.new("RGB", (40, 40), (10, 200, 30)).save(tmp_path / "green.png")
    cached_erf(ErfRequest("convnext_shapes", None, (str(tmp_path / "green.png"),)))
    assert not erf.cache_dir().exists() or not list(erf.cache_dir().glob("*.npz"))


# --- the command line ---------------------------------------------------------------------------

def test_cli_json_and_out(tmp_path):
    out = tmp_path / "erf.npy"
    result = run_cli("erf", "convnext_shapes", "--noise", "2", "--stage", "stages.2", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"model", "weights", "input_size", "stage", "images", "area_ratio", "side"} <= set(doc)
    size = get_spec("convnext_shapes").input_size
    assert (doc["model"], doc["input_size"], doc["stage"], doc["images"]) == ("convnext_shapes", size, "stages.2", 2)
    assert set(doc["area_ratio"]) == set(doc["side"]) == {"0.2", "0.3", "0.5", "0.99"}
    saved = np.load(out)
    assert saved.shape == (size, size) and saved.dtype == np.float32
    for key, side in doc["side"].items():
        assert doc["area_ratio"][key] == pytest.approx(side ** 2 / size ** 2, abs=1e-6)
    assert {str(r.threshold): r.side for r in area_ratios(saved)} == doc["side"]  # the file is the map before the log


@pytest.mark.parametrize("args, message", [
    (["convnext_shapes"], "exactly one of --images"),
    (["convnext_shapes", "--noise", "1", "--images", "assets/examples"], "exactly one of --images"),
    (["convnext_shapes", "--noise", "0"], "between 1 and"),
    (["convnext_shapes", "--noise", "1", "--stage", "stage9"], "no stage called"),
    (["convnext_tinny", "--noise", "1"], "convnext_tiny"),
    (["convnext_shapes", "--noise", "1", "--input-size", "100"], "multiple of 32"),
    (["convnext_shapes", "--images", "no/such/folder"], "not a folder"),
])
def test_cli_mistakes_are_one_line_and_exit_2(args, message):
    result = run_cli("erf", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and result.stdout == ""
