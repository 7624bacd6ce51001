"""The model registry: every name the app knows, and one builder that turns a name into a model.

Variants are data. A `ModelSpec` says which timm architecture to build, with which head, at which
default input size, and where its stem, stages and head live in the module tree (`StageLayout`),
so that `explorer.analysis` can summarize any of them the same way.

Names are timm names. Where one timm architecture comes with several heads or input sizes, the
registry key carries timm's pretrained tag (`convnext_tiny.fb_in22k` has the 21841-class head,
`convnext_tiny.fb_in22k_ft_in1k_384` is fine-tuned at 384), so the same key later selects the
paper's weights.

Three kinds of names resolve here, and nowhere else:
- library models: `REGISTRY[name]`, built by timm (or by `build`, for the isotropic ConvNeXt);
- the bundled demo model `convnext_shapes`, whose architecture is `SHAPES_NET` below;
- roadmap steps, `roadmap:STEP` (ResNet-50 -> ConvNeXt-T) and `roadmap200:STEP` (ResNet-200 ->
  ConvNeXt-B): `ROADMAP_PREFIXES` names the regime of each prefix, and `explorer.roadmap.step_spec`
  makes the spec of a step (its `step` and `regime` fields say which).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

IN1K_CLASSES = 1000
IN22K_CLASSES = 21841


MIN_INPUT, MAX_INPUT, INPUT_STEP = 32, 2048, 32  # five halvings of resolution need a multiple of 32


class ExplorerError(ValueError):
    """A mistake a person can make (a wrong name, size or file); its message says what to do."""


class UnknownModelError(ExplorerError):
    """A model name the registry does not know; the message suggests the closest known names."""


@dataclass(frozen=True)
class StageLayout:
    """Where the parts of a network live, by module name, for per-stage summaries."""

    stem: tuple[str, ...]  # modules (and top-level parameters, as ViT's class token) from the image to
    #                        the first stage; the last one is a module
    stages: tuple[str, ...]  # one module per stage, in order
    blocks: str  # attribute of a stage that holds its blocks ("" when the stage itself is the list)
    head: tuple[str, ...]  # modules from the last stage to the logits
    channels_last: bool = False  # stage outputs are (N, H, W, C), as in Swin
    groups: int = 0  # isotropic networks (one stage, no downsampling): summarize its blocks in this
    #                  many equal groups instead of one row
    tokens: bool = False  # stage outputs are (N, tokens, C), as in ViT: no feature map to draw


CONVNEXT_LAYOUT = StageLayout(
    stem=("stem",),
    stages=tuple(f"stages.{i}" for i in range(4)),
    blocks="blocks",
    head=("norm_pre", "head"),
)
SWIN_LAYOUT = StageLayout(
    stem=("patch_embed",),
    stages=tuple(f"layers.{i}" for i in range(4)),
    blocks="blocks",
    head=("norm", "head"),
    channels_last=True,
)
ISOTROPIC_GROUPS = 3  # an isotropic network is shown as its first, middle and last third of blocks
ISOTROPIC_LAYOUT = StageLayout(stem=("stem",), stages=("blocks",), blocks="", head=("norm", "head"),
                               groups=ISOTROPIC_GROUPS)
VIT_LAYOUT = StageLayout(
    stem=("patch_embed", "cls_token", "pos_embed", "norm_pre"),  # patches, class token, positions
    stages=("blocks",),
    blocks="",
    head=("norm", "fc_norm", "head_drop", "head"),
    groups=ISOTROPIC_GROUPS,
    tokens=True,
)
RESNET_LAYOUT = StageLayout(
    stem=("conv1", "bn1", "act1", "maxpool"),
    stages=("layer1", "layer2", "layer3", "layer4"),
    blocks="",
    head=("global_pool", "fc"),
)


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the registry."""

    name: str  # registry key and command-line name
    family: str  # group in the model picker: ConvNeXt, Swin, ResNet, ResNeXt, ...
    label: str  # what a person reads, e.g. "ConvNeXt-T (IN-22K head)"
    arch: str  # timm architecture to build; for models built by `build`, the builder's own key
    layout: StageLayout
    input_size: int = 224  # default square input side
    num_classes: int = IN1K_CLASSES
    fixed_input: bool = False  # the architecture depends on the input size (Swin's windows)
    paper_gflops: float | None = None  # the paper's figure at input_size, for models outside its tables
    paper_note: str = ""  # why that figure differs from the count, where it does
    build: Callable[["ModelSpec", int], nn.Module] | None = field(default=None, compare=False)
    # ^ custom builder (spec, input_size) -> model; None means timm.create_model(arch)
    step: str = ""  # roadmap step id ("kernel7") of a `roadmap:STEP` name, else ""
    regime: str = ""  # its roadmap regime ("resnet50" | "resnet200"), else ""


