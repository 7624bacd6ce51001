"""Throughput and the fast path: the arithmetic, the paper's Table 12, device and precision choices,
the prepared-model cache, running out of memory, and memory over many predictions.

Timings are never asserted against a limit: the machine may be busy. Where a figure is checked, the
timings are fed in and the expected figure is worked out here from them.
"""
from __future__ import annotations

import csv
import gc
import io

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from explorer import bench, device
from explorer.bench import Measurement, benchmark, images_per_second, paper_throughput, ratios, to_csv
from explorer.device import (DeviceError, DeviceMemoryError, Precision, RunOptions, Runner, available_devices,
                             check_precision, guard_memory, pick_device, precision_context, runner)
from explorer.inference import predict
from explorer.weights import LoadedModel
from explorer.zoo import ExplorerError

CPU = torch.device("cpu")
TINY = "convnext_shapes"  # the registry's smallest model; random weights are all a benchmark needs
TINY_SIZE = 64

# Table 12 of the paper (A100, images/s), as PAPER-FACTS.md lists it
def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4)).eval()


def tiny_loaded() -> LoadedModel:
    config = {"input_size": (3, 32, 32), "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5),
              "std": (0.5, 0.5, 0.5), "crop_pct": 1.0, "crop_mode": "center"}
    return LoadedModel(tiny_net(), "tiny", "random init", ("a", "b", "c", "d"), config)


def photo() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))


@pytest.fixture
def fake_timings(monkeypatch):
    """Replace the device clock: each timed pass takes the next of the given seconds."""
    def install(seconds: list[float]) -> None:
        queue = iter(seconds)
        monkeypatch.setattr(bench, "timed", lambda call, _device: (None, next(queue)))
    return install


@pytest.fixture(autouse=True)
def empty_cache():
    device.release_memory(CPU)
    yield
    device.release_memory(CPU)


# --- the arithmetic -------------------------------------------------------------------------------

def test_images_per_second_is_the_batch_over_the_median_pass():
    assert images_per_second([0.5, 0.25, 1.0], 8) == pytest.approx(8 / 0.5)
    assert images_per_second([0.1, 0.3], 4) == pytest.approx(4 / 0.2)  # even count: mean of the middle two
    assert images_per_second([2.0, 0.01, 2.0, 2.0, 0.01], 1) == pytest.approx(0.5)  # outliers do not move it


@pytest.mark.parametrize("seconds, batch", [([], 8), ([0.1, 0.0], 8), ([0.1], 0)])
def test_images_per_second_refuses_impossible_timings(seconds, batch):
    with pytest.raises(ValueError):
        images_per_second(seconds, batch)


def test_benchmark_turns_measured_seconds_into_images_per_second(fake_timings):
    passes = [0.30, 0.10, 0.20, 0.90]
    fake_timings(passes)
    report = benchmark([TINY], batch=4, input_size=TINY_SIZE, device="cpu", warmup=0, repeats=4)
    measurement, = report.measurements
    assert measurement.seconds == tuple(passes)
    assert measurement.images_per_s == pytest.approx(4 / 0.25)
    assert measurement.latency_ms == pytest.approx(250)
    assert measurement.plain_images_per_s is None and measurement.speedup is None


def test_the_speedup_compares_with_timms_plain_path_in_the_same_run(fake_timings):
    fake_timings([0.8, 0.2] * 3)  # the two take turns, the plain path first
    measurement, = benchmark([TINY], batch=2, input_size=TINY_SIZE, device="cpu", baseline=True, warmup=0,
                             repeats=3).measurements
    assert measurement.plain_images_per_s == pytest.approx(2 / 0.8)
    assert measurement.images_per_s == pytest.approx(2 / 0.2)
    assert measurement.speedup == pytest.approx(4.0)


def test_a_real_measurement_on_the_cpu():
    report = benchmark([TINY], batch=2, input_size=TINY_SIZE, device="cpu", baseline=True, warmup=1, repeats=2)
    measurement, = report.measurements
    assert len(measurement.seconds) == 2 and min(measurement.seconds) > 0
    assert measurement.device.startswith("cpu") and measurement.precision == "fp32"
    assert measurement.channels_last and not measurement.compiled
    assert measurement.plain_images_per_s > 0 and measurement.paper_images_per_s is None


