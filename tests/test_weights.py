"""Weights: round trips through every file format, refusals with a sentence, the offline hub, `load`.

Nothing here touches the network: the hub tests point the endpoint at a closed local port and the
cache at an empty or hand-made folder.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import time
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.data import ImageNetInfo

from explorer import weights
from explorer.inference import predict
from explorer.weights import (BUNDLED, HUB_OWNER, PRETRAINED, RANDOM_INIT, CheckpointError, CheckpointMismatchError,
                              WeightsUnavailableError, class_names, hub_name, load, load_checkpoint, load_pretrained,
                              paper_or_random)
from explorer.zoo import REGISTRY, ExplorerError, UnknownModelError, build_model

SMALL_INPUT = 64  # enough for five halvings; keeps the forward passes cheap

# timm key -> official facebookresearch key, written independently of timm's converter
TIMM_TO_OFFICIAL = (
    (r"^stem\.", "downsample_layers.0."),
    (r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.", r"stages.\1.\2.dwconv."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc(\d)\.", r"stages.\1.\2.pwconv\3."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2."),  # norm and gamma keep their names
    (r"^head\.norm\.", "norm."),
    (r"^head\.fc\.", "head."),
)


def official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for pattern, replacement in TIMM_TO_OFFICIAL:
            key, found = re.subn(pattern, replacement, key)
            if found:
                break
        renamed[key] = value
    return renamed


@pytest.fixture(scope="module")
def random_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: build_model(name) for name in ("resnet18", "convnext_tiny")}


@pytest.fixture(scope="module")
def image_batch() -> torch.Tensor:
    return torch.randn(2, 3, SMALL_INPUT, SMALL_INPUT, generator=torch.Generator().manual_seed(1))


def same_logits(a: torch.nn.Module, b: torch.nn.Module, batch: torch.Tensor) -> bool:
    with torch.inference_mode():
        return torch.equal(a(batch), b(batch))


def save(state: object, path: Path) -> Path:
    if path.suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    return path


# --- round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("name", ["resnet18", "convnext_tiny"])
def test_timm_format_round_trip_gives_identical_logits(name, suffix, random_models, image_batch, tmp_path):
    source = random_models[name]
    file = save(source.state_dict(), tmp_path / f"{name}{suffix}")
    assert same_logits(load_checkpoint(name, file), source, image_batch)


def test_official_convnext_checkpoint_round_trip(random_models, image_batch, tmp_path):
    source = random_models["convnext_tiny"]
    official = official_state_dict(source.state_dict())
    assert "downsample_layers.0.0.weight" in official and "stages.3.2.pwconv2.weight" in official
    file = save({"model": official}, tmp_path / "convnext_tiny_1k_224.pth")
    assert same_logits(load_checkpoint("convnext_tiny", file), source, image_batch)


def _close_logits(a: torch.nn.Module, b: torch.nn.Module, batch: torch.Tensor) -> float:
    with torch.inference_mode():
        return (a(batch) - b(batch)).abs().max().item()


@pytest.mark.parametrize("step,timm_name,official", [
    ("roadmap:resnet50", "resnet50", False),
    ("roadmap:convnext_t", "convnext_tiny", False),
    ("roadmap:convnext_t", "convnext_tiny", True),
])
def test_roadmap_ends_load_timm_and_official_checkpoints(step, timm_name, official, image_batch, tmp_path):
    """The roadmap's first and last networks take the files people have for ResNet-50 and ConvNeXt-T."""
    torch.manual_seed(2)
    source = timm.create_model(timm_name).eval()
    state = official_state_dict(source.state_dict()) if official else source.state_dict()
    file = save({"model": state} if official else state, tmp_path / f"{timm_name}.pth")
    assert _close_logits(load_checkpoint(step, file), source, image_batch) <= 1e-4


def test_a_resnet_file_does_not_fit_the_convnext_end_of_the_roadmap(image_batch, tmp_path):
    file = save(timm.create_model("resnet50").state_dict(), tmp_path / "resnet50.pth")
    with pytest.raises(CheckpointMismatchError, match="does not fit roadmap:convnext_t"):
        load_checkpoint("roadmap:convnext_t", file)


