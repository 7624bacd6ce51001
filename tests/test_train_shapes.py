"""The bundled model's training script: a short run gives a loadable bundle, and an interrupted run resumes exactly."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from explorer import train_shapes
from explorer.shapes import CLASSES, normalize, sample
from explorer.train_shapes import Pool, draw_pool, symmetric_batch
from explorer.zoo import build_model

TINY_RUN = ["--steps", "4", "--full-res-steps", "2", "--low-res", "32", "--pool", "16", "--batch-size", "8",
            "--warmup-steps", "2", "--eval-images", "8", "--log-every", "1", "--threads", "1"]


def test_a_short_run_writes_weights_that_load_strictly_and_a_card(tmp_path):
    assert train_shapes.main([*TINY_RUN, "--out", str(tmp_path)]) == 0
    state = load_file(tmp_path / "convnext_shapes.safetensors")
    assert not any(key.startswith("heads") for key in state)  # the mask heads stay behind
    build_model("convnext_shapes").load_state_dict(state, strict=True)
    card = json.loads((tmp_path / "convnext_shapes.json").read_text())
    assert card["classes"] == list(CLASSES) and card["steps"] == 4 and card["train_images"] == 4 * 8
    assert card["eval_images"] == 8 and 0 <= card["top1"] <= 1 and 0 <= card["pointing"] <= 1


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    train_shapes.main([*TINY_RUN, "--out", str(whole)])

    real_batch, calls = train_shapes.symmetric_batch, []

    def cut_after_two_steps(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real_batch(*args, **kwargs)

    checkpoint = tmp_path / "state.pt"
    cut_run = [*TINY_RUN, "--out", str(tmp_path / "cut"), "--checkpoint", str(checkpoint), "--checkpoint-every", "2"]
    monkeypatch.setattr(train_shapes, "symmetric_batch", cut_after_two_steps)
    with pytest.raises(KeyboardInterrupt):
        train_shapes.main(cut_run)
    assert torch.load(checkpoint, weights_only=True)["step"] == 2
    monkeypatch.setattr(train_shapes, "symmetric_batch", real_batch)
    train_shapes.main([*cut_run, "--resume"])

    expected, resumed = load_file(whole / "convnext_shapes.safetensors"), load_file(tmp_path / "cut" / "convnext_shapes.safetensors")
    assert expected.keys() == resumed.keys()
    assert all(torch.allclose(expected[key], resumed[key], atol=1e-6) for key in expected)
    card = json.loads((tmp_path / "cut" / "convnext_shapes.json").read_text())
    assert "--resume" not in card["command"]


def test_resume_without_a_checkpoint_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_shapes.main([*TINY_RUN, "--out", str(tmp_path), "--resume"])
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_a_batch_turns_each_mask_with_its_image():
    item = sample(5, 2, 32)  # its noisy background makes all eight turned copies differ
    pool = draw_pool(5, 3, 32)
    single = Pool(pool.images[2:3], pool.masks[2:3], pool.labels[2:3])
    original = torch.from_numpy(item.image).permute(2, 0, 1)
    symmetries = [(turns, mirror) for turns in range(4) for mirror in (False, True)]

    def moved(tensor, turns, mirror):
        tensor = tensor.rot90(turns, (-2, -1))
        return tensor.flip(-1) if mirror else tensor

    seen = set()
    for seed in range(40):
        images, masks, labels = symmetric_batch(single, 1, torch.Generator().manual_seed(seed))
        assert labels.tolist() == [item.label]
        match = [s for s in symmetries if torch.equal(images[0], normalize(moved(original, *s)))]
        assert match, "the image is not a symmetry of the original"
        assert torch.equal(masks[0, 0], moved(torch.from_numpy(item.mask).float(), *match[0]))
        seen.add(match[0])
    assert len(seen) >= 6  # the batches really are turned, in most of the eight ways


def test_the_training_grad_cam_is_captums_before_the_relu():
    from captum.attr import LayerGradCam

    from explorer.shapes import ShapesDataset
    from explorer.train_shapes import CAM_LAYER, CAM_STAGE, forward_with_stages, grad_cam

    torch.manual_seed(0)
    model = build_model("convnext_shapes").eval()
    images, _, labels = ShapesDataset(5, 4).batch(0, 4)
    logits, features = forward_with_stages(model, images)
    ours = grad_cam(logits, features[CAM_STAGE], labels)
    theirs = LayerGradCam(model, model.get_submodule(CAM_LAYER)).attribute(images, target=labels,
                                                                            relu_attributions=False)[:, 0]
    cells = images.shape[-1] // 16  # stage 3: the stem and two downsamplings divide the side by 16
    assert ours.shape == theirs.shape == (4, cells, cells)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_the_pointing_loss_rewards_a_map_that_peaks_on_the_object():
    from explorer.train_shapes import pointing_loss

    masks = torch.zeros(1, 1, 128, 128)
    masks[..., 32:64, 32:64] = 1  # cells (2, 2), (2, 3), (3, 2), (3, 3) of the 8x8 grid have their centre on it
    on, off = torch.zeros(1, 8, 8), torch.zeros(1, 8, 8)
    on[0, 2, 3], off[0, 6, 6] = 5.0, 5.0
    assert pointing_loss(on, masks) < 0.1 < 2.0 < pointing_loss(off, masks)
    assert pointing_loss(on, torch.ones_like(masks)).item() == pytest.approx(0.0, abs=1e-6)  # all on the object
    assert pointing_loss(off, torch.zeros_like(masks)).item() == 0.0  # no cell on the object: not counted