@pytest.mark.parametrize("kwargs, message", [
    ({"names": []}, "at least one model"),
    ({"batch": 0}, "at least 1 image"),
    ({"repeats": 0}, "at least 1 timed pass"),
    ({"input_size": 100}, "multiple of 32"),
    ({"names": ["convnext_tinny"]}, "convnext_tiny"),
    ({"precision": "fp16"}, "fp32, tf32, bf16"),
])
def test_benchmark_mistakes_get_a_sentence(kwargs, message):
    with pytest.raises(ExplorerError, match=message):
        benchmark(**{"names": [TINY], "batch": 2, "input_size": TINY_SIZE, "device": "cpu", **kwargs})


# --- the paper's Table 12 and the ratios ----------------------------------------------------------

def test_table_12_rows_match_the_registry_and_the_papers_gflops():
    from explorer.paper import model_figures, table_12

    printed = {(f.arch, f.input_size): f for f in model_figures()}
    for row in table_12():
        figure = printed[(row.arch, row.input_size)]
        assert figure.paper_name == row.paper_name
        assert row.gflops in (figure.gflops, figure.gflops_alt)  # ConvNeXt-B @384: Table 12 prints 45.0


def test_paper_figures_are_found_by_model_and_size_for_1k_heads_only():
    assert paper_throughput("convnext_tiny", 224).images_per_s == 1943.5
    assert paper_throughput("convnext_base.fb_in22k_ft_in1k_384", 384).images_per_s == 336.6
    assert paper_throughput("swin_base_patch4_window12_384", 384).images_per_s == 242.5
    assert paper_throughput("convnext_tiny", 288) is None
    assert paper_throughput("convnext_tiny.fb_in22k", 224) is None  # 21841 classes: not the paper's model
    assert paper_throughput("resnet50", 224) is None


def measured(name: str, input_size: int, seconds: float, batch: int = 8) -> Measurement:
    paper = paper_throughput(name, input_size)
    return Measurement(name, bench._title(name, input_size), input_size, batch, "cpu", "fp32", True, False,
                       (seconds,), paper.images_per_s if paper else None)


def test_ratios_pair_convnext_with_swin_of_the_same_size_and_resolution():
    found = ratios([measured("convnext_tiny", 224, 0.5), measured("swin_tiny_patch4_window7_224", 224, 0.8),
                    measured("convnext_base", 384, 1.0), measured("resnet50", 224, 0.3),
                    measured("swin_base_patch4_window7_224", 224, 2.0)])  # no ConvNeXt-B at 224, no Swin-B at 384
    assert len(found) == 1
    ratio, = found
    assert (ratio.convnext, ratio.swin, ratio.input_size) == ("ConvNeXt-T", "Swin-T", 224)
    assert ratio.measured == pytest.approx((8 / 0.5) / (8 / 0.8))
    assert ratio.paper == pytest.approx(1943.5 / 1325.6)


def test_ratios_at_384_use_swins_window_12_models():
    ratio, = ratios([measured("convnext_large", 384, 3.0), measured("swin_large_patch4_window12_384", 384, 4.0)])
    assert (ratio.convnext, ratio.swin) == ("ConvNeXt-L @384", "Swin-L @384")
    assert ratio.measured == pytest.approx(4.0 / 3.0) and ratio.paper == pytest.approx(211.4 / 157.9)


def test_the_csv_holds_one_row_per_model(fake_timings):
    fake_timings([0.5, 0.25, 0.5] + [0.4, 0.4, 0.2])
    report = benchmark([TINY, "resnet18"], batch=6, input_size=TINY_SIZE, device="cpu", warmup=0, repeats=3)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [row["model"] for row in rows] == [TINY, "resnet18"]
    assert float(rows[0]["images_per_s"]) == pytest.approx(6 / 0.5)
    assert float(rows[1]["images_per_s"]) == pytest.approx(6 / 0.4)
    assert rows[0]["batch"] == "6" and rows[0]["input_size"] == str(TINY_SIZE) and rows[0]["repeats"] == "3"
    assert rows[0]["paper_a100_images_per_s"] == "" and rows[0]["speedup"] == ""


