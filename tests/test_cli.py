"""The public command line, run as a person runs it."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


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