def _timm_model(spec: ModelSpec, input_size: int) -> nn.Module:
    import timm  # imported here: importing timm costs a second, and nothing runs at import time

    kwargs: dict = {"num_classes": spec.num_classes}
    if spec.fixed_input:
        kwargs["img_size"] = input_size
    return timm.create_model(spec.arch, pretrained=False, **kwargs)


_CONVNEXT_SIZES = {  # timm arch -> paper's short name
    "convnext_tiny": "T",
    "convnext_small": "S",
    "convnext_base": "B",
    "convnext_large": "L",
    "convnext_xlarge": "XL",
}
_SWIN = {  # timm name -> (paper's name, input size)
    "swin_tiny_patch4_window7_224": ("Swin-T", 224),
    "swin_small_patch4_window7_224": ("Swin-S", 224),
    "swin_base_patch4_window7_224": ("Swin-B", 224),
    "swin_large_patch4_window7_224": ("Swin-L", 224),
    "swin_base_patch4_window12_384": ("Swin-B", 384),
    "swin_large_patch4_window12_384": ("Swin-L", 384),
}
_CONVNEXT_V2 = {  # timm arch -> the V2 paper's name (Woo et al. 2023)
    "convnextv2_atto": "Atto",
    "convnextv2_femto": "Femto",
    "convnextv2_pico": "Pico",
    "convnextv2_nano": "Nano",
    "convnextv2_tiny": "Tiny",
    "convnextv2_base": "Base",
    "convnextv2_large": "Large",
    "convnextv2_huge": "Huge",
}
_VIT = {  # timm arch -> name in the ConvNeXt paper's isotropic comparison (Section 3.3)
    "vit_small_patch16_224": "ViT-S",
    "vit_base_patch16_224": "ViT-B",
    "vit_large_patch16_224": "ViT-L",
}
_RESNETS = {
    "resnet18": ("ResNet", "ResNet-18"),
    "resnet34": ("ResNet", "ResNet-34"),
    "resnet50": ("ResNet", "ResNet-50"),
    "resnet101": ("ResNet", "ResNet-101"),
    "resnet152": ("ResNet", "ResNet-152"),
    "resnext50_32x4d": ("ResNeXt", "ResNeXt-50 32x4d"),
    "resnext101_32x4d": ("ResNeXt", "ResNeXt-101 32x4d (X101-32)"),
    "resnext101_64x4d": ("ResNeXt", "ResNeXt-101 64x4d (X101-64)"),
}


@dataclass(frozen=True)
class ShapesNet:
    """The bundled ConvNeXt (`convnext_shapes`): a real timm ConvNeXt, narrow and shallow, trained by
    `explorer.train_shapes` on the drawings of `explorer.shapes`."""

    classes: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon")
    depths: tuple[int, ...] = (1, 1, 2, 1)  # blocks per stage (ConvNeXt-T has 3, 3, 9, 3)
    dims: tuple[int, ...] = (16, 32, 64, 128)  # channels per stage (ConvNeXt-T has 96 ... 768)
    input_size: int = 320  # square input side; stage 4 sees a 10x10 grid
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet's, as timm uses
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


SHAPES_NET = ShapesNet()


def build_shapes_convnext(spec: ModelSpec | None = None, input_size: int | None = None) -> nn.Module:
    """The bundled ConvNeXt with random weights (the `build` of `convnext_shapes`).

    ConvNeXt does not depend on the input size, so `input_size` is accepted and ignored.
    """
    from timm.models.convnext import ConvNeXt  # imported here: timm costs a second to import

    return ConvNeXt(depths=SHAPES_NET.depths, dims=SHAPES_NET.dims, num_classes=len(SHAPES_NET.classes))


def _convnext_specs() -> list[ModelSpec]:
    specs = []
    for arch, size in _CONVNEXT_SIZES.items():
        name = f"ConvNeXt-{size}"
        specs += [
            ModelSpec(arch, "ConvNeXt", f"{name} (IN-1K head)", arch, CONVNEXT_LAYOUT),
            ModelSpec(f"{arch}.fb_in22k", "ConvNeXt", f"{name} (IN-22K head)", arch,
                      CONVNEXT_LAYOUT, num_classes=IN22K_CLASSES),
            ModelSpec(f"{arch}.fb_in22k_ft_in1k_384", "ConvNeXt", f"{name} @384 (IN-1K head)", arch,
                      CONVNEXT_LAYOUT, input_size=384),
        ]
    return specs