def test_the_chart_shows_measured_and_paper_bars_and_the_ratio():
    from explorer.plots import throughput_chart

    measurements = (measured("convnext_tiny", 224, 0.5), measured("swin_tiny_patch4_window7_224", 224, 0.8))
    figure = throughput_chart(bench.BenchReport(measurements, tuple(ratios(measurements))))
    here, paper = figure.data
    assert here.name.startswith("here") and paper.name.startswith("paper, A100")
    assert list(here.y) == pytest.approx([8 / 0.5, 8 / 0.8]) and list(paper.y) == [1943.5, 1325.6]
    assert "1.60x here<br>1.47x paper" in figure.layout.annotations[0].text  # two lines: one overlapped


# --- device and precision -------------------------------------------------------------------------

@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_prefers_cuda_then_mps_then_the_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device(None).type == expected and pick_device("auto").type == expected
    assert available_devices()[-1] == "cpu"


def test_a_device_this_machine_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="no cuda device.*cpu"):
        pick_device("cuda")
    with pytest.raises(DeviceError, match="not a device"):
        pick_device("gpu")
    assert pick_device("cpu") == CPU


def test_a_cuda_index_beyond_the_devices_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match="cuda:0 to cuda:1"):
        pick_device("cuda:2")


def test_precision_names():
    assert [Precision.parse(name) for name in ("fp32", "tf32", "bf16")] == list(Precision)
    with pytest.raises(DeviceError, match="fp32, tf32, bf16"):
        Precision.parse("fp16")


def test_tf32_is_refused_on_the_cpu_and_is_not_its_default():
    with pytest.raises(DeviceError, match="TF32.*choose fp32 or bf16"):
        check_precision(Precision.TF32, CPU)
    assert device.default_precision(CPU) is Precision.FP32


@pytest.mark.parametrize("precision, dtype", [(Precision.FP32, torch.float32), (Precision.BF16, torch.bfloat16)])
def test_precision_on_the_cpu(precision, dtype):
    with precision_context(precision, CPU):
        assert torch.is_inference_mode_enabled()
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == dtype


@pytest.mark.parametrize("precision, flag", [(Precision.TF32, "tf32"), (Precision.FP32, "ieee")])
def test_cuda_tf32_flags_are_set_for_the_run_and_restored_after(precision, flag):
    switches = (torch.backends.cudnn, torch.backends.cudnn.conv, torch.backends.cuda.matmul)
    before = [switch.fp32_precision for switch in switches], torch.backends.cudnn.benchmark
    with device._cuda_flags(precision is Precision.TF32):  # the flags are plain settings: no GPU needed
        assert [switch.fp32_precision for switch in switches] == [flag] * 3
        assert torch.backends.cudnn.benchmark
    assert ([switch.fp32_precision for switch in switches], torch.backends.cudnn.benchmark) == before


# --- the prepared model: copy, channels-last, compile, cache --------------------------------------

def test_the_runner_works_on_a_channels_last_copy():
    source = tiny_net()
    run = runner(source, RunOptions(CPU), (1, 3, 16, 16))
    assert run.model is not source
    assert run.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert source[0].weight.is_contiguous()  # the shared model is untouched
    placed = run.place(torch.randn(1, 3, 16, 16))
    assert placed.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(run(placed), source(placed.contiguous()))


def test_compiled_models_are_cached_per_model_and_shape(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **_: compiled.append(model) or model)
    first, second = tiny_net(), tiny_net()
    options = RunOptions(CPU, compile=True)
    for _ in range(3):
        runner(first, options, (1, 3, 16, 16))
    assert len(compiled) == 1
    runner(first, options, (2, 3, 16, 16))
    runner(second, options, (1, 3, 16, 16))
    assert len(compiled) == 3


def test_the_prepared_cache_is_bounded():
    source = tiny_net()
    for batch in range(1, device.PREPARED_KEPT + 3):
        runner(source, RunOptions(CPU), (batch, 3, 8, 8))
    assert prepared_count() == device.PREPARED_KEPT


def test_torch_compile_gives_the_eager_results():
    source, batch = tiny_net(), torch.randn(2, 3, 16, 16)
    run = runner(source, RunOptions(CPU, compile=True), tuple(batch.shape))
    with torch.inference_mode():
        torch.testing.assert_close(run(run.place(batch)), source(batch), rtol=1e-4, atol=1e-5)


