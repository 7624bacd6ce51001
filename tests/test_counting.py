"""The FLOP counters, run for real: every tool's total and split by kind against multiply-accumulates
worked out here from the layers' shapes (recorded by forward hooks, not by any counter), the claims
of each tool's sentence, and the `flops` command line.

Counting runs five tools on the CPU, one real forward pass each: ResNet-50 and ConvNeXt-T are counted at
96 px to keep the suite fast (the rules do not depend on the size), Swin-T at the 224 its windows need.
Each is counted once and shared by the tests (the module caches its counts).
"""
from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer.counting import KINDS, TOOLS, count, count_model
from explorer.report import counting_notes
from explorer.zoo import build_model, get_spec

MODELS = {"resnet50": 96, "convnext_tiny": 96, "swin_tiny_patch4_window7_224": 224}  # name -> input size
NORMS = (nn.LayerNorm, nn.BatchNorm2d)


@dataclass
class ByHand:
    """Multiply-accumulates and element counts of one network, from its layers' shapes."""

    conv: int = 0  # out elements x in channels per group x kernel area
    conv_bias: int = 0  # one add per output element of a conv with a bias
    linear: int = 0  # out elements x in features (per position: a Linear on (N, H, W, C) runs H*W times)
    linear_bias: int = 0
    linear_params_by_first_dim: int = 0  # parameters x the output's first dimension (batch, or windows in Swin)
    attention: int = 0  # q @ k^T and attn @ v: 2 x tokens^2 x width per window (or image) and block
    ln_elements: int = 0  # elements normalized by LayerNorm (any subclass)
    bn_elements: int = 0
    exact_type_ln_elements: int = 0  # ... by modules whose type is exactly nn.LayerNorm (no subclass)
    exact_type_bn_elements: int = 0  # ... exactly nn.BatchNorm2d
    norm_params_by_first_dim: int = 0
    relu_elements: int = 0
    gelu_elements: int = 0
    nn_gelu_elements: int = 0  # ... of them by torch's own nn.GELU module
    softmax: list[tuple[int, int]] = field(default_factory=list)  # (rows, row length) per softmax call
    avg_pool_inputs: int = 0  # elements entering nn.AdaptiveAvgPool2d


