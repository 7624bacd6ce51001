"""ConvNeXt Explorer's Python API: the functions the command line and the web app call.

    from explorer import summarize, load, open_image, predict, attribute

Each name is imported from its module on first use, so `import explorer` loads no torch, builds no
model and downloads nothing (DESIGN principle 5). The README's "Python API" section has an example.
Every result has `to_json()`, the command line's `--json` document.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# public name -> the module that defines it
_HOMES = {
    "ExplorerError": "explorer.zoo",  # every mistake a person can make, with a sentence
    "get_spec": "explorer.zoo",  # name -> the registry's ModelSpec
    "build_model": "explorer.zoo",  # name -> an nn.Module with random weights
    "summarize": "explorer.analysis",  # name -> per-stage shapes, parameters, GFLOPs (`summary`)
    "roadmap_table": "explorer.roadmap",  # regime -> every roadmap step, counted and printed (`roadmap`)
    "load": "explorer.weights",  # name, weights -> a LoadedModel (random, "pretrained", a checkpoint file)
    "open_image": "explorer.inference",  # a file -> a checked RGB image
    "predict": "explorer.inference",  # top-k classes (`predict`)
    "attribute": "explorer.attribution",  # Grad-CAM and the other maps (`cam`)
    "overlay": "explorer.attribution",  # a map blended over the image the model saw
    "cascade": "explorer.sanity",  # cascading randomization of a map (`sanity`)
    "faithfulness": "explorer.sanity",  # deletion and insertion curves (`faithfulness`)
    "ErfRequest": "explorer.erf",  # what an effective receptive field is measured on
    "compute_erf": "explorer.erf",  # the effective receptive field and its area ratios (`erf`)
    "count": "explorer.counting",  # every FLOP counter on a model, per operator kind (`flops`)
    "collapse_profile": "explorer.collapse",  # ConvNeXt V2's feature-collapse measure per block (`collapse`)
    "benchmark": "explorer.bench",  # images per second beside the paper's Table 12 (`bench`)
}
__all__ = sorted(_HOMES)

if TYPE_CHECKING:  # for editors and type checkers only; at run time the names come from __getattr__
    from explorer.analysis import summarize
    from explorer.attribution import attribute, overlay
    from explorer.bench import benchmark
    from explorer.collapse import collapse_profile
    from explorer.counting import count
    from explorer.erf import ErfRequest, compute_erf
    from explorer.inference import open_image, predict
    from explorer.roadmap import roadmap_table
    from explorer.sanity import cascade, faithfulness
    from explorer.weights import load
    from explorer.zoo import ExplorerError, build_model, get_spec


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'explorer' has no attribute '{name}'")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
