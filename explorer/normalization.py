"""BatchNorm against LayerNorm on a real stage output: which elements share a mean and a variance, what
each does to the values, the official "channels_first" LayerNorm against `nn.LayerNorm` after a
permute, and why the paper's BN -> LN step moves no FLOPs.

For a (N, C, H, W) tensor, BatchNorm normalizes each channel over the batch and all positions
(C means); LayerNorm as ConvNeXt uses it normalizes each position of each image over its channels
(N x H x W means). The official ConvNeXt code writes its own LayerNorm for (N, C, H, W) tensors
("channels_first") because `nn.LayerNorm` normalizes the last dimensions; with a permute to
(N, H, W, C) first, the two compute the same thing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from explorer.inference import preprocess
from explorer.inspect import StageRecorder
from explorer.weights import LoadedModel
from explorer.zoo import ExplorerError, get_spec

EPS = 1e-6  # the official ConvNeXt LayerNorm's epsilon
TIMING_REPEATS = 50  # passes per timing; the fastest is reported (on a shared CPU, the least disturbed)


def channels_first_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The official ConvNeXt LayerNorm, data_format="channels_first": normalize dim 1 of (N, C, H, W)."""
    mean = x.mean(1, keepdim=True)  # (N, 1, H, W)
    var = (x - mean).pow(2).mean(1, keepdim=True)  # biased, as LayerNorm's
    x = (x - mean) / torch.sqrt(var + eps)
    return weight[:, None, None] * x + bias[:, None, None]


def permuted_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """`nn.LayerNorm` over the channels of (N, C, H, W): permute them last, normalize, permute back."""
    x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    x = F.layer_norm(x, x.shape[-1:], weight, bias, eps)
    return x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)


def batch_norm_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm's statistics in training: one mean and (biased) variance per channel, over N, H, W."""
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)


def layer_norm_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ConvNeXt's LayerNorm: one mean and variance per image and position, over C. Shapes (N, H, W)."""
    return x.mean(dim=1), x.var(dim=1, unbiased=False)


def _fastest_seconds(run, repeats: int = TIMING_REPEATS) -> float:
    """As timeit advises: other work on the machine only ever adds time, so the fastest pass is the measure."""
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _affine(model: nn.Module, channels: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The scale and shift of the model's first LayerNorm over `channels`, or 1 and 0 when it has none."""
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm) and tuple(module.normalized_shape) == (channels,) and module.weight is not None:
            return module.weight.detach().float(), module.bias.detach().float(), name
    return torch.ones(channels), torch.zeros(channels), ""


@dataclass(frozen=True)
class NormComparison:
    """BatchNorm's and LayerNorm's view of one stage output (batch 1)."""

    model: str
    weights: str
    stage: int  # 0-based
    shape: tuple[int, int, int, int]  # (N, C, H, W)
    values: np.ndarray  # (C, H, W) the stage output
    bn_mean: np.ndarray  # (C,)
    bn_std: np.ndarray  # (C,)
    ln_mean: np.ndarray  # (H, W)
    ln_std: np.ndarray  # (H, W)
    after_bn: np.ndarray  # (C, H, W) normalized per channel (no scale and shift)
    after_ln: np.ndarray  # (C, H, W) normalized per position
    affine_from: str  # the LayerNorm whose scale and shift the equality check used ("" = 1 and 0)
    max_difference: float  # |channels_first - permuted nn.LayerNorm|, largest over the tensor
    seconds_channels_first: float  # fastest of TIMING_REPEATS passes of each, on this machine's CPU
    seconds_permuted: float


def compare_norms(loaded: LoadedModel, image: Image.Image, stage: int) -> NormComparison:
    """Run `image` through the model, keep stage `stage`'s output, and set the two norms against it."""
    layout = get_spec(loaded.name).layout
    if not 0 <= stage < len(layout.stages):
        raise ExplorerError(f"{loaded.name} has {len(layout.stages)} stages; pick one from 1 to {len(layout.stages)}.")
    batch = preprocess(image, loaded.data_config)
    with loaded.lock, StageRecorder(loaded.model, layout) as recorder, torch.inference_mode():
        loaded.model(batch)
    x = recorder.outputs[layout.stages[stage]].float().contiguous()  # (1, C, H, W)
    weight, bias, affine_from = _affine(loaded.model, x.shape[1])
    with torch.inference_mode():
        official = channels_first_layer_norm(x, weight, bias)
        permuted = permuted_layer_norm(x, weight, bias)
        seconds_official = _fastest_seconds(lambda: channels_first_layer_norm(x, weight, bias))
        seconds_permuted = _fastest_seconds(lambda: permuted_layer_norm(x, weight, bias))
    bn_mean, bn_var = batch_norm_statistics(x)
    ln_mean, ln_var = layer_norm_statistics(x)
    after_bn = (x - bn_mean[None, :, None, None]) / torch.sqrt(bn_var[None, :, None, None] + EPS)
    after_ln = (x - ln_mean[:, None]) / torch.sqrt(ln_var[:, None] + EPS)
    return NormComparison(
        loaded.name, loaded.weights, stage, tuple(x.shape), x[0].numpy(), bn_mean.numpy(), bn_var.sqrt().numpy(),
        ln_mean[0].numpy(), ln_var[0].sqrt().numpy(), after_bn[0].numpy(), after_ln[0].numpy(), affine_from,
        float((official - permuted).abs().max()), seconds_official, seconds_permuted)


BN_STEP, LN_STEP = "roadmap:fewer_norm", "roadmap:ln"  # the paper's BN -> LN step: the network before and after


def bn_to_ln_counts(input_size: int = 224):
    """The counting lab's figures for the roadmap's networks just before and after BN -> LN."""
    from explorer.counting import count

    return count(BN_STEP, input_size), count(LN_STEP, input_size)
