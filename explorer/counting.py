"""What each FLOP counter counts, per operator kind: why `torch.utils.flop_counter`, fvcore, ptflops,
thop and torchinfo give five different totals for one network.

Every tool is run for real, with its own rules, on a model with random weights (the count does not
depend on the weights), and its total is reported as the tool reports it: in billions of
multiply-accumulates (MACs) as that tool counts them. `torch.utils.flop_counter.FlopCounterMode`
reports FLOPs at two per multiply-accumulate; it is halved here, as the paper's tables are.

To split a tool's total by operator kind, its own rule tables are wrapped for the run: each rule still
computes what the tool would add, and the wrapper also notes which kind of operator the rule was for.
The split therefore adds up to the tool's total (the tests check it). Kinds are named from the
operator, function or module a rule is for (`kind_of`).

`torch.utils.flop_counter` runs on the meta device, as `explorer.analysis` does for the paper's
convention. The other tools need real tensors (fvcore traces with TorchScript, which the meta device
cannot run; ptflops' `pytorch` backend counts the meta run differently from a real one), so they run
one CPU forward pass each. That is why counting is refused above `MAX_CPU_GFLOPS`.

ptflops' `pytorch` backend replaces functions of `torch` and `torch.nn.functional` for the whole
process while it runs; its rules are wrapped so that calls from other threads (other requests of
the app) add nothing, and one count runs at a time (`_LOCK`).
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import io
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.zoo import ExplorerError, build_model, check_input_size, get_spec

KINDS = ("convolution", "linear", "attention_matmuls", "norms", "activations", "other")
KIND_LABELS = {
    "convolution": "convolutions",
    "linear": "linear layers",
    "attention_matmuls": "attention matmuls",
    "norms": "norms",
    "activations": "activations",
    "other": "other",
}
MAX_CPU_GFLOPS = 20.0  # paper GFLOPs; five tools run one CPU pass each (ConvNeXt-B at 224: 15.4, ~20 s on 2 cores)

# Which kind an operator, function or module is, from its lower-case name. First match wins.
_ACTIVATIONS = ("relu", "gelu", "silu", "elu", "softmax", "sigmoid", "tanh", "hardswish")
_LINEAR = ("linear", "addmm", "mm")


def kind_of(name: str) -> str:
    """The kind of an operator ('aten.convolution', 'aten::layer_norm'), a function ('gelu') or a
    module class ('LayerNorm2d', 'WindowAttention')."""
    word = name.lower().rpartition(".")[2].rpartition(":")[2]
    if word in ("bmm", "baddbmm", "matmul", "einsum") or "attention" in word:
        return "attention_matmuls"  # in these networks only attention multiplies two activations
    if "conv" in word:
        return "convolution"
    if word in _LINEAR or "linear" in word:
        return "linear"
    if "norm" in word:
        return "norms"
    if any(word.startswith(act) or word.endswith(act) for act in _ACTIVATIONS):
        return "activations"
    return "other"


@dataclass(frozen=True)
class Tool:
    """One FLOP counter and what it counts (the tests check each claim against its numbers)."""

    key: str  # JSON key
    label: str  # what a person reads
    kinds: tuple[str, ...]  # the kinds it can count on the registry's networks
    says: str  # what it counts, in a sentence


TOOLS = (
    Tool("flop_counter", "torch.utils.flop_counter (the paper's convention)", ("convolution", "linear", "attention_matmuls"),
         "Multiply-accumulates of convolutions, linear layers and attention's matmuls, without biases; no norms, "
         "activations, pooling or additions. It reports FLOPs, 2 per multiply-accumulate, halved here. Run on the "
         "meta device, where attention is plain matmuls; on a CPU tensor a fused attention kernel (ViT's) is not "
         "in its table and counts nothing."),
    Tool("fvcore", "fvcore", ("convolution", "linear", "attention_matmuls", "norms", "other"),
         "Multiply-accumulates of convolutions, linear layers and matmuls, without biases; 5 per element for "
         "LayerNorm, 2 per element for BatchNorm at inference, 1 per element of adaptive average pooling; no "
         "activations. Operators it has no rule for, such as the fused attention function, count nothing."),
    Tool("ptflops_pytorch", "ptflops, pytorch backend", KINDS,
         "Module rules: convolutions and Linear with their biases, 2 per element for nn.BatchNorm2d and 1 for "
         "nn.LayerNorm, of exactly those types (timm's LayerNorm subclasses count nothing), 1 per element for ReLU, "
         "GELU and pooling modules; plus the functions it patches, 1 per element or product: F.relu, F.gelu, "
         "pooling, softmax, torch.matmul, mul and add. A torch module that calls one of those functions counts "
         "twice (nn.ReLU, nn.GELU, nn.MaxPool2d). Matmuls written as a @ b (Swin's attention) and the fused "
         "attention function count nothing, and a module with its own rule hides its children: under timm's ViT "
         "Attention rule the qkv and output projections count nothing."),
    Tool("ptflops_aten", "ptflops, aten backend", ("convolution", "linear", "attention_matmuls"),
         "Multiply-accumulates of the aten convolution, mm, addmm and bmm operators, with the bias adds; no "
         "norms or activations. A fused attention kernel (ViT's, on the CPU) is not in its table."),
    Tool("thop", "thop (ultralytics-thop)", ("convolution", "linear", "attention_matmuls", "norms", "activations",
                                             "other"),
         "Multiply-accumulates of convolutions and linear layers without biases, and of matmuls and the fused "
         "attention function called outside them; 4 per element for norms with a scale and shift (subclasses "
         "too), softmax as 3 per element, average pooling; ReLU and GELU count nothing."),
    Tool("torchinfo", "torchinfo", ("convolution", "linear", "norms"),
         "Parameters times output positions for convolutions (biases included); for every other layer with "
         "weights, its parameters times the output's first dimension: the batch, or the windows where Swin "
         "folds them into it. A Linear on a (N, H, W, C) or (N, tokens, C) tensor is counted once per image, "
         "not once per position, so the MLPs of ConvNeXt and the transformers almost vanish; attention's "
         "matmuls, which have no weights, count nothing."),
)


@dataclass(frozen=True)
class Count:
    """One tool's count of one model."""

    tool: str
    total: float  # billions of multiply-accumulates, as the tool counts them
    by_kind: dict[str, float]  # the same split by operator kind; adds up to `total`
    seconds: float