@pytest.mark.parametrize("container", ["state_dict", "model_ema"])
def test_training_script_containers_and_ddp_prefix_are_unwrapped(container, random_models, image_batch,
                                                                  tmp_path):
    source = random_models["resnet18"]
    wrapped = {container: {f"module.{key}": value for key, value in source.state_dict().items()}, "epoch": 7}
    file = save(wrapped, tmp_path / "checkpoint.pth")
    assert same_logits(load_checkpoint("resnet18", file), source, image_batch)


# --- refusals -------------------------------------------------------------------------------------

class WritesMarker:
    """Unpickling this opens (creates) a file: the smallest stand-in for code in a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_that_runs_code_is_refused_without_running(writer, tmp_path):
    marker = tmp_path / "code-ran"
    payload = {"model": {"conv1.weight": torch.zeros(1)}, "evil": WritesMarker(marker)}
    file = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save(payload, file)
    else:
        file.write_bytes(pickle.dumps(payload, protocol=2))  # torch.load's own protocol
    with pytest.raises(CheckpointError, match="not a checkpoint we can load safely"):
        load_checkpoint("resnet18", file)
    assert not marker.exists()

    proof = tmp_path / "proof"  # the same payload does run code when unpickled plainly
    pickle.loads(pickle.dumps(WritesMarker(proof))).close()
    assert proof.exists()


def test_mismatch_message_counts_missing_unexpected_and_shapes(random_models, tmp_path):
    state = dict(random_models["resnet18"].state_dict())
    del state["conv1.weight"]
    state["extra.weight"] = torch.zeros(3)
    state["fc.weight"] = torch.zeros(10, 512)
    file = save(state, tmp_path / "edited.safetensors")
    with pytest.raises(CheckpointMismatchError) as caught:
        load_checkpoint("resnet18", file)
    assert str(caught.value) == (
        "edited.safetensors does not fit resnet18: 1 key missing (e.g. conv1.weight), "
        "1 unexpected (e.g. extra.weight), 1 shape differs (fc.weight: file 10x512 vs model "
        "1000x512). Load it into the model it was trained as, or pick a checkpoint made for resnet18.")


def test_resnet18_file_in_resnet34_counts_missing_keys(random_models, tmp_path):
    file = save(random_models["resnet18"].state_dict(), tmp_path / "resnet18.pth")
    missing = r"does not fit resnet34: \d+ keys missing \(e\.g\. layer1\.2\."
    with pytest.raises(CheckpointMismatchError, match=missing):
        load_checkpoint("resnet34", file)


def test_22k_head_in_1k_model_names_the_head_shapes(random_models, tmp_path):
    official = official_state_dict(random_models["convnext_tiny"].state_dict())
    official["head.weight"], official["head.bias"] = torch.zeros(21841, 768), torch.zeros(21841)
    file = save({"model": official}, tmp_path / "convnext_tiny_22k_224.pth")
    with pytest.raises(CheckpointMismatchError) as caught:
        load_checkpoint("convnext_tiny", file)
    message = str(caught.value)
    assert "2 shapes differ" in message and "head.fc.weight: file 21841x768 vs model 1000x768" in message
    assert "missing" not in message and "unexpected" not in message


def test_official_convnext_file_in_another_architecture_is_refused(random_models, tmp_path):
    official = official_state_dict(random_models["convnext_tiny"].state_dict())
    file = save({"model": official}, tmp_path / "convnext_tiny_1k_224.pth")
    expected = r"fit resnet18: \d+ keys missing .*, \d+ unexpected \(e\.g\. downsample_layers\.0\.0\."
    with pytest.raises(CheckpointMismatchError, match=expected):
        load_checkpoint("resnet18", file)


def test_official_file_of_a_deeper_convnext_is_refused(random_models, tmp_path):
    official = official_state_dict(random_models["convnext_tiny"].state_dict())
    official["stages.2.9.pwconv1.weight"] = torch.zeros(1536, 384)  # a block that only ConvNeXt-S/B/L have
    file = save({"model": official}, tmp_path / "convnext_small_1k_224.pth")
    with pytest.raises(CheckpointMismatchError, match="has official ConvNeXt .* key names but does not fit"):
        load_checkpoint("convnext_tiny", file)


NOT_CHECKPOINTS = {
    "random.pth": lambda path: path.write_bytes(os.urandom(4096)),
    "random.safetensors": lambda path: path.write_bytes(os.urandom(4096)),
    "empty.pth": lambda path: path.write_bytes(b""),
    "empty.safetensors": lambda path: path.write_bytes(b""),
    "notes.bin": lambda path: path.write_text("these are not weights\n" * 20),
    "weights.txt": lambda path: path.write_text("conv1.weight 0.1 0.2\n"),
    "list.pth": lambda path: torch.save([torch.zeros(2)], path),
    "no-tensors.pth": lambda path: torch.save({"epoch": 3, "model": {"lr": 0.1}}, path),
}


@pytest.mark.parametrize("filename", list(NOT_CHECKPOINTS))
def test_files_that_are_not_checkpoints_get_a_sentence(filename, tmp_path):
    file = tmp_path / filename
    NOT_CHECKPOINTS[filename](file)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint("resnet18", file)
    message = str(caught.value)
    assert message.startswith(filename) and message.endswith(".") and "\n" not in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint file at .*nowhere.pth; check the path"):
        load("resnet18", tmp_path / "nowhere.pth")


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(bad_value, random_models, tmp_path):
    state = dict(random_models["resnet18"].state_dict())
    state["fc.weight"] = state["fc.weight"].clone()
    state["fc.weight"][0, 0] = bad_value
    file = save(state, tmp_path / "diverged.pth")
    with pytest.raises(CheckpointError, match=r"NaN or infinite values in 1 tensor \(e\.g\. fc\.weight\)"):
        load_checkpoint("resnet18", file)


# --- the hub --------------------------------------------------------------------------------------

HUB_MODELS = [name for name, spec in REGISTRY.items() if spec.build is None]  # built by timm: on the hub


def test_models_built_here_have_no_hub_weights_and_say_what_to_do():
    with pytest.raises(WeightsUnavailableError, match="checkpoint file"):
        hub_name("convnext_isotropic_small")  # the official isotropic weights are files, not on the hub


@pytest.mark.parametrize("name", HUB_MODELS)
def test_every_registry_model_names_a_paper_tag_timm_can_fetch_from_the_hub(name):
    timm_name = hub_name(name)
    assert timm_name in timm.list_pretrained(timm_name)
    config = timm.models.get_pretrained_cfg(timm_name)
    # where the cache lookup looks, without asking timm (explorer.weights._cached_hub_file)
    assert config.hf_hub_id == f"{HUB_OWNER}/{timm_name}"
    assert config.hf_hub_filename is None  # timm then tries the default files, HUB_FILES


def test_paper_tags_are_the_papers_not_timms_defaults():
    assert hub_name("convnext_tiny") == "convnext_tiny.fb_in1k"
    assert hub_name("convnext_xlarge") == "convnext_xlarge.fb_in22k_ft_in1k"
    assert hub_name("convnext_base.fb_in22k_ft_in1k_384") == "convnext_base.fb_in22k_ft_in1k_384"
    assert hub_name("resnet50") == "resnet50.tv_in1k"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty weights cache and a hub endpoint on a closed local port: no request leaves the host."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for variable in ("HF_HUB_OFFLINE", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    return cache


@pytest.mark.parametrize("offline_by", ["HF_HUB_OFFLINE", "closed port"])
def test_unreachable_hub_is_refused_and_names_the_fallback(offline_by, offline_hub, monkeypatch):
    """How long the refusal takes is measured by docs/refusal_timing.py, not bounded here."""
    if offline_by == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError) as caught:
        load("convnext_tiny", PRETRAINED)
    assert "could not be reached" in str(caught.value) and BUNDLED in str(caught.value)


def test_unreachable_paper_weights_give_the_same_model_with_random_init_once_asked(offline_hub, monkeypatch):
    """The one fallback both image tabs use: the chosen model stays, and the hub is not asked again soon."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(weights, "_PAPER_WEIGHTS_FAILED_AT", {})
    loaded, which = paper_or_random("resnet18")
    assert (loaded.name, loaded.weights) == ("resnet18", RANDOM_INIT)
    assert which.startswith(RANDOM_INIT) and "could not be reached" in which and BUNDLED in which
    asked = []

    def unreachable(name):
        asked.append(name)
        raise WeightsUnavailableError("could not be reached")

    monkeypatch.setattr(weights, "load_pretrained", unreachable)
    assert paper_or_random("resnet18")[0].weights == RANDOM_INIT and asked == []  # within the pause: not asked
    long_ago = time.monotonic() - weights.RETRY_HUB_AFTER_S - 1
    monkeypatch.setattr(weights, "_PAPER_WEIGHTS_FAILED_AT", {"resnet18": long_ago})
    assert paper_or_random("resnet18")[0].weights == RANDOM_INIT and asked == ["resnet18"]  # the pause is over


