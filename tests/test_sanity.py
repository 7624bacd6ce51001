"""Sanity checks for attribution maps: the similarity measures against computations written here, the
deletion curve of a model that ignores half of the image, the cascade on the trained bundled model,
and the shared model left as it was."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explorer.inference import preprocess
from explorer.sanity import (ORDERS, area, cascade, cascade_parts, edge_map, faithfulness, pixel_order,
                             probability_curve, reinitialize, spearman, ssim)
from explorer.shapes import CLASSES
from explorer.weights import BUNDLED, WEIGHTS_DIR, load
from explorer.zoo import ExplorerError, get_spec
from tests.test_attribution import picture, small_loaded



def _example(name: str) -> Image.Image:
    return Image.open(WEIGHTS_DIR.parent / "examples" / f"{name}-0.png")


def state_hash(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


# --- similarity ------------------------------------------------------------------------------------

def test_spearman_is_the_rank_formula_on_absolute_values():
    a = np.array([[0.1, -0.9], [0.5, 0.3], [-0.7, 0.2]])  # |a| ranks 1 6 4 3 5 2
    b = np.array([[0.2, 0.4], [0.6, 0.1], [0.9, 0.3]])  # ranks 2 4 5 1 6 3
    d = np.array([1, 6, 4, 3, 5, 2]) - np.array([2, 4, 5, 1, 6, 3])
    n = 6
    assert spearman(a, b) == pytest.approx(1 - 6 * (d**2).sum() / (n * (n**2 - 1)))  # = 1 - 6*12/210
    assert spearman(a, -a) == pytest.approx(1.0)  # the sign is not compared
    assert spearman(a, 1 / np.abs(a)) == pytest.approx(-1.0)


def test_spearman_gives_ties_their_average_rank():
    a = np.array([1.0, 2.0, 2.0, 3.0])  # ranks 1, 2.5, 2.5, 4
    b = np.array([4.0, 3.0, 1.0, 2.0])  # ranks 4, 3, 1, 2
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([4, 3, 1, 2])
    pearson = ((ra - ra.mean()) * (rb - rb.mean())).sum() / np.sqrt(((ra - ra.mean())**2).sum()
                                                                    * ((rb - rb.mean())**2).sum())
    assert spearman(a, b) == pytest.approx(pearson)


def test_a_blank_map_shares_no_ranking():
    varying, blank = np.arange(9.0).reshape(3, 3), np.zeros((3, 3))
    assert spearman(blank, varying) == 0.0 and spearman(varying, blank) == 0.0
    assert spearman(blank, blank) == 1.0


def _ssim_one_window(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of one 7x7 window (Wang et al. 2004) with sample (n - 1) statistics, data range 1."""
    c1, c2, n = 0.01**2, 0.03**2, x.size
    mx, my = x.mean(), y.mean()
    vx, vy = ((x - mx)**2).sum() / (n - 1), ((y - my)**2).sum() / (n - 1)
    cov = ((x - mx) * (y - my)).sum() / (n - 1)
    return (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def test_ssim_is_the_windowed_formula():
    rng = np.random.default_rng(3)
    x, y = rng.random((7, 7)), rng.random((7, 7))
    assert ssim(x, y) == pytest.approx(_ssim_one_window(x, y), abs=1e-9)  # 7x7: exactly one full window
    wide_x, wide_y = rng.random((8, 8)), rng.random((8, 8))  # 8x8: the mean over its four full windows
    windows = [_ssim_one_window(wide_x[i:i + 7, j:j + 7], wide_y[i:i + 7, j:j + 7]) for i in (0, 1) for j in (0, 1)]
    assert ssim(wide_x, wide_y) == pytest.approx(np.mean(windows), abs=1e-9)
    assert ssim(x, x) == pytest.approx(1.0)


# --- deletion and insertion ------------------------------------------------------------------------

class LeftHalf(nn.Module):
    """Two classes whose scores read only the left half of the image."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.weights = torch.randn(3, side, side // 2, generator=torch.Generator().manual_seed(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (x[..., : x.shape[-1] // 2] * self.weights).sum(dim=(1, 2, 3)) / 20  # (N,)
        return torch.stack([score, -score], dim=1)  # (N, 2)


def test_deleting_the_ignored_half_first_leaves_the_curve_flat():
    side, steps = 16, 8
    model, image = LeftHalf(side), torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(2))
    right_first = np.zeros((side, side))
    right_first[:, side // 2:] = 1.0
    order = pixel_order(right_first)
    curve = probability_curve(model, image, torch.zeros_like(image), order, steps, target=0)
    assert curve.shape == (steps + 1,)
    np.testing.assert_array_equal(curve[: steps // 2 + 1], curve[0])  # the right half goes first: no change
    assert np.all(np.abs(np.diff(curve[steps // 2:])) > 1e-4)  # then the half the model reads
    left_first = probability_curve(model, image, torch.zeros_like(image), order[::-1], steps, target=0)
    assert abs(left_first[1] - left_first[0]) > 1e-4  # the other way round it moves at once
    assert left_first[-1] == pytest.approx(0.5) and curve[-1] == pytest.approx(0.5)  # all gone: scores 0, 0


def test_insertion_goes_from_the_start_image_to_the_image():
    side = 16
    model, image = LeftHalf(side), torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(3))
    start = torch.zeros_like(image)
    order = pixel_order(np.random.default_rng(4).random((side, side)))
    curve = probability_curve(model, start, image, order, 4, target=1)
    expected_end = torch.softmax(model(image), dim=-1)[0, 1].item()
    assert curve[0] == pytest.approx(0.5) and curve[-1] == pytest.approx(expected_end)


def test_pixel_order_puts_the_highest_first_and_breaks_ties_at_random():
    heat = np.zeros((4, 4))
    heat[3, 3], heat[2, 1] = 1.0, 0.5
    orders = [pixel_order(heat, seed) for seed in range(5)]
    assert all(order[0] == 15 and order[1] == 9 for order in orders)
    assert all(sorted(order) == list(range(16)) for order in orders)
    assert len({tuple(order[2:]) for order in orders}) > 1  # the 14 zeros are not always in raster order


def test_area_is_the_trapezoid_rule_over_zero_to_one():
    assert area(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert area(np.array([1.0, 0.5, 0.5, 0.0])) == pytest.approx((0.75 + 0.5 + 0.25) / 3)


def sobel_by_hand(image: np.ndarray) -> np.ndarray:
    """Sobel edge magnitude of an (H, W, 3) uint8 image: gray levels by ITU-R BT.709 (what scikit-image's
    rgb2gray uses), the 3x3 kernels [1, 2, 1] x [1, 0, -1] / 4, the image mirrored at its borders, and
    sqrt((gx^2 + gy^2) / 2)."""
    gray = image.astype(np.float64) / 255 @ np.array([0.2125, 0.7154, 0.0721])
    padded = np.pad(gray, 1, mode="symmetric")
    smooth, slope = np.array([1.0, 2.0, 1.0]) / 4, np.array([1.0, 0.0, -1.0])
    height, width = gray.shape

    def filtered(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return sum(rows[i] * cols[j] * padded[i:i + height, j:j + width] for i in range(3) for j in range(3))

    gx, gy = filtered(smooth, slope), filtered(slope, smooth)
    return np.sqrt((gx**2 + gy**2) / 2)


def test_faithfulness_reports_every_order_and_refuses_zero_steps():
    loaded = small_loaded("convnext_shapes")
    result = faithfulness(loaded, picture(), "saliency", steps=4)
    assert set(result.curves) == set(ORDERS)
    assert all(len(c.deletion) == len(c.insertion) == 5 for c in result.curves.values())
    batch = preprocess(picture(), loaded.data_config)
    with torch.inference_mode():
        probability = lambda pixels: torch.softmax(loaded.model(pixels), -1)[0, result.result.target].item()  # noqa: E731
        for curves in result.curves.values():  # deletion: from the image to the mean color (0 after normalization)
            assert curves.deletion[0] == pytest.approx(probability(batch), abs=1e-5)
            assert curves.deletion[-1] == pytest.approx(probability(torch.zeros_like(batch)), abs=1e-5)
            assert curves.insertion[-1] == pytest.approx(probability(batch), abs=1e-5)
    edges = edge_map(result.result.image)
    np.testing.assert_allclose(edges, sobel_by_hand(result.result.image), atol=1e-9)
    # the baseline's order is the edge map's (its own values: flat regions tie up to rounding, and rounding
    # differences between two computations would reorder them)
    by_edges = probability_curve(loaded.model, batch, torch.zeros_like(batch), pixel_order(edges), 4,
                                 result.result.target)
    np.testing.assert_allclose(result.curves["edge"].deletion, by_edges, atol=1e-5)
    doc = result.to_json()
    assert {"deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "edge_deletion_auc",
            "edge_insertion_auc"} <= set(doc)
    assert doc["deletion_auc"] == pytest.approx(area(result.curves["map"].deletion), abs=1e-6)
    with pytest.raises(ExplorerError, match="steps"):
        faithfulness(loaded, picture(), "saliency", steps=0)


def test_on_the_bundled_model_gradcams_order_deletes_faster_than_random():
    result = faithfulness(load(BUNDLED), _example("star"), "gradcam", steps=8)
    assert result.result.label == "star"
    assert result.curves["map"].deletion_auc < result.curves["random"].deletion_auc


# --- cascading randomization -----------------------------------------------------------------------

def test_the_cascade_goes_from_the_head_down_to_the_stem():
    assert [name for name, _ in cascade_parts(get_spec("resnet50").layout)] == \
        ["head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"]
    assert cascade_parts(get_spec("convnext_tiny").layout)[1] == ("stage 4", ("stages.3",))
    assert cascade_parts(get_spec("resnet50").layout)[-1] == ("stem", ("conv1", "bn1", "act1", "maxpool"))


def test_reinitializing_a_part_changes_all_of_it_and_nothing_else():
    import copy

    model = copy.deepcopy(load(BUNDLED).model)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reinitialize(model.get_submodule("stages.3"))
    for key, value in model.state_dict().items():
        if key.startswith("stages.3."):
            assert not torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, before[key]), key
    gamma = "stages.3.blocks.0.gamma"  # layer scale: no module resets it, so it is shuffled
    assert torch.equal(model.state_dict()[gamma].sort().values, before[gamma].sort().values)


def test_randomizing_every_layer_takes_gradcams_ranking_away():
    """On one image the fully random model's map still ranks pixels somewhat like the trained one's
    (Spearman from -0.3 to 0.53 over the eight examples at 320 px: a random ConvNeXt's Grad-CAM
    follows the shape's edges too), so the claim is checked on the mean over one example per class."""
    loaded = load(BUNDLED)
    weights_before, rng_before = state_hash(loaded.model), torch.random.get_rng_state()
    results = [cascade(loaded, _example(shape), "gradcam") for shape in CLASSES]
    for result in results:
        assert [level.randomized[-1] if level.randomized else "" for level in result.levels] == \
            ["", "head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"]
        assert (result.levels[0].spearman, result.levels[0].ssim) == (1.0, 1.0)
        assert all(level.result.target == result.original.target for level in result.levels)
    assert np.mean([result.levels[-1].spearman for result in results]) < 0.5  # well below 1
    assert state_hash(loaded.model) == weights_before  # the shared, cached model is untouched
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # and so is the caller's random state
    assert "depends on what the model learned" in result.reading()


def test_eigencam_ignores_the_layers_after_the_stage_it_reads():
    """EigenCAM is the first principal component of stage 3's output (the card's layer): re-initializing
    the head and stage 4, which come after it, cannot change it; Grad-CAM's gradients come through them."""
    eigen = cascade(load(BUNDLED), _example("star"), "eigencam")
    assert eigen.original.layer == "stages.2"
    assert eigen.levels[1].spearman == pytest.approx(1.0) and eigen.levels[2].spearman == pytest.approx(1.0)
    assert "depends on the image more than on what the model learned" in eigen.reading()


def test_cascade_json_lists_every_level():
    doc = cascade(small_loaded("convnext_shapes"), picture(), "saliency").to_json()
    assert [level["randomized"] for level in doc["levels"]][:3] == [[], ["head"], ["head", "stage 4"]]
    assert set(doc["levels"][0]) == {"randomized", "spearman", "ssim"}
    assert doc["levels"][0]["spearman"] == 1.0 and len(doc["levels"]) == 7