@dataclass(frozen=True)
class Counting:
    """Every tool's count of one model at one input size."""

    model: str
    label: str
    input_size: int
    paper: float | None  # the paper's printed GFLOPs, where it prints this model at this size
    counts: tuple[Count, ...]  # in the order of TOOLS
    flop_counter_cpu: float  # FlopCounterMode on a CPU tensor (fused attention not seen)

    def count(self, tool: str) -> Count:
        return next(c for c in self.counts if c.tool == tool)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "input_size": self.input_size,
            "paper": self.paper,
            "counters": {c.tool: c.total for c in self.counts},
            "by_kind": {c.tool: c.by_kind for c in self.counts},
        }


# --- the tools, each returning its count split by kind (raw units of the tool) ------------------------

Tally = Counter  # kind -> amount


def _dispatch_count(model: nn.Module, x: torch.Tensor) -> Tally:
    """FlopCounterMode: FLOPs per aten operator, halved to multiply-accumulates."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    tally = Tally()
    for op, flops in counter.get_flop_counts()["Global"].items():
        tally[kind_of(str(op))] += flops // 2
    return tally


def _fvcore(model: nn.Module, x: torch.Tensor) -> Tally:
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    tally = Tally()
    for op, flops in analysis.by_operator().items():
        tally[kind_of(op)] += flops
    return tally


@contextlib.contextmanager
def _wrapped(table: dict, wrap: Callable[[object, Callable], Callable]) -> Iterator[None]:
    """Replace every rule of a tool's table by wrap(key, rule) for the duration; restore it after."""
    saved = dict(table)
    table.update({key: wrap(key, rule) for key, rule in saved.items()})
    try:
        yield
    finally:
        table.update(saved)


