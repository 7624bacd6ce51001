"""Every figure of the paper's tables that the app displays, compared with the paper as typed here.

The tables below were typed from the paper (arXiv 2201.03545 v2) and the ConvNeXt V2 README, each in
the paper's own row order, independently of `assets/paper/*.csv` and of `explorer/roadmap.py`. Each
test compares the project's table as the app reads it (`explorer.paper`, `explorer.roadmap`) with the
typed one as a whole, so that changing, dropping or adding any displayed figure fails the test named
after its table. Each printed figure is typed once; tests/test_roadmap.py reads Figure 2 and Table 11
from here to check that the counted GFLOPs round to them.
"""
from __future__ import annotations

import re

import pytest

from explorer.paper import FIGURE_TABLES, PaperFigure, model_figures, read_table, table_12
from explorer.roadmap import steps

# Table 12 (and Table 1's ImageNet-1K / 22K top-1): model, input side, GFLOPs, A100 images/s,
# top-1 trained on IN-1K / pre-trained on IN-22K ("-" where the paper prints none).
TABLE_12 = """
Swin-T       224   4.5   1325.6  81.3  -
ConvNeXt-T   224   4.5   1943.5  82.1  -
Swin-S       224   8.7    857.3  83.0  -
ConvNeXt-S   224   8.7   1275.3  83.1  -
Swin-B       224  15.4    662.8  83.5  85.2
ConvNeXt-B   224  15.4    969.0  83.8  85.8
Swin-B       384  47.1    242.5  84.5  86.4
ConvNeXt-B   384  45.0    336.6  85.1  86.8
Swin-L       224  34.5    435.9  -     86.3
ConvNeXt-L   224  34.4    611.5  84.3  86.6
Swin-L       384 103.9    157.9  -     87.3
ConvNeXt-L   384 101.0    211.4  85.5  87.5
ConvNeXt-XL  224  60.9    424.4  -     87.0
ConvNeXt-XL  384 179.0    147.4  -     87.8
"""

# Table 3, COCO: framework, backbone, pre-training, GFLOPs, FPS, AP box / 50 / 75, AP mask / 50 / 75.
TABLE_3 = """
Mask R-CNN          Swin-T       IN-1K   267  23.1  46.0 68.1 50.3  41.6 65.1 44.9
Mask R-CNN          ConvNeXt-T   IN-1K   262  25.6  46.2 67.9 50.8  41.7 65.0 44.9
Cascade Mask R-CNN  ResNet-50    IN-1K   739  11.4  46.3 64.3 50.5  40.1 61.7 43.4
Cascade Mask R-CNN  X101-32      IN-1K   819   9.2  48.1 66.5 52.4  41.6 63.9 45.2
Cascade Mask R-CNN  X101-64      IN-1K   972   7.1  48.3 66.4 52.3  41.7 64.0 45.1
Cascade Mask R-CNN  Swin-T       IN-1K   745  12.2  50.4 69.2 54.7  43.7 66.6 47.3
Cascade Mask R-CNN  ConvNeXt-T   IN-1K   741  13.5  50.4 69.1 54.8  43.7 66.5 47.3
Cascade Mask R-CNN  Swin-S       IN-1K   838  11.4  51.9 70.7 56.3  45.0 68.2 48.8
Cascade Mask R-CNN  ConvNeXt-S   IN-1K   827  12.0  51.9 70.8 56.5  45.0 68.4 49.1
Cascade Mask R-CNN  Swin-B       IN-1K   982  10.7  51.9 70.5 56.4  45.0 68.1 48.9
Cascade Mask R-CNN  ConvNeXt-B   IN-1K   964  11.4  52.7 71.3 57.2  45.6 68.9 49.5
Cascade Mask R-CNN  Swin-B       IN-22K   982  10.7  53.0 71.8 57.5  45.8 69.4 49.7
Cascade Mask R-CNN  ConvNeXt-B   IN-22K   964  11.5  54.0 73.1 58.8  46.9 70.6 51.3
Cascade Mask R-CNN  Swin-L       IN-22K  1382   9.2  53.9 72.4 58.8  46.7 70.1 50.8
Cascade Mask R-CNN  ConvNeXt-L   IN-22K  1354  10.0  54.8 73.8 59.8  47.6 71.3 51.7
Cascade Mask R-CNN  ConvNeXt-XL  IN-22K  1898   8.6  55.2 74.2 59.9  47.7 71.6 52.2
"""
COCO_COLUMNS = ("gflops", "fps", "ap_box", "ap_box50", "ap_box75", "ap_mask", "ap_mask50", "ap_mask75")