def test_weights_in_the_local_cache_load_offline(offline_hub, monkeypatch, random_models, image_batch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = offline_hub / "models--timm--resnet18.tv_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    source = random_models["resnet18"]
    save(source.state_dict(), snapshot / "model.safetensors")
    assert same_logits(load_pretrained("resnet18"), source, image_batch)


# --- the entry point ------------------------------------------------------------------------------

def test_random_init_has_imagenet_labels_and_the_papers_preprocessing():
    loaded = load("resnet18")
    assert loaded.weights == "random init" and loaded.name == "resnet18"
    assert loaded.labels[0] == ImageNetInfo().index_to_description(0)
    assert loaded.labels[0].startswith("tench") and len(loaded.labels) == 1000
    assert loaded.data_config["input_size"] == (3, 224, 224)
    assert loaded.data_config["crop_pct"] == timm.models.get_pretrained_cfg("resnet18.tv_in1k").crop_pct


def test_22k_heads_get_22k_class_names():
    names = class_names(21841)
    assert len(names) == 21841 and names[0] == ImageNetInfo("imagenet-22k").index_to_description(0)
    assert class_names(7)[-1] == "class 6"


def test_loaded_models_are_cached_until_the_file_changes(random_models, tmp_path):
    assert load("resnet18") is load("resnet18")
    file = save(random_models["resnet18"].state_dict(), tmp_path / "mine.pth")
    first = load("resnet18", file)
    assert first.weights == "mine.pth (local file)" and load("resnet18", str(file)) is first
    later = time.time() + 5
    os.utime(file, (later, later))
    assert load("resnet18", file) is not first


def test_unknown_model_is_refused_before_any_file_is_read(tmp_path):
    with pytest.raises(UnknownModelError):
        load("convnext_tinny", tmp_path / "whatever.pth")


def test_every_refusal_is_an_explorer_error():
    for error in (WeightsUnavailableError, CheckpointError, CheckpointMismatchError):
        assert issubclass(error, ExplorerError)


# --- the bundled model ----------------------------------------------------------------------------

SHAPE_CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon"]


@pytest.fixture
def stand_in_bundle(tmp_path, monkeypatch) -> dict:
    """An untrained convnext_shapes with a card, in place of assets/weights/, to test the loading path."""
    card = {"name": BUNDLED, "classes": SHAPE_CLASSES, "input_size": 96, "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25]}
    save(build_model(BUNDLED).state_dict(), tmp_path / f"{BUNDLED}.safetensors")
    (tmp_path / f"{BUNDLED}.json").write_text(json.dumps(card))
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    return card


def test_bundled_model_takes_labels_and_preprocessing_from_its_card(stand_in_bundle):
    loaded = load(BUNDLED)
    assert loaded.weights == "bundled convnext_shapes (trained by the project)"
    assert loaded.labels == tuple(SHAPE_CLASSES)
    assert loaded.data_config["input_size"] == (3, 96, 96) and loaded.data_config["std"] == (0.25, 0.25, 0.25)
    assert load(BUNDLED, PRETRAINED) is loaded  # "pretrained" means the bundled weights too
    top = predict(loaded, Image.new("RGB", (120, 90), (200, 30, 30)), topk=3).top
    assert len(top) == 3 and all(guess.label == SHAPE_CLASSES[guess.index] for guess in top)


def test_missing_bundle_gets_a_sentence(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(WeightsUnavailableError, match="convnext_shapes.safetensors is not in assets/weights.*explorer.train_shapes"):
        load(BUNDLED)


BUNDLED_FILES = [weights.WEIGHTS_DIR / f"{BUNDLED}{suffix}" for suffix in (".safetensors", ".json")]


def test_shipped_bundle_loads_with_its_cards_classes():
    card = json.loads(BUNDLED_FILES[1].read_text())
    loaded = load(BUNDLED)
    assert list(loaded.labels) == card["classes"] and len(card["classes"]) == 8
    assert loaded.data_config["mean"] == tuple(card["mean"])
