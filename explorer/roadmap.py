"""The paper's roadmap as data: a ResNet modernized into a ConvNeXt one design decision at a time.

Each `Step` names the step it starts from (`base`) and the change it makes to that step's network
(`edits`, fields of `NetConfig`): one field, except where the paper's own row makes two changes
(ConvNeXt's separate downsampling comes with its layer scale; see also ResNet-200 below). The
`recipe` step changes only how the network is trained. `build_step` turns any step into a model.
The kernel sizes 5, 7, 9 and 11 are a sweep, each from `move_dw`; the paper keeps 7, so `gelu`
starts from `kernel7`.

Two regimes run the same steps (paper, Section 2 and Appendix C):
- "resnet50": ResNet-50 -> ConvNeXt-T, compared with Swin-T (Fig. 2, Table 10).
- "resnet200": ResNet-200 -> ConvNeXt-B, compared with Swin-B (Table 11). Step ids are the same, so
  `convnext_t` is ConvNeXt-B and `swin_t` is Swin-B here. The appendix differs in two steps: the
  stage-ratio step goes from (3, 24, 36, 3) to Swin-B's (3, 3, 27, 3) blocks and, in the same row,
  widens C from 64 to 84 to keep the FLOPs; the width step then widens C to 128, Swin-B's.
  Its top-1 and GFLOPs figures are Table 11 of arXiv:2201.03545v2 (Appendix C), as printed; the
  counted GFLOPs of every step round to them. The table quotes ResNet-200's accuracy from He et al.
  (its reference [29]); its 15.01 GFLOPs are those of the torchvision-style (v1.5) design that timm's
  resnet200 builds, and the roadmap starts from that design.

The zoo knows the steps as `roadmap:STEP` and `roadmap200:STEP` (`zoo.ROADMAP_PREFIXES`) and asks
`step_spec` for their specs.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import torch
from torch import Tensor, nn

from explorer.analysis import Summary, summarize, summarize_model
from explorer.blocks import Net, NetConfig
from explorer.figure_cache import persisted
from explorer.zoo import ExplorerError, ModelSpec, StageLayout, UnknownModelError, get_spec, roadmap_prefix

FAMILY = "Roadmap"
LAYOUT = StageLayout(stem=("stem",), stages=tuple(f"stages.{i}" for i in range(4)), blocks="blocks",
                     head=("head",))


@dataclass(frozen=True)
class Step:
    """One step of the roadmap."""

    id: str
    title: str
    section: str  # the paper's heading: baseline, training, macro design, ResNeXt-ify, inverted
    #               bottleneck, large kernel, micro design; "reference" for the Swin it is measured against
    change: str  # what changed, in one sentence
    why: str  # why the paper tries it, for a learner
    base: str | None  # the step whose network this one changes; None for the start and the reference
    edits: dict[str, Any] = field(default_factory=dict, hash=False)  # the change: NetConfig field -> value
    config: NetConfig | None = None  # the network; None for the reference, which is timm's
    paper_top1: float | None = None  # ImageNet-1K top-1 (%) as the paper prints it
    paper_gflops: float | None = None  # GFLOPs as the paper prints it
    note: str | None = None  # why the paper's GFLOPs differ from the count, where they do


# The ResNet-50 regime. The texts are the same in both regimes unless `Regime.overrides` says otherwise.
_STEPS = (
    Step("resnet50", "ResNet-50", "baseline",
         "The starting point: torchvision's ResNet-50 (v1.5, stride in the 3x3 conv), trained for 90 "
         "epochs with SGD.",
         "ResNet is the ConvNet that defined the 2010s, and the paper modernizes it rather than inventing "
         "something new. Each later step changes one design decision, so that every gain or loss can be "
         "traced to that decision.",
         None),
    Step("recipe", "enhanced training recipe", "training",
         "The same network, trained like a vision Transformer: 300 epochs, AdamW, Mixup, CutMix, "
         "RandAugment, Random Erasing, stochastic depth and label smoothing.",
         "Part of the gap between Transformers and ConvNets was never about architecture: the Transformers "
         "were simply trained with a better recipe. Training the unchanged ResNet the same way closes a "
         "large part of the gap, and every later step uses this recipe so that only the architecture "
         "differs.",
         "resnet50", {"recipe": "modern"}),
    Step("stage_ratio", "stage ratio", "macro design",
         "Blocks per stage go from (3, 4, 6, 3) to (3, 3, 9, 3), Swin-T's 1:1:3:1 ratio.",
         "How the blocks are spread over the four resolutions was chosen by hand for ResNet years ago. Swin "
         "puts most of them in the third stage, at 1/16 of the input resolution; copying its ratio "
         "costs a little compute and improves accuracy.",
         "recipe", {"depths": (3, 3, 9, 3)}),
    Step("patchify", "patchify stem", "macro design",
         "The stem's 7x7 stride-2 conv and max pool become one 4x4 stride-4 conv: non-overlapping patches, "
         "as in Swin.",
         "Both stems shrink the image to 1/4 of its side before the first stage. A vision Transformer does "
         "this by cutting the image into patches, and a 4x4 conv with stride 4 is exactly that: simpler, a "
         "little cheaper, and as accurate.",
         "stage_ratio", {"stem": "patchify"}),
    Step("depthwise", "depthwise conv", "ResNeXt-ify",
         "The 3x3 conv of each bottleneck becomes depthwise, one 3x3 filter per channel (groups = channels).",
         "ResNeXt's rule is 'more groups, more width'; a depthwise conv is the extreme, one group per "
         "channel. Like self-attention's weighted sum, it mixes information across space only, while the "
         "1x1 convs mix the channels. It saves about half the FLOPs and costs accuracy; the next step spends "
         "the savings.",
         "patchify", {"depthwise": True}),
    Step("width", "increase width", "ResNeXt-ify",
         "The width C of stage 1 goes from 64 to 96, Swin-T's (stages 96/192/384/768, the stem outputs 96).",
         "Depthwise convs made the network much cheaper, so it can afford more channels. Matching Swin's "
         "widths brings the FLOPs back above the start and gives the largest architectural gain so far.",
         "depthwise", {"width": 96}),
    Step("inverted", "inverted bottleneck", "inverted bottleneck",
         "Each block is inverted: 1x1 C -> 4C, depthwise 3x3 on 4C, 1x1 4C -> C.",
         "A Transformer's MLP block is four times wider inside than outside, the opposite of ResNet's "
         "bottleneck, which is narrow inside; MobileNetV2 found the same shape for ConvNets. The shortcut "
         "now carries C channels instead of 4C, so the strided 1x1 shortcut convs get cheaper: fewer FLOPs, "
         "and higher accuracy.",
         "width", {"inverted": True}),
    Step("move_dw", "move up depthwise conv", "large kernel",
         "The depthwise conv moves to the top of the block: depthwise 3x3 on C, then 1x1 C -> 4C and "
         "1x1 4C -> C.",
         "In a Transformer block the spatial mixing (attention) comes before the MLP. Moving the depthwise "
         "conv up does the same and runs it on C channels instead of 4C, which is what makes large kernels "
         "affordable. On its own it costs accuracy.",
         "inverted", {"dw_first": True}),
    Step("kernel5", "kernel size 5", "large kernel",
         "The depthwise kernel grows from 3x3 to 5x5.",
         "Swin's attention sees a 7x7 window, a 3x3 conv far less. Now that the depthwise conv runs on C "
         "channels, larger kernels add few FLOPs. The paper tries 5, 7, 9 and 11, each from the 3x3 network.",
         "move_dw", {"kernel_size": 5}),
    Step("kernel7", "kernel size 7", "large kernel",
         "The depthwise kernel grows from 3x3 to 7x7, the size the roadmap keeps.",
         "7x7 is Swin's window size, and around it the sweep's gains level off. The FLOPs barely grow, and "
         "every later step starts from this network.",
         "move_dw", {"kernel_size": 7}),
    Step("kernel9", "kernel size 9", "large kernel",
         "The depthwise kernel grows from 3x3 to 9x9 (a point of the sweep, not kept).",
         "Beyond 7x7 a larger kernel no longer helps: accuracy stays flat while the FLOPs grow. The roadmap "
         "goes on from kernel size 7.",
         "move_dw", {"kernel_size": 9}),
    Step("kernel11", "kernel size 11", "large kernel",
         "The depthwise kernel grows from 3x3 to 11x11 (a point of the sweep, not kept).",
         "At 11x11 accuracy is lower than at 7x7: the benefit of larger kernels has saturated. The roadmap "
         "goes on from kernel size 7.",
         "move_dw", {"kernel_size": 11}),
    Step("gelu", "ReLU -> GELU", "micro design",
         "Every ReLU becomes a GELU.",
         "GELU, a smooth version of ReLU, is the activation of BERT, GPT-2 and ViT. Swapping it in changes "
         "no FLOPs and barely the accuracy; it is kept to match Transformers.",
         "kernel7", {"act": "gelu"}),
    Step("fewer_act", "fewer activations", "micro design",
         "Only one GELU is left in each block, between the two 1x1 layers.",
         "A ResNet block has an activation after nearly every layer; a Transformer block has one, inside its "
         "MLP. Removing all but the one between the two 1x1 layers copies that, and is one of the largest "
         "gains of the whole roadmap.",
         "gelu", {"acts": 1}),
    Step("fewer_norm", "fewer norms", "micro design",
         "Only one BatchNorm is left in each block, after the depthwise conv.",
         "Transformers normalize once before the MLP, not after every layer. Keeping only the norm after "
         "the depthwise conv, right before the 1x1 layers, improves accuracy again.",
         "fewer_act", {"norms": 1}),
    Step("ln", "BN -> LN", "micro design",
         "BatchNorm becomes LayerNorm, which normalizes the channels of each position on its own.",
         "BatchNorm depends on the other images of the batch and behaves differently in training and "
         "inference; LayerNorm, the norm of Transformers, does neither. In the original ResNet the swap "
         "hurts, but in this modernized network it trains well and is slightly better.",
         "fewer_norm", {"norm": "ln"}),
    Step("convnext_t", "separate downsampling (ConvNeXt-T)", "micro design",
         "Downsampling leaves the blocks for separate layers, a LayerNorm and a 2x2 stride-2 conv between "
         "stages, with LayerNorms after the stem and after global pooling; every block gets a layer scale "
         "gamma.",
         "ResNet downsamples inside the first block of a stage, Swin with separate layers between stages. "
         "Separate 2x2 stride-2 convs alone made training diverge; a LayerNorm wherever the resolution "
         "changes keeps it stable. The result is ConvNeXt, which beats the Swin Transformer of the same "
         "size with convolutions only.",
         "ln", {"downsample": "separate", "layer_scale": 1e-6}),
    Step("swin_t", "Swin-T (reference)", "reference",
         "Not a step: Swin-T, the hierarchical vision Transformer the roadmap is measured against.",
         "Swin-T costs about as much as ResNet-50 and ConvNeXt-T. Its accuracy is the line every step "
         "tries to cross.",
         None),
)


@dataclass(frozen=True)
class Regime:
    """One run of the roadmap: where it starts, what it is compared with, what the paper prints."""

    name: str  # "resnet50" | "resnet200"
    label: str  # start of the zoo labels: "Roadmap 10: kernel size 7" (steps count from 1)
    start: NetConfig  # the first step's network
    reference: str  # timm name of the Swin Transformer it is compared with
    paper: dict[str, tuple[float, float]]  # step id -> (top-1, GFLOPs) as printed
    notes: dict[str, str] = field(default_factory=dict)  # step id -> why the paper's GFLOPs differ
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> Step fields unlike _STEPS


RESNET50 = Regime(
    name="resnet50",
    label="Roadmap",
    start=NetConfig(),
    reference="swin_tiny_patch4_window7_224",
    paper={  # Fig. 2 and Table 10 (top-1 averaged over three seeds)
        "resnet50": (76.13, 4.09), "recipe": (78.82, 4.09), "stage_ratio": (79.36, 4.53),
        "patchify": (79.51, 4.42), "depthwise": (78.28, 2.35), "width": (80.50, 5.27),
        "inverted": (80.64, 4.64), "move_dw": (79.92, 4.07), "kernel5": (80.35, 4.10),
        "kernel7": (80.57, 4.15), "kernel9": (80.57, 4.21), "kernel11": (80.47, 4.29),
        "gelu": (80.62, 4.15), "fewer_act": (81.27, 4.15), "fewer_norm": (81.41, 4.15),
        "ln": (81.47, 4.46), "convnext_t": (81.97, 4.49), "swin_t": (81.30, 4.50),
    },
    notes={
        "ln": "The paper prints 4.46 GFLOPs, but swapping a norm changes no multiply-accumulate: counted, "
              "this network has 4.146 GFLOPs, like the three steps before it. No counting rule that also "
              "gives ResNet-50 its 4.09 reaches 4.46, so this is most likely a slip in the paper's table; "
              "its ResNet-200 table keeps the FLOPs unchanged at the same step (14.81).",
        "convnext_t": "The paper prints 4.49 GFLOPs here but 4.5 for ConvNeXt-T in Table 1; counted, "
                      "this network (the same as timm's and the official convnext_tiny) has 4.456. In the "
                      "count the downsampling layers add 0.31 GFLOPs at this step; the paper's table puts "
                      "a rise of 0.31 one row earlier, at BN -> LN, where no FLOPs change, and another "
                      "0.03 here.",
    },
)

RESNET200 = Regime(
    name="resnet200",
    label="Roadmap (ResNet-200)",
    start=NetConfig(depths=(3, 24, 36, 3)),
    reference="swin_base_patch4_window7_224",
    paper={  # Table 11 (Appendix C), one run each
        "resnet50": (78.20, 15.01), "recipe": (81.14, 15.01), "stage_ratio": (81.33, 14.52),
        "patchify": (81.59, 14.38), "depthwise": (80.54, 7.23), "width": (81.85, 16.76),
        "inverted": (82.64, 15.68), "move_dw": (82.04, 14.63), "kernel5": (82.32, 14.70),
        "kernel7": (82.30, 14.81), "kernel9": (82.27, 14.95), "kernel11": (82.18, 15.13),
        "gelu": (82.19, 14.81), "fewer_act": (82.71, 14.81), "fewer_norm": (83.17, 14.81),
        "ln": (83.35, 14.81), "convnext_t": (83.60, 15.35), "swin_t": (83.50, 15.43),
    },
    overrides={
        "resnet50": dict(
            title="ResNet-200",
            change="The starting point: ResNet-200, the design of ResNet-50 with (3, 24, 36, 3) blocks per "
                   "stage instead of (3, 4, 6, 3), with the accuracy He et al. report for it."),
        "stage_ratio": dict(
            title="stage ratio and width",
            change="Blocks per stage go from (3, 24, 36, 3) to Swin-B's (3, 3, 27, 3), and the width C from "
                   "64 to 84 to keep the FLOPs.",
            why="How the blocks are spread over the four resolutions was chosen by hand for ResNet years "
                "ago. Swin puts most of them in the third stage; copying Swin-B's ratio cuts the blocks "
                "from 66 to 36, so the paper widens the network in the same step to keep its FLOPs.",
            edits={"depths": (3, 3, 27, 3), "width": 84}),
        "width": dict(
            change="The width C of stage 1 goes from 84 to 128, Swin-B's (stages 128/256/512/1024).",
            edits={"width": 128}),
        "convnext_t": dict(title="separate downsampling (ConvNeXt-B)"),
        "swin_t": dict(
            title="Swin-B (reference)",
            change="Not a step: Swin-B, the hierarchical vision Transformer this regime is measured against.",
            why="Swin-B costs about as much as ResNet-200 and ConvNeXt-B. Its accuracy is the line every "
                "step tries to cross."),
    },
)

REGIMES = {regime.name: regime for regime in (RESNET50, RESNET200)}


def _regime(name: str) -> Regime:
    if name not in REGIMES:
        raise ExplorerError(f"Unknown regime '{name}': use one of {', '.join(REGIMES)}.")
    return REGIMES[name]


@cache
def _steps(regime: str) -> tuple[Step, ...]:
    r = _regime(regime)
    done: dict[str, Step] = {}
    for row in _STEPS:
        step = replace(row, **r.overrides.get(row.id, {}))
        config = None
        if step.section != "reference":
            config = replace(done[step.base].config if step.base else r.start, **step.edits)
        top1, gflops = r.paper[step.id]
        done[step.id] = replace(step, config=config, paper_top1=top1, paper_gflops=gflops,
                                note=r.notes.get(step.id))
    return tuple(done.values())


def steps(regime: str = "resnet50") -> list[Step]:
    """Every step of a regime, in the paper's order, the reference last."""
    return list(_steps(regime))


