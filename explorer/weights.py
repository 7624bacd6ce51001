"""Weights for the registry's models: the paper's from the hub, local checkpoint files, the bundled demo.

Everything goes through one entry point, `load(name, weights)`:

- `weights=None`: random init (the bundled `convnext_shapes` comes with its trained weights);
- `weights="pretrained"`: the paper's weights through timm, from the local Hugging Face cache when
  they are there, otherwise from the hub after a quick reachability check, so that offline it fails
  within seconds (`WeightsUnavailableError`) instead of hanging;
- `weights=PATH`: a local file, read with safetensors or `torch.load(weights_only=True)` only, in
  timm's key names or in a foreign format that `KEY_FORMATS` knows how to convert.

A file that does not fit the model is refused with a sentence that counts the missing and unexpected
keys and names the shapes that differ; nothing is loaded half-way (`strict=True` after the check).
"""
from __future__ import annotations

import json
import os
import pickle
import re
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

import torch
from torch import nn

from explorer.roadmap import convnext_from_official, convnext_from_timm, resnet_from_timm
from explorer.zoo import IN1K_CLASSES, IN22K_CLASSES, REGISTRY, ROADMAP_PREFIXES, ExplorerError, build_model, get_spec

PRETRAINED = "pretrained"  # the `weights` value that asks for the paper's weights
RANDOM_INIT = "random init"  # `LoadedModel.weights` of a model without trained weights
BUNDLED = "convnext_shapes"  # the model trained by the project, shipped in assets/weights/
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"
HUB_PROBE_SECONDS = 3.0  # how long to wait for the hub (or proxy) to accept a connection
LOADED_MODELS_KEPT = 4  # bound of the loaded-model cache (DESIGN principle 6)
RETRY_HUB_AFTER_S = 300.0  # after the paper's weights could not be had, use random init without asking again this long
EXAMPLES_IN_MESSAGE = 3  # key names quoted in a mismatch message

# Registry name -> timm pretrained tag of the weights the paper reports. Registry names that carry
# a tag already (`convnext_tiny.fb_in22k`, `convnext_base.fb_in22k_ft_in1k_384`) are their own tag.
PAPER_TAGS: dict[str, str] = {
    "convnext_tiny": "fb_in1k",
    "convnext_small": "fb_in1k",
    "convnext_base": "fb_in1k",
    "convnext_large": "fb_in1k",
    "convnext_xlarge": "fb_in22k_ft_in1k",  # ConvNeXt-XL was only trained with ImageNet-22K
    "swin_tiny_patch4_window7_224": "ms_in1k",
    "swin_small_patch4_window7_224": "ms_in1k",
    "swin_base_patch4_window7_224": "ms_in1k",
    "swin_large_patch4_window7_224": "ms_in22k_ft_in1k",  # Swin-L was only trained with 22K
    "swin_base_patch4_window12_384": "ms_in22k_ft_in1k",  # compared with ConvNeXt's 22K @384
    "swin_large_patch4_window12_384": "ms_in22k_ft_in1k",
    "resnet18": "tv_in1k",
    "resnet34": "tv_in1k",
    "resnet50": "tv_in1k",  # 76.13 top-1, the paper's starting point
    "resnet101": "tv_in1k",
    "resnet152": "tv_in1k",
    "resnext50_32x4d": "tv_in1k",
    "resnext101_32x4d": "gluon_in1k",  # timm has no torchvision weights; gluon's are ImageNet-1K only
    "resnext101_64x4d": "tv_in1k",
    **{f"convnextv2_{size}": "fcmae_ft_in1k"  # FCMAE pre-training, ImageNet-1K fine-tuning: the V2 table's
       for size in ("atto", "femto", "pico", "nano", "tiny", "base", "large", "huge")},
    # The ConvNeXt paper's ViT-S and ViT-B figures are DeiT's runs and ViT-L is its own: none is on the hub
    # under these names. These are timm's ImageNet-1K runs of the same networks (L only after 21K).
    "vit_small_patch16_224": "augreg_in1k",
    "vit_base_patch16_224": "augreg_in1k",
    "vit_large_patch16_224": "augreg_in21k_ft_in1k",
}
# The isotropic ConvNeXts have no hub weights: their official checkpoints (facebookresearch/ConvNeXt's
# README) load as files, with the official key names (explorer.isotropic).
IMAGENET_SUBSETS = {IN1K_CLASSES: "imagenet-1k", IN22K_CLASSES: "imagenet-22k"}  # for class names
CONTAINER_KEYS = ("model", "state_dict", "model_ema")  # where training scripts nest the weights
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
UNSAFE_OR_BROKEN = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError,
                    zipfile.BadZipFile, KeyError, IndexError, TypeError, AttributeError)
