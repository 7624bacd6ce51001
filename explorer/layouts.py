"""Isotropic against hierarchical: the paper's Section 3.3 pairs ViT with an isotropic ConvNeXt of the
same size; beside them, the hierarchical ConvNeXt of about the same GFLOPs shows where a four-stage
layout puts its compute instead. The figures are the per-row summaries of `explorer.analysis`.
"""
from __future__ import annotations

from explorer.analysis import StageRow, Summary, summarize
from explorer.zoo import ExplorerError

TRIOS = {  # size -> (ViT, isotropic ConvNeXt, the hierarchical ConvNeXt of about the same GFLOPs)
    "S": ("vit_small_patch16_224", "convnext_isotropic_small", "convnext_tiny"),
    "B": ("vit_base_patch16_224", "convnext_isotropic_base", "convnext_base"),
    "L": ("vit_large_patch16_224", "convnext_isotropic_large", "convnext_xlarge"),
}


def trio(size: str) -> list[Summary]:
    """The three summaries of one size, ViT first, counted on the meta device."""
    if size not in TRIOS:
        raise ExplorerError(f"Unknown size '{size}'; use one of {', '.join(TRIOS)}.")
    return [summarize(name) for name in TRIOS[size]]


def heaviest(summary: Summary) -> StageRow:
    """The row of a summary that does the most compute."""
    return max(summary.stages, key=lambda row: row.gflops)


def _grid(row: StageRow) -> str:
    return " x ".join(str(d) for d in row.output_shape[1:])


def reading(summaries: list[Summary]) -> str:
    """Where each model's compute sits, in one sentence per model."""
    lines = []
    for summary in summaries:
        body = [row for row in summary.stages if row.blocks]
        shares = [100 * row.gflops / summary.gflops for row in body]
        if max(shares) - min(shares) < 1:  # an isotropic network: every group of blocks costs the same
            where = (f"spread evenly over depth, {shares[0]:.0f}% in each group of {body[0].blocks} blocks "
                     f"(output {_grid(body[0])})")
        else:
            row = heaviest(summary)
            where = f"{100 * row.gflops / summary.gflops:.0f}% of it in {row.name} (output {_grid(row)})"
        lines.append(f"**{summary.label}**: {summary.gflops:.2f} GFLOPs, {where}.")
    return " ".join(lines)
