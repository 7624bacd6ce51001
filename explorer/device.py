"""Where and how a model runs: the device, the precision, the memory layout, torch.compile.

- `pick_device` takes what a person asked for ("auto", "cuda", "mps", "cpu") and returns a device
  that exists here: automatically CUDA, then Apple's MPS, then the CPU.
- `Precision` is fp32, TF32 (fp32 storage, tensor-core matmuls and convolutions with a 10-bit
  mantissa, what the paper's Table 12 used) or bf16 autocast.
- `runner` gives a model prepared for one `RunOptions` and one input shape: a copy on the device,
  in channels-last layout, compiled when asked, warmed up once; prepared models live in a small
  cache, so the costly compile happens once per model and shape.
- `timed` measures one call properly (CUDA events, or a synchronized wall clock elsewhere).
- `guard_memory` turns running out of memory into a `DeviceMemoryError` with a sentence, after
  giving the memory back, so the app keeps serving.

The source models (shared by `explorer.weights.load`) are never modified: the runner works on a copy.
"""
from __future__ import annotations

import copy
import enum
import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

from explorer.zoo import ExplorerError

AUTO = "auto"
DEVICE_KINDS = ("cuda", "mps", "cpu")  # the order `pick_device` tries when asked for "auto"
PREPARED_KEPT = 4  # bound of the prepared-model cache (DESIGN principle 6)
TF32_MIN_CAPABILITY = (8, 0)  # TF32 tensor cores arrived with Ampere (A100)
OUT_OF_MEMORY_MARKERS = ("out of memory", "DefaultCPUAllocator", "can't allocate memory")
# ^ how CUDA, MPS and the CPU allocator word an allocation failure that is not torch.OutOfMemoryError

T = TypeVar("T")


class DeviceError(ExplorerError):
    """A device or precision this machine does not have."""


class DeviceMemoryError(ExplorerError):
    """A run that does not fit in the device's memory; the message suggests a smaller batch."""


# --- the device ---------------------------------------------------------------------------------