def _returned(tally: Tally, only_thread: int | None = None) -> Callable[[object, Callable], Callable]:
    """For rules that return their count: note it under the kind of the rule's function or operator."""

    def wrap(key, rule):
        kind = kind_of(getattr(key, "__name__", str(key)))

        def counted(*args, **kwargs):
            if only_thread is not None and threading.get_ident() != only_thread:
                return 0  # another request's model ran a patched function meanwhile: not ours to count
            amount = rule(*args, **kwargs)
            tally[kind] += amount
            return amount

        return counted

    return wrap


def _ptflops_pytorch(model: nn.Module, x: torch.Tensor) -> Tally:
    from ptflops import get_model_complexity_info
    from ptflops import pytorch_ops

    own: dict[nn.Module, int] = {}  # module -> what its rule counted

    def module_rule(_type, rule):
        def counted(module, inputs, output):
            rule(module, inputs, output)
            own[module] = module.__flops__
        return counted

    functional = Tally()
    record = _returned(functional, only_thread=threading.get_ident())
    with _wrapped(pytorch_ops.FUNCTIONAL_MAPPING, record), _wrapped(pytorch_ops.TENSOR_OPS_MAPPING, record):
        total, _ = get_model_complexity_info(
            model, tuple(x.shape[1:]), print_per_layer_stat=False, as_strings=False, backend="pytorch",
            custom_modules_hooks={t: module_rule(t, rule) for t, rule in pytorch_ops.MODULES_MAPPING.items()},
            ost=io.StringIO())

    tally = Tally(functional)

    def visit(module: nn.Module) -> None:  # ptflops' own sum: a module with a rule stands for its subtree
        if type(module) in pytorch_ops.MODULES_MAPPING:
            tally[kind_of(type(module).__name__)] += own.get(module, 0)
        else:
            for child in module.children():
                visit(child)

    visit(model)
    _check_sum("ptflops_pytorch", tally, total)
    return tally


def _ptflops_aten(model: nn.Module, x: torch.Tensor) -> Tally:
    from ptflops import get_model_complexity_info
    from ptflops.aten_ops import ATEN_OPS_MAPPING

    tally = Tally()
    record = _returned(tally)
    total, _ = get_model_complexity_info(
        model, tuple(x.shape[1:]), print_per_layer_stat=False, as_strings=False, backend="aten",
        custom_modules_hooks={op: record(op, rule) for op, rule in ATEN_OPS_MAPPING.items()}, ost=io.StringIO())
    _check_sum("ptflops_aten", tally, total)
    return tally


def _thop(model: nn.Module, x: torch.Tensor) -> Tally:
    from thop.vision.basic_hooks import zero_ops

    thop_profile = importlib.import_module("thop.profile")  # the module; `thop.profile` is its function

    tally = Tally()

    def module_rule(module_type, rule):
        kind = kind_of(module_type.__name__)

        def counted(module, inputs, output):
            before = module.total_ops
            rule(module, inputs, output)
            tally[kind] += module.total_ops - before
        return counted

    rules = {t: module_rule(t, rule) for t, rule in thop_profile.register_hooks.items() if rule is not zero_ops}
    with _wrapped(thop_profile.functional_hooks, _returned(tally)):
        total, _ = thop_profile.profile(model, inputs=(x,), custom_ops=rules, verbose=False)
    _check_sum("thop", tally, total)
    return tally


def _torchinfo(model: nn.Module, x: torch.Tensor) -> Tally:
    import torchinfo

    stats = torchinfo.summary(model, input_data=x, verbose=0, device=x.device)
    tally = Tally()
    for layer in stats.summary_list:
        if layer.is_leaf_layer:  # the layers torchinfo adds up for its total
            tally[kind_of(layer.class_name)] += layer.macs
    _check_sum("torchinfo", tally, stats.total_mult_adds)
    return tally