def get_step(step_id: str, regime: str = "resnet50") -> Step:
    """One step, or UnknownModelError naming the closest step ids."""
    ids = [step.id for step in _steps(regime)]
    if step_id in ids:
        return _steps(regime)[ids.index(step_id)]
    close = difflib.get_close_matches(step_id, ids, n=3, cutoff=0.4)
    hint = f"Did you mean {', '.join(close)}?" if close else f"The steps are {', '.join(ids)}."
    raise UnknownModelError(f"Unknown roadmap step '{step_id}'. {hint}")


def build_step(step_id: str, regime: str = "resnet50") -> nn.Module:
    """The network of a step with random weights, in eval mode, on the current default device."""
    step = get_step(step_id, regime)
    if step.config is None:
        import timm  # imported here: importing timm costs a second, and nothing runs at import time

        return timm.create_model(_regime(regime).reference, pretrained=False).eval()
    return Net(step.config).eval()


@persisted
def what_if(step_id: str, field_name: str, value: Any, regime: str = "resnet50") -> Summary:
    """A step's network with one `NetConfig` field changed, summarized at the step's input size.

    What the lessons' sliders ask: "the depthwise network, but with C = 112", "kernel size 9".
    """
    step = get_step(step_id, regime)
    if step.config is None or not hasattr(step.config, field_name):
        raise ExplorerError(f"Step {step_id!r} has no setting {field_name!r} to change.")
    name = step_name(step_id, regime)
    with torch.device("meta"):
        model = Net(replace(step.config, **{field_name: value}))
    return summarize_model(model, get_spec(name), get_spec(name).input_size)