# Table 4, ADE20K with UperNet: backbone, pre-training, input crop, multi-scale mIoU, params (M), GFLOPs.
TABLE_4 = """
Swin-T       IN-1K   512  45.8   60   945
ConvNeXt-T   IN-1K   512  46.7   60   939
Swin-S       IN-1K   512  49.5   81  1038
ConvNeXt-S   IN-1K   512  49.6   82  1027
Swin-B       IN-1K   512  49.7  121  1188
ConvNeXt-B   IN-1K   512  49.9  122  1170
Swin-B       IN-22K  640  51.7  121  1841
ConvNeXt-B   IN-22K  640  53.1  122  1828
Swin-L       IN-22K  640  53.5  234  2468
ConvNeXt-L   IN-22K  640  53.7  235  2458
ConvNeXt-XL  IN-22K  640  54.0  391  3335
"""

# The GFLOPs the paper prints per model and input side (Table 1 / Table 8 / Table 12), ImageNet-1K heads.
# ConvNeXt-B at 384 is printed twice: 45.1 in Table 8, 45.0 in Table 12 (both are shown).
PRINTED_GFLOPS = """
ResNet-50     224    4.09
ConvNeXt-T    224    4.5
ConvNeXt-S    224    8.7
ConvNeXt-B    224   15.4
ConvNeXt-L    224   34.4
ConvNeXt-XL   224   60.9
ConvNeXt-T    384   13.1
ConvNeXt-S    384   25.5
ConvNeXt-B    384   45.1  45.0
ConvNeXt-L    384  101.0
ConvNeXt-XL   384  179.0
Swin-T        224    4.5
Swin-S        224    8.7
Swin-B        224   15.4
Swin-L        224   34.5
Swin-B        384   47.1
Swin-L        384  103.9
"""

# Table 2 (Section 3.3), isotropic ConvNeXt against ViT: model, parameters (M), GFLOPs, ImageNet-1K top-1.
TABLE_2 = """
ViT-S               22   4.6  79.8
ConvNeXt-S (iso.)   22   4.3  79.7
ViT-B               87  17.6  81.8
ConvNeXt-B (iso.)   87  16.9  82.0
ViT-L              304  61.6  82.6
ConvNeXt-L (iso.)  306  59.7  82.6
"""

# The ConvNeXt V2 README's ImageNet-1K fine-tuned models (Woo et al. 2023): model, parameters (M),
# GFLOPs, top-1.
CONVNEXT_V2 = """
ConvNeXt V2-A     3.7    0.55  76.7
ConvNeXt V2-F     5.2    0.78  78.5
ConvNeXt V2-P     9.1    1.37  80.3
ConvNeXt V2-N    15.6    2.45  81.9
ConvNeXt V2-T    28.6    4.47  83.0
ConvNeXt V2-B    89     15.4   84.9
ConvNeXt V2-L   198     34.4   85.8
ConvNeXt V2-H   660    115     86.3
"""

# Figure 2 (and Section 2's text for the first two rows): the roadmap's ImageNet-1K top-1 and GFLOPs.
FIGURE_2 = """
resnet50      76.13  4.09
recipe        78.82  4.09
stage_ratio   79.36  4.53
patchify      79.51  4.42
depthwise     78.28  2.35
width         80.50  5.27
inverted      80.64  4.64
move_dw       79.92  4.07
kernel5       80.35  4.10
kernel7       80.57  4.15
kernel9       80.57  4.21
kernel11      80.47  4.29
gelu          80.62  4.15
fewer_act     81.27  4.15
fewer_norm    81.41  4.15
ln            81.47  4.46
convnext_t    81.97  4.49
swin_t        81.30  4.50
"""

# Table 11 (Appendix), the same roadmap from ResNet-200 to ConvNeXt-B, one run per row. Laid out
# as a reader meets it: the row's change in words, GFLOPs, then top-1 (rows in the paper's order).
TABLE_11 = """
ResNet-200 (as He et al. report it)   15.01  78.20
enhanced training recipe              15.01  81.14
stage ratio and increase width        14.52  81.33
patchify stem                         14.38  81.59
depthwise conv                         7.23  80.54
increase width                        16.76  81.85
inverted bottleneck                   15.68  82.64
move up depthwise conv                14.63  82.04
kernel size 5                         14.70  82.32
kernel size 7                         14.81  82.30
kernel size 9                         14.95  82.27
kernel size 11                        15.13  82.18
ReLU to GELU                          14.81  82.19
fewer activations                     14.81  82.71
fewer norms                           14.81  83.17
BN to LN                              14.81  83.35
separate downsampling = ConvNeXt-B    15.35  83.60
Swin-B, for reference                 15.43  83.50
"""