def _check_sum(tool: str, tally: Tally, total: float) -> None:
    if abs(sum(tally.values()) - total) > 1e-6 * max(abs(total), 1):
        raise RuntimeError(f"{tool}: the split by kind ({sum(tally.values())}) does not add up to its total ({total})")


_REAL_TENSOR_TOOLS: dict[str, Callable[[nn.Module, torch.Tensor], Tally]] = {
    "fvcore": _fvcore,
    "ptflops_pytorch": _ptflops_pytorch,
    "ptflops_aten": _ptflops_aten,
    "thop": _thop,
    "torchinfo": _torchinfo,
}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The tools print and warn (tracer warnings, unsupported operators); none of it is for the reader.
    Python's warning filters are process-wide: another thread's warnings are hidden for that long too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _billions(tally: Tally) -> dict[str, float]:
    return {kind: tally.get(kind, 0) / 1e9 for kind in KINDS}


def _timed(tool: str, run: Callable[[], Tally]) -> Count:
    start = time.perf_counter()
    by_kind = _billions(run())
    return Count(tool, sum(by_kind.values()), by_kind, time.perf_counter() - start)


def _image(input_size: int, device: str | torch.device = "cpu") -> torch.Tensor:
    return torch.zeros(1, 3, input_size, input_size, device=device)


_LOCK = threading.Lock()


def count_model(model: nn.Module, input_size: int, meta_model: nn.Module | None = None, *, name: str = "",
                label: str = "", paper: float | None = None) -> Counting:
    """Run every tool on `model` (moved to the CPU, eval mode) with a batch-1 square image of `input_size`.

    `meta_model` is the same network on the meta device for `torch.utils.flop_counter`; without it a
    copy of `model` is moved there. The tools attach hooks and attributes: pass a model of your own.
    """
    meta_model = meta_model if meta_model is not None else copy.deepcopy(model).to("meta")
    return _count_all(lambda: model, meta_model, input_size, name, label, paper)


def _count_all(cpu_model: Callable[[], nn.Module], meta_model: nn.Module, input_size: int, name: str, label: str,
               paper: float | None) -> Counting:
    with _LOCK, _quiet():
        counts = [_timed("flop_counter", lambda: _dispatch_count(meta_model.eval(), _image(input_size, "meta")))]
        if counts[0].total > MAX_CPU_GFLOPS:
            raise ExplorerError(
                f"{label or name or 'This model'} at {input_size} is {counts[0].total:.1f} GFLOPs; counting runs five "
                f"tools on the CPU, one real forward pass each, so it stops at {MAX_CPU_GFLOPS:.0f} GFLOPs. "
                "Choose a smaller model or input size.")
        model = cpu_model().eval().cpu()
        x = _image(input_size)
        counts += [_timed(tool, lambda run=run: run(model, x)) for tool, run in _REAL_TENSOR_TOOLS.items()]
        on_cpu = sum(_billions(_dispatch_count(model, x)).values())
    return Counting(name, label, input_size, paper, tuple(counts), on_cpu)


def count(name: str, input_size: int | None = None) -> Counting:
    """Every tool's count of a registry model at `input_size` (default: the model's own), random weights."""
    spec = get_spec(name)
    return _count_registry(name, check_input_size(input_size or spec.input_size))


@lru_cache(maxsize=64)  # a Counting is a few hundred bytes; one costs seconds of CPU
def _count_registry(name: str, size: int) -> Counting:
    """The CPU model is built only under the limit, and fresh: the tools hook into it, so it is never the
    app's shared cached model."""
    from explorer.paper import figure_for

    spec = get_spec(name)
    figure = figure_for(spec, size)
    return _count_all(lambda: build_model(name, size), build_model(name, size, device="meta"), size, name, spec.label,
                      figure.gflops if figure else None)