# ^ what torch.load(weights_only=True) raises on damaged files (seen by fuzzing) and unsafe pickles


class WeightsUnavailableError(ExplorerError):
    """The requested weights cannot be had here (offline hub, none published, bundled files gone)."""


class CheckpointError(ExplorerError):
    """A local file that is not a usable checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A checkpoint for another architecture or class count."""


StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class KeyFormat:
    """A foreign checkpoint layout and how to turn it into timm's key names."""

    name: str  # what a person reads, e.g. "official ConvNeXt (facebookresearch)"
    models: str  # regex of the registry names it converts for
    marker: str  # regex that some key of this format matches and no timm key does
    convert: Callable[[StateDict, nn.Module], StateDict]  # (file's state dict, target model) -> timm's


def _official_convnext_to_timm(state: StateDict, model: nn.Module) -> StateDict:  # timm imported on use
    from timm.models.convnext import checkpoint_filter_fn

    return checkpoint_filter_fn(state, model)


def _to_roadmap_names(rename: Callable[[StateDict], StateDict]) -> Callable[[StateDict, nn.Module], StateDict]:
    """A converter to a roadmap step's names (`explorer.roadmap`'s renamings ignore the target model)."""
    return lambda state, _model: rename(state)


OFFICIAL_CONVNEXT_MARKER = r"^downsample_layers\.|^stages\.\d+\.\d+\.dwconv\."
ROADMAP_END = rf"^({'|'.join(ROADMAP_PREFIXES)}):{{step}}$"  # the steps that are the same networks as timm's
KEY_FORMATS: tuple[KeyFormat, ...] = (
    KeyFormat("official ConvNeXt (facebookresearch)", r"^convnext_(tiny|small|base|large|xlarge)\b",
              OFFICIAL_CONVNEXT_MARKER, _official_convnext_to_timm),
    KeyFormat("official ConvNeXt (facebookresearch)", ROADMAP_END.format(step="convnext_t"),
              OFFICIAL_CONVNEXT_MARKER, _to_roadmap_names(convnext_from_official)),
    KeyFormat("timm ConvNeXt", ROADMAP_END.format(step="convnext_t"), r"\.conv_dw\.",
              _to_roadmap_names(convnext_from_timm)),
    KeyFormat("timm ResNet", ROADMAP_END.format(step="resnet50"), r"^layer\d\.", _to_roadmap_names(resnet_from_timm)),
)


@dataclass(frozen=True)
class LoadedModel:
    """A model with its weights and what prediction needs to use it."""

    model: nn.Module  # in eval mode, on the CPU
    name: str  # registry name
    weights: str  # what a person reads, e.g. "convnext_tiny.fb_in1k (hub)", "random init"
    labels: tuple[str, ...]  # one per output class
    data_config: dict[str, Any]  # timm's preprocessing: input_size, interpolation, mean, std, crop
    lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)
    # ^ held for every pass through `model`: cached models are shared between threads, and forward
    #   hooks (Grad-CAM, activations) must see their own pass only, not another request's


# --- the paper's weights from the hub -------------------------------------------------------------

HUB_OWNER = "timm"  # the Hub account that holds timm's weights
HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm looks for there, in its order


def _paper_timm_name(name: str) -> str | None:
    if name in REGISTRY and "." in name:  # the registry key is a timm name with its tag
        return name
    return f"{name}.{PAPER_TAGS[name]}" if name in PAPER_TAGS else None


def hub_name(name: str) -> str:
    """The timm name with the pretrained tag of the paper's weights for a registry name."""
    get_spec(name)  # an unknown name gets the registry's message
    timm_name = _paper_timm_name(name)
    if timm_name is None:
        raise WeightsUnavailableError(
            f"No published weights exist for {name}; load a checkpoint file with --weights FILE "
            f"or use random initialization.")
    return timm_name


