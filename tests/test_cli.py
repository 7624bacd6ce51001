"""The public command line: `explorer.__main__.main` with a person's arguments, in this process (a new
Python for each command spent 5-7 s importing torch), and `python -m explorer` itself once."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m explorer ARGS`, run here: its exit code and what it wrote on stdout and stderr."""
    from explorer.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as leaving:  # argparse's refusal of an unknown option or command
            code = leaving.code if isinstance(leaving.code, int) else 1
    return subprocess.CompletedProcess(["python", "-m", "explorer", *args], code, out.getvalue(), err.getvalue())


def test_python_m_explorer_runs_as_a_person_types_it():
    result = subprocess.run([sys.executable, "-m", "explorer", "summary", "resnet50"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "stage 4" in result.stdout and "4.09" in result.stdout
    refused = subprocess.run([sys.executable, "-m", "explorer", "summary", "convnext_tinny"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "convnext_tiny" in refused.stderr and refused.stdout == ""


def test_summary_json_for_convnext_xl_at_384():
    result = run_cli("summary", "convnext_xlarge", "--input-size", "384", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) >= {"model", "input_size", "params", "gflops", "stages"}
    assert doc["model"] == "convnext_xlarge" and doc["input_size"] == 384
    assert isinstance(doc["params"], int) and abs(doc["params"] / 1e6 - 350.197) < 0.01
    assert abs(doc["gflops"] - 179.0) < 0.05
    assert [s["name"] for s in doc["stages"]] == ["stem", "stage 1", "stage 2", "stage 3", "stage 4", "head"]
    stage4 = doc["stages"][4]
    assert stage4["output_shape"] == [1, 2048, 12, 12] and stage4["blocks"] == 3
    assert stage4["activation_bytes"] == 2048 * 12 * 12 * 4
    assert set(stage4) == {"name", "output_shape", "blocks", "params", "gflops", "activation_bytes"}


def test_summary_table_for_a_person():
    result = run_cli("summary", "resnet50")
    assert result.returncode == 0, result.stderr
    assert "stage 4" in result.stdout and "4.09" in result.stdout


def test_unknown_model_suggests_close_names():
    result = run_cli("summary", "convnext_tinny")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "convnext_tiny" in lines[0]
    assert result.stdout == ""


def test_bad_input_size_is_one_line_and_exit_2():
    result = run_cli("summary", "convnext_tiny", "--input-size", "100")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "multiple of 32" in result.stderr


# PAPER-FACTS "counted" column of the roadmap, ResNet-50 regime
ROADMAP_COUNTED = {
    "resnet50": 4.089, "recipe": 4.089, "stage_ratio": 4.526, "patchify": 4.418, "depthwise": 2.350,
    "width": 5.268, "inverted": 4.644, "move_dw": 4.065, "kernel5": 4.097, "kernel7": 4.146, "kernel9": 4.210,
    "kernel11": 4.291, "gelu": 4.146, "fewer_act": 4.146, "fewer_norm": 4.146, "ln": 4.146, "convnext_t": 4.456,
    "swin_t": 4.491,
}


def test_roadmap_json_reproduces_the_counted_column():
    result = run_cli("roadmap", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [e["id"] for e in entries] == list(ROADMAP_COUNTED)
    for entry in entries:
        assert set(entry) == {"id", "title", "section", "params", "gflops", "paper_gflops", "paper_top1"}
        assert abs(entry["gflops"] - ROADMAP_COUNTED[entry["id"]]) <= 0.005, entry
    paper = {e["id"]: e["paper_gflops"] for e in entries}
    assert paper["ln"] == 4.46 and paper["convnext_t"] == 4.49 and paper["resnet50"] == 4.09


def test_roadmap_table_for_a_person_explains_the_two_odd_rows():
    """BN -> LN and ConvNeXt-T are the rows whose printed GFLOPs (4.46, 4.49) the count (4.146, 4.456)
    does not reproduce: the human table gives each a paragraph with both figures."""
    result = run_cli("roadmap")
    assert result.returncode == 0, result.stderr
    notes = {line.split(":")[0]: line for line in result.stdout.splitlines() if line.startswith(("ln:", "convnext_t:"))}
    assert set(notes) == {"ln", "convnext_t"}
    assert "4.46" in notes["ln"] and "4.146" in notes["ln"]
    assert "4.49" in notes["convnext_t"] and "4.456" in notes["convnext_t"]


def test_roadmap_table_of_the_resnet200_regime_runs_from_resnet200_to_convnext_b():
    result = run_cli("roadmap", "--regime", "resnet200")
    assert result.returncode == 0, result.stderr
    assert "ResNet-200" in result.stdout and "ConvNeXt-B" in result.stdout


def test_summary_of_a_roadmap_step():
    result = run_cli("summary", "roadmap:kernel7", "--json")
    assert result.returncode == 0, result.stderr
    assert abs(json.loads(result.stdout)["gflops"] - 4.146) <= 0.005


def test_unknown_roadmap_step_suggests_a_step():
    result = run_cli("summary", "roadmap:kernel8")
    assert result.returncode == 2 and "kernel" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_summary_of_the_ln_step_shows_the_papers_figure_and_why_it_differs():
    result = run_cli("summary", "roadmap:ln")
    assert result.returncode == 0, result.stderr
    assert "4.146 GFLOPs" in result.stdout and "4.46 GFLOPs" in result.stdout
    assert "slip" in result.stdout


def _png(path, size=(96, 80)):
    from PIL import Image

    Image.new("RGB", size, (200, 30, 30)).save(path)
    return str(path)


def test_predict_json_with_random_weights(tmp_path):
    from timm.data import ImageNetInfo

    result = run_cli("predict", "resnet18", _png(tmp_path / "red.png"), "--topk", "3", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"model", "weights", "device", "latency_ms", "top"}
    assert doc["model"] == "resnet18" and doc["weights"] == "random init" and doc["device"] == "cpu"
    assert len(doc["top"]) == 3 and doc["latency_ms"] > 0
    probs = [top["prob"] for top in doc["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    info = ImageNetInfo("imagenet-1k")
    assert all(top["label"] == info.index_to_description(top["index"]) for top in doc["top"])


def test_predict_refuses_a_file_that_is_not_an_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture")
    result = run_cli("predict", "resnet18", str(text))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_predict_refuses_a_missing_checkpoint(tmp_path):
    result = run_cli("predict", "resnet18", _png(tmp_path / "a.png"), "--weights", str(tmp_path / "nope.pth"))
    assert result.returncode == 2 and "no checkpoint file" in result.stderr


def test_cam_writes_a_float32_map_at_the_input_resolution(tmp_path):
    import numpy as np

    out = tmp_path / "cam.npy"
    result = run_cli("cam", "resnet18", _png(tmp_path / "a.png"), "--method", "gradcam", "--out", str(out))
    assert result.returncode == 0, result.stderr
    cam = np.load(out)
    assert cam.dtype == np.float32 and cam.shape == (224, 224)
    assert np.isfinite(cam).all() and 0 <= cam.min() and cam.max() <= 1


def test_cam_with_an_unknown_layer_names_the_valid_ones(tmp_path):
    result = run_cli("cam", "resnet18", _png(tmp_path / "a.png"), "--layer", "layer9", "--out",
                     str(tmp_path / "x.npy"))
    assert result.returncode == 2 and "layer4" in result.stderr
    assert not (tmp_path / "x.npy").exists()


def test_bench_json_and_csv_for_a_small_model(tmp_path):
    import csv
    import statistics

    table = tmp_path / "throughput.csv"
    result = run_cli("bench", "convnext_shapes", "--batch", "2", "--input-size", "64", "--warmup", "1",
                     "--repeats", "3", "--device", "cpu", "--baseline", "--csv", str(table), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"measurements", "ratios"} and doc["ratios"] == []
    measurement, = doc["measurements"]
    assert measurement["model"] == "convnext_shapes" and measurement["batch"] == 2
    assert measurement["input_size"] == 64 and measurement["precision"] == "fp32"
    assert len(measurement["seconds"]) == 3
    assert abs(measurement["images_per_s"] - 2 / statistics.median(measurement["seconds"])) < 1e-6
    assert measurement["plain_images_per_s"] > 0 and measurement["speedup"] > 0
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 1 and rows[0]["model"] == "convnext_shapes"
    assert abs(float(rows[0]["images_per_s"]) - measurement["images_per_s"]) < 0.01


def test_bench_text_goes_to_stderr():
    result = run_cli("bench", "convnext_shapes", "--batch", "1", "--input-size", "64", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "images/s" in result.stderr


def test_bench_refuses_tf32_on_the_cpu_in_one_line():
    result = run_cli("bench", "convnext_shapes", "--device", "cpu", "--dtype", "tf32")
    assert result.returncode == 2 and "TF32" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bench_refuses_an_empty_batch_in_one_line():
    result = run_cli("bench", "convnext_shapes", "--batch", "0")
    assert result.returncode == 2 and "at least 1 image" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_collapse_json_for_the_bundled_model():
    result = run_cli("collapse", "convnext_shapes", "assets/examples/star-0.png", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"model", "label", "weights", "blocks", "stages", "distances", "random"}
    assert len(doc["blocks"]) == len(doc["distances"]) == 5 and doc["random"] is False  # depths 1, 1, 2, 1; trained
    assert all(0 <= d <= 1 for d in doc["distances"])


def test_collapse_of_a_model_without_a_convnext_mlp_is_one_line():
    result = run_cli("collapse", "resnet18", "assets/examples/star-0.png")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no ConvNeXt MLP" in result.stderr
EXAMPLE_STAR = str(ROOT / "assets" / "examples" / "star-0.png")


def test_sanity_json_lists_the_cascade_from_the_original_down_to_the_stem():
    result = run_cli("sanity", "convnext_shapes", EXAMPLE_STAR, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["method"] == "gradcam" and doc["label"] == "star" and doc["layer"] == "stages.2"
    levels = doc["levels"]
    assert [set(level) for level in levels] == [{"randomized", "spearman", "ssim"}] * 7
    assert levels[0] == {"randomized": [], "spearman": 1.0, "ssim": 1.0}
    assert levels[-1]["randomized"] == ["head", "stage 4", "stage 3", "stage 2", "stage 1", "stem"]
    assert all(-1 <= level["spearman"] <= 1 and -1 <= level["ssim"] <= 1 for level in levels)


def test_faithfulness_json_has_the_six_areas():
    result = run_cli("faithfulness", "convnext_shapes", EXAMPLE_STAR, "--method", "saliency", "--steps", "5", "--json")
    person = run_cli("faithfulness", "convnext_shapes", EXAMPLE_STAR, "--method", "saliency", "--steps", "5")
    assert "random order" in person.stdout and "Sobel edges" in person.stdout  # the same figures as a table
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    areas = {"deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc", "edge_deletion_auc",
             "edge_insertion_auc"}
    assert areas <= set(doc) and all(0 <= doc[key] <= 1 for key in areas)
    assert doc["method"] == "saliency" and doc["steps"] == 5
    assert all(len(curves["deletion"]) == 6 for curves in doc["curves"].values())


def test_sanity_and_faithfulness_refuse_mistakes_in_one_line(tmp_path, capsys):
    from explorer.__main__ import main  # in this process: the messages come before any model runs

    for args, words in ((("faithfulness", "convnext_shapes", EXAMPLE_STAR, "--steps", "0"), "0 steps"),
                        (("sanity", "convnext_shapes", str(tmp_path / "none.png"), "--json"), "none.png")):
        assert main(list(args)) == 2
        out, err = capsys.readouterr()
        assert words in err and len(err.strip().splitlines()) == 1 and out == ""