def test_predict_on_the_chosen_device_and_precision():
    prediction = predict(tiny_loaded(), photo(), topk=2, device="cpu", precision="bf16")
    assert prediction.device == "cpu" and len(prediction.top) == 2 and prediction.latency_ms > 0
    with pytest.raises(DeviceError, match="TF32"):
        predict(tiny_loaded(), photo(), precision="tf32", device="cpu")


@pytest.mark.parametrize("kind", available_devices())
def test_no_memory_growth_over_100_predictions(kind):
    loaded = tiny_loaded()
    predict(loaded, photo(), device=kind)
    cached, allocated = prepared_count(), _allocated(kind)
    for _ in range(100):
        predict(loaded, photo(), device=kind)
    assert prepared_count() == cached and _allocated(kind) == allocated


def _allocated(kind: str) -> int:
    """Bytes the device holds for tensors. The CPU allocator keeps no such counter, so there it is the
    storage of every tensor still alive (found by the garbage collector), each storage counted once."""
    if kind == "cuda":
        return torch.cuda.memory_allocated()
    if kind == "mps":
        return torch.mps.current_allocated_memory()
    gc.collect()
    storages = {}
    for item in gc.get_objects():
        # plain tensors and parameters only: the fake tensors torch.compile leaves behind hold no memory
        if type(item) in (torch.Tensor, nn.Parameter) and item.device.type == "cpu":
            storage = item.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def prepared_count() -> int:
    """How many prepared models the device module's bounded cache holds."""
    return len(device._PREPARED)


def test_the_cpu_memory_reading_sees_a_kept_tensor():
    """The reading the growth test relies on moves when a tensor is kept alive."""
    before = _allocated("cpu")
    kept = torch.ones(1 << 20)  # 4 MiB
    assert _allocated("cpu") - before >= kept.nbytes


# --- running out of memory ------------------------------------------------------------------------

def out_of_memory(*_args, **_kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")


def test_out_of_memory_in_a_benchmark_asks_for_a_smaller_batch(monkeypatch):
    runner(tiny_net(), RunOptions(CPU), (1, 3, 8, 8))  # something to give back
    monkeypatch.setattr(Runner, "__call__", out_of_memory)
    with pytest.raises(DeviceMemoryError, match="batch of 512 for convnext_shapes.*smaller batch, e.g. 256"):
        benchmark([TINY], batch=512, input_size=TINY_SIZE, device="cpu")
    assert prepared_count() == 0  # the prepared models on the device were let go
    monkeypatch.undo()
    assert benchmark([TINY], batch=2, input_size=TINY_SIZE, device="cpu", warmup=0, repeats=1).measurements


def test_out_of_memory_in_a_prediction_is_a_sentence(monkeypatch):
    monkeypatch.setattr(Runner, "__call__", out_of_memory)
    with pytest.raises(DeviceMemoryError, match="tiny at 32x32 does not fit in the memory of cpu"):
        predict(tiny_loaded(), photo(), device="cpu")


@pytest.mark.parametrize("message", ["[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough "
                                     "memory: you tried to allocate 1099511627776 bytes.",
                                     "MPS backend out of memory (MPS allocated: 9 GB)"])
def test_allocator_failures_worded_as_runtime_errors_count_as_out_of_memory(message):
    def fail():
        raise RuntimeError(message)

    with pytest.raises(DeviceMemoryError, match="smaller"):
        guard_memory(fail, CPU, "this", "try a smaller batch")


def test_other_runtime_errors_pass_through():
    def fail():
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        guard_memory(fail, CPU, "this", "try a smaller batch")


def test_the_app_reports_out_of_memory_and_keeps_serving(monkeypatch):
    from explorer.ui.bench import run_benchmark

    arguments = ([TINY], 1024, TINY_SIZE, "fp32", False, "cpu", False)
    monkeypatch.setattr(Runner, "__call__", out_of_memory)
    with pytest.raises(gr.Error, match="smaller batch"):
        run_benchmark(*arguments, progress=lambda *_: None)
    monkeypatch.undo()
    chart, summary, rows, csv_path = run_benchmark([TINY], 2, TINY_SIZE, "fp32", False, "cpu", False,
                                                   progress=lambda *_: None)
    assert rows[0][0] == TINY and "images/s" in summary
    with open(csv_path) as f:
        assert next(csv.reader(f))[0] == "model"