def typed(table: str) -> list[list[str]]:
    """The typed table's rows as cells: names are separated by two or more spaces (they may hold one),
    numbers by any space."""
    rows = []
    for line in table.strip().splitlines():
        cells = []
        for field in re.split(r"\s{2,}", line.strip()):
            tokens = field.split()
            cells.extend(tokens if all(re.fullmatch(r"-|\d+(\.\d+)?", t) for t in tokens) else [field])
        rows.append(cells)
    return rows


def number(text: str) -> float | None:
    return None if text in ("", "-") else float(text)


def printed_roadmap(regime: str) -> list[tuple[float, float]]:
    """The printed (top-1, GFLOPs) of every row of Figure 2 (resnet50) or Table 11 (resnet200), in order."""
    if regime == "resnet50":
        return [(float(top1), float(gflops)) for _, top1, gflops in typed(FIGURE_2)]
    return [(float(top1), float(gflops)) for _, gflops, top1 in typed(TABLE_11)]


def test_table_12_throughput_gflops_and_top1():
    expected = [(name, int(side), float(gflops), float(speed), number(in1k), number(in22k))
                for name, side, gflops, speed, in1k, in22k in typed(TABLE_12)]
    shown = [(row.paper_name, row.input_size, row.gflops, row.images_per_s, row.top1_in1k, row.top1_in22k)
             for row in table_12()]
    assert shown == expected


def test_table_3_coco():
    expected = [(framework, backbone, pretraining, *map(float, figures))
                for framework, backbone, pretraining, *figures in typed(TABLE_3)]
    shown = [(row["framework"], row["backbone"], row["pretraining"], *(float(row[c]) for c in COCO_COLUMNS))
             for row in read_table("coco")]
    assert shown == expected


def test_table_4_ade20k():
    expected = [(backbone, pretraining, int(crop), float(miou), float(params), float(gflops))
                for backbone, pretraining, crop, miou, params, gflops in typed(TABLE_4)]
    shown = [(row["backbone"], row["pretraining"], int(row["input_crop"]), float(row["miou_ms"]),
              float(row["params_m"]), float(row["gflops"])) for row in read_table("ade20k")]
    assert shown == expected
    assert all(row["miou_ss"] == "" for row in read_table("ade20k"))  # the paper prints multi-scale only


def figures_from(source: str) -> list[PaperFigure]:
    return [figure for figure in model_figures() if figure.source == FIGURE_TABLES[source]]


def test_printed_gflops_of_every_model():
    expected = [(name, int(side), float(gflops), number(alt[0]) if alt else None)
                for name, side, gflops, *alt in typed(PRINTED_GFLOPS)]
    shown = [(f.paper_name, f.input_size, f.gflops, f.gflops_alt) for f in figures_from("models")]
    assert sorted(shown) == sorted(expected)


def test_table_2_isotropic_convnext_and_vit():
    expected = [(name, 224, *map(float, figures)) for name, *figures in typed(TABLE_2)]
    shown = [(f.paper_name, f.input_size, f.params_m, f.gflops, f.top1) for f in figures_from("isotropic")]
    assert shown == expected


def test_convnext_v2_readme_table():
    expected = [(name, 224, *map(float, figures)) for name, *figures in typed(CONVNEXT_V2)]
    shown = [(f.paper_name, f.input_size, f.params_m, f.gflops, f.top1) for f in figures_from("convnextv2")]
    assert shown == expected


def test_figure_2_roadmap():
    expected = {step: (float(top1), float(gflops)) for step, top1, gflops in typed(FIGURE_2)}
    shown = {step.id: (step.paper_top1, step.paper_gflops) for step in steps("resnet50")}
    assert shown == expected


def test_table_11_resnet200_roadmap():
    shown = [(step.paper_top1, step.paper_gflops) for step in steps("resnet200")]
    assert shown == printed_roadmap("resnet200")


@pytest.mark.parametrize("table, rows", [(TABLE_12, 14), (TABLE_3, 16), (TABLE_4, 11), (PRINTED_GFLOPS, 17),
                                         (TABLE_2, 6), (CONVNEXT_V2, 8), (FIGURE_2, 18), (TABLE_11, 18)])
def test_the_typed_tables_split_into_whole_rows(table, rows):
    """The splitter reads every typed line into the same number of cells (a guard on the test itself)."""
    lines = typed(table)
    assert len(lines) == rows and len({len(line) for line in lines if line[-2:] != ["45.1", "45.0"]}) == 1
