"""Feature collapse, as ConvNeXt V2 measures it (Woo et al. 2023, Section 3.1): block by block, how alike
the channels of the MLP's hidden layer are.

For an activation X of shape (H, W, C), channel i is a vector X_i of H*W values. The measure is the mean,
over all C x C ordered pairs (a channel with itself included, as in the paper's formula), of the cosine
distance (1 - cos(X_i, X_j)) / 2:

    0     every channel is the same map up to a positive scale: the features have collapsed
    ~0.5  channels are orthogonal on average (an all-zero channel counts as orthogonal to all)
    1     the largest possible: pairs of opposite maps

It is measured where the block's MLP is widest, after pwconv1 and the GELU (timm's `mlp.act`); in
ConvNeXt V2 the GRN comes right after that point, so the two families are measured at the same place.
The paper reports that trained ConvNeXt (V1) MLPs have many dead or saturated channels, a low distance,
and that V2's GRN keeps them diverse. With random weights both start alike (GRN starts as the identity),
so only trained weights can show the effect.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from explorer.inference import preprocess
from explorer.weights import RANDOM_INIT, LoadedModel
from explorer.zoo import ExplorerError, get_spec

HIDDEN = ".mlp.act"  # module-name suffix of the activation inside every timm ConvNeXt block's MLP
PAIRS = {  # size -> (ConvNeXt, ConvNeXt V2) of the same widths and depths
    "T": ("convnext_tiny", "convnextv2_tiny"),
    "B": ("convnext_base", "convnextv2_base"),
    "L": ("convnext_large", "convnextv2_large"),
}


def channel_cosine_distance(hidden: Tensor) -> float:
    """(N, H, W, C) activations -> the mean pairwise cosine distance between channels, averaged over
    the N images."""
    channels = hidden.detach().flatten(1, 2).transpose(1, 2).double()  # (N, H, W, C) -> (N, C, HW)
    unit = F.normalize(channels, dim=-1)  # each channel a unit vector; an all-zero one stays zero
    cosines = unit @ unit.transpose(1, 2)  # (N, C, C)
    return float(((1 - cosines) / 2).mean())


@dataclass(frozen=True)
class CollapseProfile:
    """One model's measure for every block, in forward order."""

    model: str
    label: str
    weights: str  # what a person reads, e.g. "random init" or "convnextv2_tiny.fcmae_ft_in1k (hub)"
    blocks: tuple[str, ...]  # module names, e.g. "stages.2.blocks.4"
    stages: tuple[int, ...]  # stage of each block, from 0
    distances: tuple[float, ...]

    @property
    def random(self) -> bool:
        return self.weights == RANDOM_INIT

    def to_json(self) -> dict:
        return asdict(self) | {"random": self.random}


def hidden_layers(loaded: LoadedModel) -> list[str]:
    """The MLP activations of every block, in forward order; a model without them gets a sentence."""
    names = [name for name, _module in loaded.model.named_modules() if name.endswith(HIDDEN)]
    if not names:
        raise ExplorerError(f"{get_spec(loaded.name).label} has no ConvNeXt MLP to measure; pick a ConvNeXt "
                            f"or a ConvNeXt V2.")
    return names


def collapse_profile(loaded: LoadedModel, image: Image.Image) -> CollapseProfile:
    """The measure at every block of `loaded` for `image` (preprocessed as for prediction)."""
    layers = hidden_layers(loaded)
    distances: dict[str, float] = {}

    def measure(name: str):
        def hook(_module, _inputs, output: Tensor) -> None:
            distances[name] = channel_cosine_distance(output)  # (N, H, W, 4C), measured as it passes
        return hook

    batch = preprocess(image, loaded.data_config)  # (1, 3, H, W)
    with loaded.lock:  # a shared model: the hooks must see this pass only
        handles = [loaded.model.get_submodule(name).register_forward_hook(measure(name)) for name in layers]
        try:
            with torch.inference_mode():
                loaded.model(batch)
        finally:
            for handle in handles:
                handle.remove()
    blocks = [name.removesuffix(HIDDEN) for name in layers]
    return CollapseProfile(loaded.name, get_spec(loaded.name).label, loaded.weights, tuple(blocks),
                           tuple(int(block.split(".")[1]) for block in blocks),
                           tuple(distances[name] for name in layers))


def reading(profiles: list[CollapseProfile]) -> str:
    """What the chart says, in two or three sentences, with the weights' caveat first."""
    means = ", ".join(f"{p.label} {sum(p.distances) / len(p.distances):.3f}" for p in profiles)
    lowest = [f"{p.label} {min(p.distances):.3f} at {p.blocks[p.distances.index(min(p.distances))]}"
              for p in profiles]
    text = f"Mean over blocks: {means}. Lowest: {'; '.join(lowest)}."
    if any(p.random for p in profiles):
        return ("**Random weights**: this shows the measure on untrained networks, where V2's GRN starts as the identity, so it cannot show feature "
                f"collapse or GRN's cure; that needs trained weights. {text}")
    if len(profiles) == 1:
        return f"{text} Lower means more alike channels (0: all the same map)."
    return (f"{text} The V2 paper finds the collapse (many dead or near-identical channels, a low distance) "
            "most clearly in ConvNeXt V1 pre-trained as a masked autoencoder, and V2's blocks more diverse. "
            "The V1 weights here are the supervised ones, so read a small gap as consistent with the paper, "
            "not as a contradiction.")