def by_hand(model: nn.Module, input_size: int) -> ByHand:
    hand = ByHand()

    def hook(module, inputs, output):
        x = inputs[0]
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            hand.conv += output.numel() * (module.in_channels // module.groups) * k
            hand.conv_bias += output.numel() if module.bias is not None else 0
        elif isinstance(module, nn.Linear):
            hand.linear += output.numel() * module.in_features
            hand.linear_bias += output.numel() if module.bias is not None else 0
            hand.linear_params_by_first_dim += output.shape[0] * sum(p.numel() for p in module.parameters())
        elif isinstance(module, NORMS):
            if isinstance(module, nn.LayerNorm):
                hand.ln_elements += x.numel()
            else:
                hand.bn_elements += x.numel()
            hand.exact_type_ln_elements += x.numel() if type(module) is nn.LayerNorm else 0
            hand.exact_type_bn_elements += x.numel() if type(module) is nn.BatchNorm2d else 0
            hand.norm_params_by_first_dim += output.shape[0] * sum(p.numel() for p in module.parameters())
        elif isinstance(module, nn.ReLU):
            hand.relu_elements += output.numel()
        elif type(module).__name__ == "GELU":
            hand.gelu_elements += output.numel()
            hand.nn_gelu_elements += output.numel() if type(module) is nn.GELU else 0
        elif isinstance(module, nn.Softmax):
            hand.softmax.append((x.numel() // x.shape[-1], x.shape[-1]))
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            hand.avg_pool_inputs += x.numel()
        elif type(module).__name__ in ("WindowAttention", "Attention"):
            windows, tokens, width = x.shape
            hand.attention += 2 * windows * tokens * tokens * width

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device))
    for handle in handles:
        handle.remove()
    return hand


def expected(hand: ByHand) -> dict[str, dict[str, int]]:
    """What each tool's sentence says it counts, in multiply-accumulates (or its own units), by kind."""
    softmax_3n = sum(rows * (3 * n - 1) for rows, n in hand.softmax)  # exp, add, divide per element
    return {
        "flop_counter": {"convolution": hand.conv, "linear": hand.linear, "attention_matmuls": hand.attention},
        "fvcore": {"convolution": hand.conv, "linear": hand.linear, "attention_matmuls": hand.attention,
                   "norms": 5 * hand.ln_elements + 2 * hand.bn_elements, "activations": 0,
                   "other": hand.avg_pool_inputs},
        "ptflops_pytorch": {"convolution": hand.conv + hand.conv_bias, "linear": hand.linear + hand.linear_bias,
                            "norms": hand.exact_type_ln_elements + 2 * hand.exact_type_bn_elements,
                            # nn.ReLU and nn.GELU: the module's rule, and again the function it calls
                            "activations": 2 * hand.relu_elements + hand.gelu_elements + hand.nn_gelu_elements
                            + sum(rows * n for rows, n in hand.softmax)},
        "ptflops_aten": {"convolution": hand.conv + hand.conv_bias, "linear": hand.linear + hand.linear_bias,
                         "attention_matmuls": hand.attention, "norms": 0, "activations": 0, "other": 0},
        "thop": {"convolution": hand.conv, "linear": hand.linear, "attention_matmuls": hand.attention,
                 "norms": 4 * (hand.ln_elements + hand.bn_elements), "activations": softmax_3n},
        "torchinfo": {"convolution": hand.conv + hand.conv_bias, "linear": hand.linear_params_by_first_dim,
                      "attention_matmuls": 0, "norms": hand.norm_params_by_first_dim, "activations": 0, "other": 0},
    }


@pytest.fixture(scope="module", params=list(MODELS))
def counted(request):
    name = request.param
    size = MODELS[name]
    return name, count(name, size), by_hand(build_model(name, size, device="meta"), size)


def test_every_tool_counts_convolutions_and_linear_layers_as_worked_out_by_hand(counted):
    name, counting, hand = counted
    assert counting.input_size == MODELS[name]
    for tool, kinds in expected(hand).items():
        got = counting.count(tool).by_kind
        for kind, macs in kinds.items():
            assert got[kind] * 1e9 == pytest.approx(macs, rel=1e-9, abs=1), (name, tool, kind)


def test_tools_that_count_only_products_total_exactly_the_hand_figure(counted):
    name, counting, hand = counted
    assert counting.count("flop_counter").total * 1e9 == pytest.approx(hand.conv + hand.linear + hand.attention, abs=1)
    assert counting.count("ptflops_aten").total * 1e9 == pytest.approx(
        hand.conv + hand.conv_bias + hand.linear + hand.linear_bias + hand.attention, abs=1)
    assert counting.count("torchinfo").total * 1e9 == pytest.approx(
        hand.conv + hand.conv_bias + hand.linear_params_by_first_dim + hand.norm_params_by_first_dim, abs=1)


def test_split_by_kind_adds_up_to_each_total_and_stays_in_the_kinds_the_sentence_names(counted):
    name, counting, _ = counted
    assert [c.tool for c in counting.counts] == [tool.key for tool in TOOLS]
    for tool in TOOLS:
        c = counting.count(tool.key)
        assert set(c.by_kind) == set(KINDS)
        assert sum(c.by_kind.values()) == pytest.approx(c.total, rel=1e-12)
        assert {k for k, v in c.by_kind.items() if v} <= set(tool.kinds), (name, tool.key)


def test_the_gaps_the_sentences_name():
    resnet, convnext, swin = (count(name, size) for name, size in MODELS.items())
    # torchinfo counts a Linear once per image: ConvNeXt-T's MLPs shrink to their parameters
    assert convnext.count("torchinfo").total < 0.1 * convnext.count("flop_counter").total
    # ...but on ResNet-50, whose only Linear sees a (1, 2048) tensor, it agrees with the paper's convention
    assert resnet.count("torchinfo").total == pytest.approx(resnet.count("flop_counter").total, rel=1e-4)
    # ptflops' pytorch backend does not see Swin's attention written as q @ k^T
    assert swin.count("ptflops_pytorch").by_kind["attention_matmuls"] == 0
    assert swin.count("flop_counter").by_kind["attention_matmuls"] > 0.1
    # timm's ConvNeXt uses its own LayerNorm subclasses: ptflops' exact-type rules skip them
    assert convnext.count("ptflops_pytorch").by_kind["norms"] == 0 < convnext.count("thop").by_kind["norms"]
    assert swin.paper == 4.5 and resnet.paper is None  # the paper prints no ResNet-50 at 96 px
    assert swin.count("flop_counter").total == pytest.approx(4.49, abs=0.005)  # PAPER-FACTS: Swin-T counts 4.491


def test_a_vit_outside_the_registry_fused_attention_and_hidden_projections():
    """count_model takes any module. A small timm ViT: on a CPU tensor its attention runs through the fused
    kernel that FlopCounterMode has no rule for, and ptflops' rule for timm's Attention hides qkv and proj."""
    from timm.models.vision_transformer import VisionTransformer

    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=10)
    hand = by_hand(copy.deepcopy(vit).to("meta"), 32)
    counting = count_model(vit, 32, name="vit")
    tokens = (32 // 8) ** 2 + 1
    assert hand.attention == 2 * 2 * tokens * tokens * 64  # two blocks
    assert counting.count("flop_counter").by_kind["attention_matmuls"] * 1e9 == pytest.approx(hand.attention)
    assert counting.flop_counter_cpu * 1e9 == pytest.approx(hand.conv + hand.linear)  # attention unseen
    assert "fused kernel it has no rule for" in counting_notes(counting)
    assert counting.count("thop").by_kind["attention_matmuls"] * 1e9 == pytest.approx(hand.attention)
    assert counting.count("fvcore").by_kind["attention_matmuls"] == 0
    projections = 2 * (tokens * 64 * 3 * 64 + tokens * 3 * 64 + tokens * 64 * 64 + tokens * 64)  # qkv, proj + biases
    assert counting.count("ptflops_pytorch").by_kind["linear"] * 1e9 == pytest.approx(
        hand.linear + hand.linear_bias - projections)


class CallsGeluFromAnotherThread(nn.Module):
    """A 1x1 conv whose forward waits for another thread to run F.gelu on 1000 elements, as another
    request of the app could while ptflops has the function patched for the whole process."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        other = threading.Thread(target=lambda: F.gelu(torch.ones(1000)))
        other.start()
        other.join()
        return self.conv(x)


def test_ptflops_does_not_count_what_another_thread_runs_meanwhile():
    counting = count_model(CallsGeluFromAnotherThread(), 8)
    assert counting.count("ptflops_pytorch").total * 1e9 == 4 * 8 * 8 * (3 + 1)  # the conv and its bias only


def test_a_model_too_big_for_the_cpu_is_refused_with_a_sentence():
    from explorer.zoo import ExplorerError

    with pytest.raises(ExplorerError, match="stops at 20 GFLOPs"):
        count("convnext_large")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """`python -m explorer flops ARGS` in this process (the counts above stay cached): code, stdout, stderr."""
    from explorer.__main__ import main

    code = main(["flops", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_of_the_bundled_model(capsys):
    from explorer.analysis import summarize

    code, out, err = run_cli(capsys, "convnext_shapes", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"model", "input_size", "paper", "counters", "by_kind"}
    assert doc["model"] == "convnext_shapes" and doc["paper"] is None
    assert doc["input_size"] == get_spec("convnext_shapes").input_size
    assert set(doc["counters"]) == set(doc["by_kind"]) == {"flop_counter", "fvcore", "ptflops_pytorch",
                                                           "ptflops_aten", "thop", "torchinfo"}
    assert doc["counters"]["flop_counter"] == pytest.approx(summarize("convnext_shapes").gflops, rel=1e-12)
    for tool, total in doc["counters"].items():
        assert set(doc["by_kind"][tool]) == set(KINDS)
        assert sum(doc["by_kind"][tool].values()) == pytest.approx(total, rel=1e-9)


def test_table_for_a_person(capsys):
    code, out, _ = run_cli(capsys, "swin_tiny_patch4_window7_224")
    assert code == 0
    assert "| thop (ultralytics-thop) | **4.512** |" in out and "the paper's table** | **4.5**" in out
    assert all(f"**{tool.label}**" in out for tool in TOOLS)


@pytest.mark.parametrize("args, says", [
    (("convnext_tinny",), "Did you mean convnext_tiny"),
    (("resnet50", "--input-size", "100"), "multiple of 32"),
    (("convnext_xlarge",), "Choose a smaller model or input size"),
])
def test_mistakes_are_one_line_and_exit_2(capsys, args, says):
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0]