def _build_registry() -> dict[str, ModelSpec]:
    specs = _convnext_specs()
    specs += [
        ModelSpec(arch, "Swin", label if size == 224 else f"{label} @{size}", arch, SWIN_LAYOUT,
                  input_size=size, fixed_input=True)
        for arch, (label, size) in _SWIN.items()
    ]
    specs += [ModelSpec(arch, family, label, arch, RESNET_LAYOUT)
              for arch, (family, label) in _RESNETS.items()]
    specs += [ModelSpec(arch, "ConvNeXt V2", f"ConvNeXt V2-{size}", arch, CONVNEXT_LAYOUT)
              for arch, size in _CONVNEXT_V2.items()]
    from explorer.isotropic import ISOTROPIC, build_isotropic

    specs += [ModelSpec(arch, "Isotropic", cfg.label, arch, ISOTROPIC_LAYOUT, build=build_isotropic)
              for arch, cfg in ISOTROPIC.items()]
    specs += [ModelSpec(arch, "ViT", label, arch, VIT_LAYOUT, fixed_input=True) for arch, label in _VIT.items()]
    specs.append(ModelSpec("convnext_shapes", "Bundled", "ConvNeXt-Shapes (bundled, 8 classes)", "convnext",
                           CONVNEXT_LAYOUT, input_size=SHAPES_NET.input_size, num_classes=len(SHAPES_NET.classes),
                           build=build_shapes_convnext))
    return {spec.name: spec for spec in specs}


REGISTRY: dict[str, ModelSpec] = _build_registry()

ROADMAP_PREFIXES = {"roadmap": "resnet50", "roadmap200": "resnet200"}  # name prefix -> roadmap regime


def roadmap_prefix(regime: str) -> str:
    """The name prefix of a roadmap regime: "resnet200" -> "roadmap200"."""
    return next(prefix for prefix, named in ROADMAP_PREFIXES.items() if named == regime)


def model_names() -> list[str]:
    """Every name the registry knows: the library models, the bundled one, then every roadmap step."""
    from explorer.roadmap import step_ids  # imported here: the roadmap builds on this module

    return list(REGISTRY) + [f"{prefix}:{step}" for prefix, regime in ROADMAP_PREFIXES.items()
                             for step in step_ids(regime)]


def get_spec(name: str) -> ModelSpec:
    """The spec for a name, or UnknownModelError with the closest known names."""
    if name in REGISTRY:
        return REGISTRY[name]
    prefix, sep, step = name.partition(":")
    if sep and prefix in ROADMAP_PREFIXES:
        from explorer.roadmap import step_spec  # imported here: the roadmap builds on this module

        return step_spec(step, ROADMAP_PREFIXES[prefix])
    close = difflib.get_close_matches(name, model_names(), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(f"Unknown model '{name}'.{hint}")


def spatial_layout(name: str) -> StageLayout:
    """The layout of a model whose stages output feature maps; ViT's token sequences get a sentence."""
    spec = get_spec(name)
    if spec.layout.tokens:
        raise ExplorerError(f"{spec.label} turns the image into a sequence of tokens, not feature maps, so "
                            f"this view cannot draw its stages; pick a ConvNet, an isotropic ConvNeXt or Swin.")
    return spec.layout


def check_input_size(size: int) -> int:
    if not (MIN_INPUT <= size <= MAX_INPUT and size % INPUT_STEP == 0):
        raise ExplorerError(
            f"Input size {size} is not supported: use a multiple of {INPUT_STEP} between "
            f"{MIN_INPUT} and {MAX_INPUT} (the paper uses 224 and 384)."
        )
    return size


def build_model(name: str, input_size: int | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Build a model with random weights, in eval mode, on `device` ("meta" allocates nothing)."""
    spec = get_spec(name)
    size = check_input_size(input_size or spec.input_size)
    with torch.device(device):
        model = (spec.build or _timm_model)(spec, size)
    return model.eval()


def specs_by_family() -> dict[str, list[ModelSpec]]:
    """Every spec grouped by family, in registry order (for the model pickers)."""
    groups: dict[str, list[ModelSpec]] = {}
    for name in model_names():
        spec = get_spec(name)
        groups.setdefault(spec.family, []).append(spec)
    return groups
