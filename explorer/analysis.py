"""Model -> per-stage rows: output shape, blocks, parameters, GFLOPs and activation memory.

Everything runs on the meta device: shapes and operation counts only, no weights allocated, so even
ConvNeXt-XL at 384 (350M parameters) is summarized in well under a second.

GFLOPs follow the paper's convention: multiply-accumulates of convolutions, linear layers and
matmuls, in billions. `torch.utils.flop_counter.FlopCounterMode` counts exactly those operations at
two FLOPs per multiply-accumulate, so paper GFLOPs = counted FLOPs / 2e9.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.figure_cache import persisted
from explorer.zoo import ModelSpec, StageLayout, build_model, get_spec

FP32_BYTES = 4


@dataclass(frozen=True)
class StageRow:
    """One row of an architecture summary."""

    name: str  # "stem", "stage 1" .. "stage 4" (isotropic networks: "blocks 1-6", ...), "head"
    output_shape: tuple[int, ...]  # (N, C, H, W) for the stem and stages ((N, tokens, C) in ViT), (N, classes)
    #                                for the head
    blocks: int  # blocks in a stage; 0 for the stem and head
    params: int
    gflops: float  # paper convention: multiply-accumulates / 1e9
    activation_bytes: int  # size of this row's output at fp32, batch 1


@dataclass(frozen=True)
class Summary:
    model: str
    label: str
    input_size: int
    params: int
    gflops: float
    stages: tuple[StageRow, ...]

    def to_json(self) -> dict:
        return asdict(self)


def paper_gflops(flops: int) -> float:
    """FlopCounterMode counts 2 FLOPs per multiply-accumulate; the paper counts the MACs."""
    return flops / 2e9


def _dry_run(model: nn.Module, input_size: int) -> torch.Tensor:
    """One forward pass of an empty batch-1 image on the model's device (meta: shapes only)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(torch.empty(1, 3, input_size, input_size, device=device))


def _params_under(model: nn.Module, prefixes: tuple[str, ...]) -> int:
    return sum(p.numel() for name, p in model.named_parameters()
               if any(name == pre or name.startswith(pre + ".") for pre in prefixes))


def _row_modules(model: nn.Module, layout: StageLayout) -> list[tuple[str, tuple[str, ...], int]]:
    """(row name, module names, blocks) for the stem, each stage (or, in an isotropic network, each
    group of blocks) and the head, in forward order."""
    def blocks_of(stage: str) -> nn.Module:
        return model.get_submodule(f"{stage}.{layout.blocks}" if layout.blocks else stage)

    rows = [("stem", layout.stem, 0)]
    if layout.groups:
        container = layout.stages[0]
        size = len(blocks_of(container)) // layout.groups
        for start in range(0, size * layout.groups, size):
            rows.append((f"blocks {start + 1}-{start + size}",
                         tuple(f"{container}.{i}" for i in range(start, start + size)), size))
    else:
        rows += [(f"stage {i + 1}", (stage,), len(blocks_of(stage))) for i, stage in enumerate(layout.stages)]
    return rows + [("head", layout.head, 0)]


def _as_nchw(shape: tuple[int, ...], layout: StageLayout) -> tuple[int, ...]:
    if layout.channels_last and len(shape) == 4:
        n, h, w, c = shape
        return (n, c, h, w)
    return shape


def summarize_model(model: nn.Module, spec: ModelSpec, input_size: int) -> Summary:
    """Per-stage rows of an already built model (any device; meta is fastest)."""
    layout = spec.layout
    modules = dict(model.named_modules())
    rows = _row_modules(model, layout)
    counter = FlopCounterMode(display=False)
    ends: dict[str, tuple[tuple[int, ...], int]] = {}  # row -> (output shape, FLOPs counted so far)

    def record(row: str):
        def hook(_module, _inputs, output):
            ends[row] = (tuple(output.shape), counter.get_total_flops())
        return hook

    # A row ends where its last module returns; the head ends with the model's output.
    handles = [modules[names[-1]].register_forward_hook(record(row)) for row, names, _blocks in rows[:-1]]
    try:
        with counter:
            logits = _dry_run(model, input_size)
    finally:
        for handle in handles:
            handle.remove()
    ends["head"] = (tuple(logits.shape), counter.get_total_flops())

    stage_rows, flops_before = [], 0
    for row, names, blocks in rows:
        shape, flops_after = ends[row]
        shape = _as_nchw(shape, layout)
        numel = 1
        for dim in shape:
            numel *= dim
        stage_rows.append(StageRow(
            name=row,
            output_shape=shape,
            blocks=blocks,
            params=_params_under(model, names),
            gflops=paper_gflops(flops_after - flops_before),
            activation_bytes=numel * FP32_BYTES,
        ))
        flops_before = flops_after

    return Summary(
        model=spec.name,
        label=spec.label,
        input_size=input_size,
        params=sum(p.numel() for p in model.parameters()),
        gflops=paper_gflops(flops_before),
        stages=tuple(stage_rows),
    )


def summarize(name: str, input_size: int | None = None) -> Summary:
    """Build `name` on the meta device and summarize it (counted once: `explorer.figure_cache`)."""
    return count_summary(name, input_size or get_spec(name).input_size)


@persisted
def count_summary(name: str, input_size: int) -> Summary:
    spec = get_spec(name)
    return summarize_model(build_model(name, input_size, device="meta"), spec, input_size)