def step_name(step_id: str, regime: str = "resnet50") -> str:
    """The zoo name of a step: `roadmap:kernel7`, `roadmap200:kernel7`."""
    return f"{roadmap_prefix(_regime(regime).name)}:{step_id}"


def roadmap_table(regime: str = "resnet50") -> list[dict]:
    """One row per step: parameters and GFLOPs counted at 224 on the meta device, beside the paper's."""
    rows = []
    for step in _steps(regime):
        summary = summarize(step_name(step.id, regime))
        rows.append({"id": step.id, "title": step.title, "section": step.section,
                     "params": summary.params, "gflops": summary.gflops,
                     "paper_gflops": step.paper_gflops, "paper_top1": step.paper_top1})
    return rows


# timm's module names -> the roadmap's: (regular expression, replacement), applied in order.
TIMM_RESNET_NAMES = (
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.norm."),
    (r"^layer1\.", "stages.0.blocks."),
    (r"^layer2\.", "stages.1.blocks."),
    (r"^layer3\.", "stages.2.blocks."),
    (r"^layer4\.", "stages.3.blocks."),
    (r"^fc\.", "head.fc."),
    (r"\.conv1\.", ".pwconv1."),
    (r"\.bn1\.", ".norm1."),
    (r"\.conv2\.", ".conv."),
    (r"\.bn2\.", ".norm2."),
    (r"\.conv3\.", ".pwconv2."),
    (r"\.bn3\.", ".norm3."),
    (r"\.downsample\.0\.", ".shortcut.conv."),
    (r"\.downsample\.1\.", ".shortcut.norm."),
)
TIMM_CONVNEXT_NAMES = (
    (r"^stem\.0\.", "stem.conv."),
    (r"^stem\.1\.", "stem.norm."),
    (r"\.downsample\.0\.", ".downsample.norm."),
    (r"\.downsample\.1\.", ".downsample.conv."),
    (r"\.conv_dw\.", ".dwconv."),
    (r"\.mlp\.fc1\.", ".pwconv1."),
    (r"\.mlp\.fc2\.", ".pwconv2."),
)

