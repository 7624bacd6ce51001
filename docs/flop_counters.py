"""The table of docs/flop-counters.md: every FLOP counter on ResNet-50, ConvNeXt-T, Swin-T and ViT-S at 224,
batch 1, with random weights (counts do not depend on them). ViT-S is timm's `vit_small_patch16_224`, built
here directly (it is not in the registry).

    PYTHONPATH=. python docs/flop_counters.py > docs/flop-counters.csv
"""
from __future__ import annotations

import csv
import sys

import timm

from explorer.counting import KINDS, TOOLS, count, count_model

MODELS = ("resnet50", "convnext_tiny", "swin_tiny_patch4_window7_224")
VIT = "vit_small_patch16_224"


def main() -> None:
    countings = [count(name, 224) for name in MODELS]
    countings.append(count_model(timm.create_model(VIT, pretrained=False), 224, name=VIT, label="ViT-S"))
    writer = csv.writer(sys.stdout)
    writer.writerow(["model", "counter", "total", *KINDS, "seconds", "paper", "flop_counter_cpu"])
    for counting in countings:
        for tool in TOOLS:
            c = counting.count(tool.key)
            writer.writerow([counting.model, tool.key, f"{c.total:.6f}", *(f"{c.by_kind[k]:.6f}" for k in KINDS),
                             f"{c.seconds:.2f}", counting.paper if counting.paper is not None else "",
                             f"{counting.flop_counter_cpu:.6f}"])


if __name__ == "__main__":
    main()