def _cached_hub_file(timm_name: str) -> str | None:
    """The weights file in the local Hugging Face cache, if an earlier download left it there.

    Found without importing timm, which costs 2.5 s of the server's start (the image tabs ask at
    build time): timm's pretrained configs put every model here in the Hub repository
    `HUB_OWNER/<timm name>`, as one of `HUB_FILES` (tests/test_weights.py checks each against timm)."""
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_FILES:
        found = try_to_load_from_cache(f"{HUB_OWNER}/{timm_name}", filename)
        if isinstance(found, str):
            return found
    return None


def pretrained_cached(name: str) -> bool:
    """Whether the paper's weights for `name` are already on this machine (no network is asked)."""
    timm_name = _paper_timm_name(name)
    return timm_name is not None and _cached_hub_file(timm_name) is not None


def _offline_by_setting() -> bool:
    from huggingface_hub import constants

    from_env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or from_env


def _accepts_connection(url: str, seconds: float) -> bool:
    """Whether the host of `url` accepts a TCP connection within `seconds`, name lookup included."""
    parts = urlsplit(url)
    address = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    outcome: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=seconds).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    # a daemon thread, because a name lookup ignores socket timeouts and may block for long
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(seconds)
    return outcome == [True]


def _check_hub_reachable() -> None:
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    probe = getproxies().get(urlsplit(endpoint).scheme, endpoint)  # through a proxy, test the proxy
    if _offline_by_setting() or not _accepts_connection(probe, HUB_PROBE_SECONDS):
        raise WeightsUnavailableError(
            f"The pretrained weights could not be reached ({urlsplit(endpoint).hostname} does not "
            f"answer or HF_HUB_OFFLINE is set); offline, use the bundled model {BUNDLED} or a "
            f"checkpoint file.")


def load_pretrained(name: str) -> nn.Module:
    """The paper's weights for a registry name: from the local cache, else downloaded through timm."""
    import timm

    timm_name = hub_name(name)
    cached = _cached_hub_file(timm_name)
    if cached is None:
        _check_hub_reachable()
    overlay = {"file": cached} if cached else None
    try:
        model = timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay=overlay)
    except Exception as error:  # the download stack (huggingface_hub, httpx, xet) raises many types
        raise WeightsUnavailableError(
            f"The pretrained weights {timm_name} could not be downloaded ({error}); try again later, "
            f"or use the bundled model {BUNDLED} or a checkpoint file.") from error
    return model.eval()


# --- local checkpoint files -----------------------------------------------------------------------

def _existing_file(path: str | os.PathLike) -> Path:
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"There is no checkpoint file at {file}; check the path.")
    return file


def _read_file(file: Path) -> Any:
    suffix = file.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(file, device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"{file.name} is not a valid safetensors file ({error}).") from error
    if suffix in TORCH_SUFFIXES:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except UNSAFE_OR_BROKEN as error:
            raise CheckpointError(
                f"{file.name} is not a checkpoint we can load safely: it is damaged, not a PyTorch "
                f"file, or holds code or whole objects rather than tensors; save the weights with "
                f"torch.save(model.state_dict(), ...) or as .safetensors.") from error
    raise CheckpointError(
        f"{file.name} has an unknown extension; use a .safetensors, .pth, .pt or .bin checkpoint.")


def _unwrap(content: Any, file: Path) -> StateDict:
    """The state dict inside what a training script saved (nested under "model", "state_dict", ...)."""
    while isinstance(content, Mapping):
        inner = next((content[key] for key in CONTAINER_KEYS if isinstance(content.get(key), Mapping)), None)
        if inner is None:
            break
        content = inner
    is_state_dict = (isinstance(content, Mapping) and content
                     and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in content.items()))
    if not is_state_dict:
        raise CheckpointError(
            f"{file.name} holds no model weights: expected a state dict of tensors, alone or under "
            f"one of the keys {', '.join(CONTAINER_KEYS)}.")
    if all(key.startswith("module.") for key in content):  # saved from a DistributedDataParallel wrapper
        return {key.removeprefix("module."): value for key, value in content.items()}
    return dict(content)


def _to_timm_keys(state: StateDict, model: nn.Module, name: str, file: Path) -> StateDict:
    for key_format in KEY_FORMATS:
        if re.match(key_format.models, name) and any(re.search(key_format.marker, key) for key in state):
            try:
                return key_format.convert(state, model)
            except (KeyError, RuntimeError) as error:  # a layer the model lacks, or a size it cannot take
                raise CheckpointMismatchError(
                    f"{file.name} has {key_format.name} key names but does not fit {name} (its "
                    f"layers differ); load it into the model it was trained as.") from error
    return state