# facebookresearch's official ConvNeXt names -> the roadmap's (the head before the final norm, so
# that the renamed "head.norm." is not renamed again).
OFFICIAL_CONVNEXT_NAMES = (
    (r"^downsample_layers\.0\.0\.", "stem.conv."),
    (r"^downsample_layers\.0\.1\.", "stem.norm."),
    (r"^downsample_layers\.(\d+)\.0\.", r"stages.\1.downsample.norm."),
    (r"^downsample_layers\.(\d+)\.1\.", r"stages.\1.downsample.conv."),
    (r"^stages\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
    (r"^head\.", "head.fc."),
    (r"^norm\.", "head.norm."),
)


def _renamed(state_dict: dict[str, Tensor], names: tuple[tuple[str, str], ...]) -> dict[str, Tensor]:
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in names:
            key = re.sub(pattern, replacement, key)
        renamed[key] = value
    return renamed


def resnet_from_timm(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A timm resnet50 (resnet200) state dict, named as `roadmap:resnet50` (`roadmap200:resnet50`)."""
    return _renamed(state_dict, TIMM_RESNET_NAMES)


def convnext_from_timm(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A timm convnext_tiny (convnext_base) state dict, named as `roadmap:convnext_t` (`roadmap200:...`)."""
    return _renamed(state_dict, TIMM_CONVNEXT_NAMES)


def convnext_from_official(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """An official ConvNeXt-T (-B) state dict, named as `roadmap:convnext_t` (`roadmap200:...`)."""
    return _renamed(state_dict, OFFICIAL_CONVNEXT_NAMES)


def step_ids(regime: str = "resnet50") -> list[str]:
    """The ids of a regime's steps, in the paper's order."""
    return [step.id for step in _steps(regime)]


def _build_step_model(spec: ModelSpec, input_size: int) -> nn.Module:
    return build_step(spec.step, spec.regime)


@cache
def step_spec(step_id: str, regime: str = "resnet50") -> ModelSpec:
    """The zoo's spec of a step (`roadmap:STEP`, `roadmap200:STEP`), with the paper's figure for it."""
    step = get_step(step_id, regime)
    name = step_name(step.id, regime)
    label = f"{_regime(regime).label} {step_ids(regime).index(step.id) + 1}: {step.title}"
    roadmap = dict(name=name, family=FAMILY, label=label, step=step.id, regime=regime,
                   paper_gflops=step.paper_gflops, paper_note=step.note or "")
    if step.config is None:  # the reference is the zoo's Swin under a roadmap name
        return replace(get_spec(_regime(regime).reference), **roadmap)
    return ModelSpec(arch="roadmap", layout=LAYOUT, build=_build_step_model, **roadmap)