def _has(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return kind == "cpu"


def available_devices() -> list[str]:
    """The kinds of device this machine has, best first (the CPU always)."""
    return [kind for kind in DEVICE_KINDS if _has(kind)]


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The device asked for ("cuda", "cuda:1", "mps", "cpu"), or the best one here for None/"auto"."""
    if requested is None or requested == AUTO:
        return torch.device(available_devices()[0])
    try:
        device = torch.device(requested)
    except RuntimeError as error:
        raise DeviceError(f"'{requested}' is not a device; choose {AUTO} or one of "
                          f"{', '.join(DEVICE_KINDS)}.") from error
    if device.type not in DEVICE_KINDS or not _has(device.type):
        raise DeviceError(f"This machine has no {device.type} device; choose {AUTO} or one of "
                          f"{', '.join(available_devices())}.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"There is no {device}: this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    return device


def device_label(device: torch.device) -> str:
    """What a person reads: "cuda (NVIDIA H100 80GB HBM3)", "mps", "cpu (2 threads)"."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished the work queued so far."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


# --- the precision ------------------------------------------------------------------------------

class Precision(str, enum.Enum):
    """How the arithmetic is done; the value is the command line's `--dtype`."""

    FP32 = "fp32"  # IEEE float32 everywhere, TF32 switched off
    TF32 = "tf32"  # float32 tensors, TF32 tensor cores for matmuls and convolutions (CUDA, Ampere+)
    BF16 = "bf16"  # bfloat16 autocast: matmuls and convolutions in bf16, norms and softmax in fp32

    @classmethod
    def parse(cls, value: str | Precision) -> Precision:
        try:
            return cls(value)
        except ValueError:
            raise DeviceError(f"Unknown precision '{value}'; choose one of "
                              f"{', '.join(p.value for p in cls)}.") from None


def default_precision(device: torch.device) -> Precision:
    """The paper's setting (TF32) where the device has it, else fp32."""
    return Precision.TF32 if _tf32_capable(device) else Precision.FP32


def _tf32_capable(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= TF32_MIN_CAPABILITY


def check_precision(precision: Precision, device: torch.device) -> None:
    """Refuse a precision the device cannot do, with a sentence that says what to choose instead."""
    if precision is Precision.TF32 and not _tf32_capable(device):
        raise DeviceError(f"TF32 needs an NVIDIA GPU of the Ampere generation or newer, and "
                          f"{device_label(device)} is not one; choose fp32 or bf16.")
    if precision is Precision.BF16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"{device_label(device)} cannot compute in bf16; choose fp32.")


def _tf32_switches() -> tuple:
    """The flags TF32 hangs on: cuDNN as a whole (read by Inductor), its convolutions, cuBLAS matmuls."""
    return torch.backends.cudnn, torch.backends.cudnn.conv, torch.backends.cuda.matmul


@contextmanager
def _cuda_flags(tf32: bool) -> Iterator[None]:
    """TF32 on or off and cuDNN's autotuner on, for the duration; the previous flags come back after."""
    switches = _tf32_switches()  # set one by one: cudnn.flags() would also reset them, the legacy way
    before, autotuned = [switch.fp32_precision for switch in switches], torch.backends.cudnn.benchmark
    for switch in switches:
        switch.fp32_precision = "tf32" if tf32 else "ieee"
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = autotuned
        for switch, value in zip(switches, before):
            switch.fp32_precision = value


@contextmanager
def precision_context(precision: Precision, device: torch.device) -> Iterator[None]:
    """Run the enclosed forward passes in `precision` on `device` (inference mode included)."""
    with torch.inference_mode():
        if device.type == "cuda":
            with _cuda_flags(precision is Precision.TF32), _autocast(precision, device):
                yield
        else:
            with _autocast(precision, device):
                yield


def _autocast(precision: Precision, device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision is Precision.BF16)


# --- the prepared model -------------------------------------------------------------------------

@dataclass(frozen=True)
class RunOptions:
    """How to run a model: timm's plain path is `RunOptions.plain(device)`."""

    device: torch.device
    precision: Precision = Precision.FP32
    channels_last: bool = True  # (N, H, W, C) in memory: what cuDNN's and oneDNN's fast kernels want
    compile: bool = False  # torch.compile (Inductor), once per model and input shape

    @classmethod
    def plain(cls, device: torch.device) -> RunOptions:
        """fp32, contiguous (N, C, H, W), eager: the model as timm builds it."""
        return cls(device, Precision.FP32, channels_last=False, compile=False)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def describe(self) -> str:
        parts = [self.precision.value, "channels-last" if self.channels_last else "contiguous"]
        return ", ".join(parts + (["compiled"] if self.compile else ["eager"]))


class Runner:
    """A model prepared for one RunOptions: `place` a batch on its device, then call it for the logits."""

    def __init__(self, model: nn.Module, options: RunOptions) -> None:
        self.model = model
        self.options = options

    def place(self, batch: torch.Tensor) -> torch.Tensor:
        """The batch on the device, in the runner's memory layout."""
        return batch.to(self.options.device, memory_format=self.options.memory_format)

    def __call__(self, placed: torch.Tensor) -> torch.Tensor:
        with precision_context(self.options.precision, self.options.device):
            return self.model(placed)


_PREPARED: OrderedDict[tuple, tuple[nn.Module, Runner]] = OrderedDict()
# ^ (id of the source model, options, input shape) -> (the source, kept so that its id stays its own;
#   its runner). The source's identity stands for the model's name and weights.
_PREPARED_LOCK = threading.RLock()  # one run at a time: runs share the device, and the TF32 flags


def _prepare(source: nn.Module, options: RunOptions, shape: tuple[int, ...]) -> Runner:
    keeps_source = options == RunOptions.plain(options.device) and options.device.type == "cpu"
    model = source if keeps_source else copy.deepcopy(source)  # `.to` below works in place
    model = model.to(options.device, memory_format=options.memory_format)
    if options.compile:
        model = torch.compile(model, dynamic=False)
    runner = Runner(model, options)
    runner(runner.place(torch.zeros(shape)))  # warm-up: compiles, autotunes cuDNN, fills caches
    synchronize(options.device)
    return runner


def runner(source: nn.Module, options: RunOptions, shape: tuple[int, ...]) -> Runner:
    """The source model prepared for `options` and input `shape`, warmed up; cached (a few at a time)."""
    check_precision(options.precision, options.device)
    key = (id(source), options, tuple(shape))
    with _PREPARED_LOCK:
        if key in _PREPARED:
            _PREPARED.move_to_end(key)
            return _PREPARED[key][1]
        prepared = _prepare(source, options, shape)
        _PREPARED[key] = (source, prepared)
        while len(_PREPARED) > PREPARED_KEPT:
            _PREPARED.popitem(last=False)
        return prepared


def exclusive() -> threading.RLock:
    """Hold this while running or timing a model: one run at a time on this process's devices."""
    return _PREPARED_LOCK


# --- timing and memory --------------------------------------------------------------------------

def timed(call: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """The result of `call()` and the seconds the device took for it: CUDA events on a GPU, a wall
    clock between two synchronizations elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        result = call()
        end.record()
        end.synchronize()
        return result, start.elapsed_time(end) / 1000  # elapsed_time is in milliseconds
    synchronize(device)
    began = time.perf_counter()
    result = call()
    synchronize(device)
    return result, time.perf_counter() - began


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error from a forward pass means the device ran out of memory."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and any(marker in str(error) for marker in OUT_OF_MEMORY_MARKERS))


def release_memory(device: torch.device) -> None:
    """Drop the prepared models on `device` and give the allocator's cached blocks back."""
    with _PREPARED_LOCK:
        for key in [key for key, (_, prepared) in _PREPARED.items() if prepared.options.device == device]:
            del _PREPARED[key]
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def guard_memory(call: Callable[[], T], device: torch.device, what: str, advice: str) -> T:
    """`call()`, with running out of memory turned into a DeviceMemoryError that says
    "`what` does not fit in the memory of DEVICE; `advice`." after the memory is given back."""
    try:
        return call()
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
    # here the except block has ended, and with it the traceback that held the failed run's tensors
    release_memory(device)
    raise DeviceMemoryError(f"{what} does not fit in the memory of {device_label(device)}; {advice}.")