@dataclass(frozen=True)
class LayerRow:
    """One layer inside a block, in the order the forward pass runs it."""

    name: str  # path inside the block, e.g. "dwconv" or "mlp.fc1"
    kind: str  # "conv", "linear", "norm", "act", "attention", "scale" (layer scale) or "other"
    detail: str  # e.g. "7x7 depthwise, 96 -> 96"
    output_shape: tuple[int, ...]
    params: int


_SKIPPED = ("Identity", "DropPath", "Dropout")


def _kind(module: nn.Module) -> str:
    kind = type(module).__name__
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if "Norm" in kind:
        return "norm"
    if kind == "LayerScale":  # timm's per-channel scale of a residual branch
        return "scale"
    if kind in ("ReLU", "GELU", "SiLU", "Softmax"):
        return "act"
    return "attention" if "Attention" in kind else "other"


def _detail(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k, groups = module.kernel_size[0], module.groups
        grouping = " depthwise" if groups == module.in_channels > 1 else (f" groups {groups}" if groups > 1 else "")
        stride = f", stride {module.stride[0]}" if module.stride[0] > 1 else ""
        return f"{k}x{k}{grouping}, {module.in_channels} -> {module.out_channels}{stride}"
    if isinstance(module, nn.Linear):
        return f"{module.in_features} -> {module.out_features}"
    return type(module).__name__


def default_block(model: nn.Module, layout: StageLayout) -> str:
    """The module name of a typical block: the second of stage 1 (no downsampling in it)."""
    stage = model.get_submodule(layout.stages[0])
    blocks = getattr(stage, layout.blocks) if layout.blocks else stage
    container = f"{layout.stages[0]}.{layout.blocks}" if layout.blocks else layout.stages[0]
    return f"{container}.{min(1, len(blocks) - 1)}"


def _layers(root: nn.Module):
    """Leaf modules in forward-definition order, with attention modules kept whole (their matmuls
    are not modules)."""
    attention: list[str] = []
    for name, module in root.named_modules():  # parents come before their children
        if not name or type(module).__name__ in _SKIPPED or any(name.startswith(a + ".") for a in attention):
            continue
        if _kind(module) == "attention":
            attention.append(name)
            yield name, module
        elif not list(module.children()):
            yield name, module


# What a layer does to the tensor, whatever its module class: a ResNet 1x1 Conv2d and a ConvNeXt Linear
# both mix channels at each position; a 7x7 depthwise conv and attention both mix positions.
OPERATIONS = ("spatial mixing", "channel mixing", "norm", "activation", "layer scale", "layout")
COMPUTING = OPERATIONS[:4]  # the layers a block's layer count counts: layer scale and permutes are not


def operation(layer: LayerRow) -> str:
    """The operation kind of one layer (one of OPERATIONS)."""
    if layer.kind == "conv":
        return "channel mixing" if layer.detail.startswith("1x1") else "spatial mixing"
    if layer.kind == "attention":
        return "spatial mixing"
    if layer.kind == "linear":
        return "channel mixing"
    if layer.kind == "norm":
        return "norm"
    if layer.kind == "act":
        return "activation"
    return "layer scale" if layer.kind == "scale" else "layout"


def computing_layers(layers: list[LayerRow] | tuple[LayerRow, ...]) -> int:
    """How many layers mix, normalize or activate (layer scale and layout permutes not counted)."""
    return sum(operation(layer) in COMPUTING for layer in layers)


def of_kind(layers: list[LayerRow] | tuple[LayerRow, ...], kind: str) -> tuple[str, ...]:
    """What the layers of one kind are, in forward order: of_kind(rows, "norm") -> ("LayerNorm",)."""
    return tuple(layer.detail for layer in layers if layer.kind == kind)


def trace_layers(root: nn.Module, forward: Callable[[], object]) -> list[LayerRow]:
    """The layers under `root` with their output shapes, recorded while `forward()` runs."""
    rows: list[LayerRow] = []

    def record(name: str):
        def hook(module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            rows.append(LayerRow(name, _kind(module), _detail(module), tuple(out.shape),
                                 sum(p.numel() for p in module.parameters())))
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in _layers(root)]
    try:
        with torch.no_grad():
            forward()
    finally:
        for handle in handles:
            handle.remove()
    gamma = getattr(root, "gamma", None)  # layer scale held as a parameter of the block, not as a module
    if isinstance(gamma, nn.Parameter) and rows:
        rows.append(LayerRow("gamma", "scale", f"layer scale, {gamma.numel()} channels", rows[-1].output_shape,
                             gamma.numel()))
    return rows


def trace_block(model: nn.Module, block: str, input_size: int) -> list[LayerRow]:
    """The layers of one block with their output shapes, from a forward pass on the model's device."""
    return trace_layers(model.get_submodule(block), lambda: _dry_run(model, input_size))


@dataclass(frozen=True)
class TypicalBlock:
    """The layers of one block of a model, as `block_diagram` draws them."""

    model: str
    block: str  # its module name, e.g. "stages.0.blocks.1"
    input_size: int
    layers: tuple[LayerRow, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)


@persisted
def typical_block(name: str, stage: int = 1) -> TypicalBlock:
    """The second block of stage `stage` (from 1) of model `name` at its default input size, traced
    on the meta device."""
    spec = get_spec(name)
    model = build_model(name, spec.input_size, device="meta")
    first = default_block(model, spec.layout)
    block = first.replace(spec.layout.stages[0], spec.layout.stages[stage - 1], 1)
    return TypicalBlock(name, block, spec.input_size, tuple(trace_block(model, block, spec.input_size)))