def _shape_text(shape: torch.Size) -> str:
    return "x".join(str(size) for size in shape) or "scalar"


def _dtype_text(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _examples(keys: list[str]) -> str:
    return ", ".join(keys[:EXAMPLES_IN_MESSAGE])


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _check_fits(state: StateDict, model: nn.Module, name: str, file: Path) -> None:
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    differ = [key for key in expected if key in state and state[key].shape != expected[key].shape]
    # load_state_dict would cast integers or complex numbers into float weights without a word
    kinds = [key for key in expected if key in state
             and state[key].is_floating_point() != expected[key].is_floating_point()]
    problems = []
    if missing:
        problems.append(f"{_count(len(missing), 'key', 'keys')} missing (e.g. {_examples(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {_examples(unexpected)})")
    if differ:
        shapes = "; ".join(f"{key}: file {_shape_text(state[key].shape)} vs model "
                           f"{_shape_text(expected[key].shape)}" for key in differ[:EXAMPLES_IN_MESSAGE])
        problems.append(f"{_count(len(differ), 'shape differs', 'shapes differ')} ({shapes})")
    if kinds:
        types = "; ".join(f"{key}: file {_dtype_text(state[key])} vs model {_dtype_text(expected[key])}"
                          for key in kinds[:EXAMPLES_IN_MESSAGE])
        problems.append(f"{_count(len(kinds), 'number type differs', 'number types differ')} ({types})")
    if problems:
        raise CheckpointMismatchError(
            f"{file.name} does not fit {name}: {', '.join(problems)}. Load it into the model it was "
            f"trained as, or pick a checkpoint made for {name}.")


def _check_finite(state: StateDict, file: Path) -> None:
    broken = [key for key, value in state.items()
              if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if broken:
        raise CheckpointError(
            f"{file.name} has NaN or infinite values in {_count(len(broken), 'tensor', 'tensors')} "
            f"(e.g. {_examples(broken)}); the training run that wrote it probably diverged, so use an "
            f"earlier checkpoint.")


def load_checkpoint(name: str, path: str | os.PathLike) -> nn.Module:
    """A registry model with the weights of a local file, after checking that the file fits it."""
    file = _existing_file(path)
    model = build_model(name)
    state = _to_timm_keys(_unwrap(_read_file(file), file), model, name, file)
    _check_fits(state, model, name, file)
    _check_finite(state, file)
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- the bundled model ----------------------------------------------------------------------------

def _bundled_file(suffix: str) -> Path:
    file = WEIGHTS_DIR / f"{BUNDLED}{suffix}"
    if not file.is_file():
        raise WeightsUnavailableError(
            f"The bundled model's file {file.name} is not in assets/weights/, where the project ships it: "
            f"restore it (`git checkout assets/weights`) or train it again with "
            f"`python -m explorer.train_shapes --out assets/weights`, or pick another model.")
    return file


def bundled_available() -> bool:
    """Whether the bundled model's weights and card are in assets/weights/."""
    return all((WEIGHTS_DIR / f"{BUNDLED}{suffix}").is_file() for suffix in (SAFETENSORS_SUFFIX, ".json"))


def bundled_card() -> dict[str, Any]:
    """The bundled model's card: classes, input size, mean/std, training command, accuracy."""
    return json.loads(_bundled_file(".json").read_text())


def load_bundled() -> tuple[nn.Module, dict[str, Any]]:
    """The bundled `convnext_shapes` with its trained weights, and its card."""
    return load_checkpoint(BUNDLED, _bundled_file(SAFETENSORS_SUFFIX)), bundled_card()


# --- labels and preprocessing ---------------------------------------------------------------------

@lru_cache(maxsize=len(IMAGENET_SUBSETS))
def class_names(num_classes: int) -> tuple[str, ...]:
    """ImageNet class descriptions for a 1K or 22K head (timm ships them), else "class N"."""
    from timm.data import ImageNetInfo

    subset = IMAGENET_SUBSETS.get(num_classes)
    if subset is None:
        return tuple(f"class {index}" for index in range(num_classes))
    info = ImageNetInfo(subset)
    return tuple(info.index_to_description(index) for index in range(num_classes))


PAD_TO_SQUARE = "pad_to_square"  # data_config key: pad to a square before timm's transform (see inference)


def _card_data_config(card: Mapping[str, Any]) -> dict[str, Any]:
    size = card["input_size"]
    height, width = (size, size) if isinstance(size, int) else size[-2:]
    config = {"input_size": (3, height, width), "interpolation": "bilinear", "mean": tuple(card["mean"]),
              "std": tuple(card["std"]), "crop_pct": 1.0, "crop_mode": "center"}
    if card.get("resize") == "pad":  # pad non-square images to a square instead of cropping them
        config[PAD_TO_SQUARE] = True
    return config


def _labels_and_data_config(name: str, model: nn.Module) -> tuple[tuple[str, ...], dict[str, Any]]:
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    if name == BUNDLED:
        card = bundled_card()
        return tuple(card["classes"]), _card_data_config(card)
    labels = class_names(get_spec(name).num_classes)
    timm_name = _paper_timm_name(name)
    if timm_name:  # preprocess as for the paper's weights, whichever weights are loaded
        return labels, resolve_data_config(pretrained_cfg=get_pretrained_cfg(timm_name).to_dict())
    return labels, resolve_data_config(model=model)


# --- the entry point ------------------------------------------------------------------------------

@lru_cache(maxsize=LOADED_MODELS_KEPT)
def _load_cached(name: str, weights: str | None, version: str) -> LoadedModel:
    """`load`, cached; `version` names the weights file read and its modification time ("" when no
    file is read), so that a file written again is read again."""
    if name == BUNDLED and weights is None:
        model, _ = load_bundled()
        description = f"bundled {BUNDLED} (trained by the project)"
    elif weights is None:
        model, description = build_model(name), RANDOM_INIT
    elif weights == PRETRAINED:
        model, description = load_pretrained(name), f"{hub_name(name)} (hub)"
    else:
        model, description = load_checkpoint(name, weights), f"{Path(weights).name} (local file)"
    labels, data_config = _labels_and_data_config(name, model)
    return LoadedModel(model, name, description, labels, data_config)


def _file_version(file: Path) -> str:
    return f"{file.resolve()}@{file.stat().st_mtime_ns}"


def load(name: str, weights: str | os.PathLike | None = None) -> LoadedModel:
    """A registry model with weights: None (random init; the bundled model's own for convnext_shapes),
    "pretrained" (the paper's, from the hub) or the path of a checkpoint file.

    Loaded models are cached (a few at a time) and shared between callers: do not modify them.
    """
    get_spec(name)
    if name == BUNDLED and weights in (None, PRETRAINED):  # its published weights are the bundled ones
        return _load_cached(name, None, _file_version(_bundled_file(SAFETENSORS_SUFFIX)))
    if weights is None or weights == PRETRAINED:
        return _load_cached(name, weights, "")
    file = _existing_file(weights)
    return _load_cached(name, str(file), _file_version(file))


# --- when the paper's weights cannot be had -------------------------------------------------------

_PAPER_WEIGHTS_FAILED_AT: dict[str, float] = {}  # model -> when its paper's weights last could not be had


def paper_or_random(name: str) -> tuple[LoadedModel, str]:
    """The paper's weights when they can be had, else the same model with random init; and a sentence
    saying which. This is the one fallback of every view that asks for the paper's weights: the model
    a person chose stays the one shown, and after a failure the hub is not asked again for
    RETRY_HUB_AFTER_S seconds, so an offline machine does not wait for it on every click."""
    failed_at = _PAPER_WEIGHTS_FAILED_AT.get(name)
    reason = "the paper's weights cannot be reached here"
    if failed_at is None or time.monotonic() - failed_at > RETRY_HUB_AFTER_S:
        try:
            loaded = load(name, PRETRAINED)
            _PAPER_WEIGHTS_FAILED_AT.pop(name, None)
            return loaded, f"the paper's weights ({loaded.weights})"
        except WeightsUnavailableError as error:
            _PAPER_WEIGHTS_FAILED_AT[name] = time.monotonic()
            reason = str(error).rstrip(".")
    return load(name), (f"random init ({reason}), so it shows structure, not knowledge; the bundled {BUNDLED} "
                        f"works offline")
