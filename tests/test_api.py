"""The public APIs. The web API is driven through gradio_client against a running app: each endpoint
answers with the command line's JSON document for the same input (the command run here, in this
process, by `explorer.__main__.main`), the listing holds the documented endpoints and nothing else,
and mistakes come back as the command line's sentences. The Python API imports nothing heavy, and
the README's examples of both run as written."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT

# The endpoints the README documents, typed here from it (not read from explorer/ui/api.py).
DOCUMENTED = {"/summary", "/roadmap", "/predict", "/explain", "/sanity", "/faithfulness", "/erf", "/flops",
              "/collapse"}
TIMINGS = {"seconds", "latency_ms"}  # measured afresh by each run; everything else must match
STAR = str(ROOT / "assets" / "examples" / "star-0.png")


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def command_json(capsys, *args: str):
    """The command line's JSON document, run in this process as `python -m explorer ARGS --json`."""
    from explorer.__main__ import main

    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def command_error(capsys, *args: str) -> str:
    """The command line's one-line message for a mistake, without its "error: " prefix."""
    from explorer.__main__ import main

    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err.removeprefix("error: ")


def differences(web, cli, where: str = "") -> list[str]:
    """Where two documents differ, timings left out; numbers equal to 1e-5 relative (two processes
    may sum floats in another order)."""
    if isinstance(cli, dict):
        if not isinstance(web, dict) or set(web) != set(cli):
            return [f"{where}: keys {sorted(web) if isinstance(web, dict) else web} != {sorted(cli)}"]
        return [line for key in cli if key not in TIMINGS for line in differences(web[key], cli[key], f"{where}.{key}")]
    if isinstance(cli, list):
        if not isinstance(web, list) or len(web) != len(cli):
            return [f"{where}: {web!r} != {cli!r}"]
        return [line for index, (a, b) in enumerate(zip(web, cli)) for line in differences(a, b, f"{where}[{index}]")]
    if isinstance(cli, float) and isinstance(web, (int, float)) and not isinstance(web, bool):
        return [] if math.isclose(web, cli, rel_tol=1e-5, abs_tol=1e-7) else [f"{where}: {web} != {cli}"]
    return [] if web == cli and type(web) is type(cli) else [f"{where}: {web!r} != {cli!r}"]


def test_differences_sees_a_changed_number_key_or_label():
    document = {"model": "m", "top": [{"index": 3, "label": "star", "prob": 0.9}], "seconds": 1.0}
    assert differences(document, {**document, "seconds": 2.0}) == []
    assert differences(document, {**document, "top": [{"index": 3, "label": "star", "prob": 0.91}]})
    assert differences(document, {**document, "top": [{"index": 3, "label": "ring", "prob": 0.9}]})
    assert differences(document, {**document, "extra": 1})
    assert differences({**document, "model": 1}, {**document, "model": "1"})


# --- the listing ------------------------------------------------------------------------------------

def test_the_listing_holds_the_documented_endpoints_only(client, app_url):
    import urllib.request

    listing = client.view_api(print_info=False, return_format="dict")
    assert set(listing["named_endpoints"]) == DOCUMENTED and listing["unnamed_endpoints"] == {}
    with urllib.request.urlopen(f"{app_url}gradio_api/info?all_endpoints=true", timeout=30) as response:
        everything = json.load(response)  # "undocumented" endpoints too: still callable by a client
    assert set(everything["named_endpoints"]) == DOCUMENTED and everything["unnamed_endpoints"] == {}


def test_the_endpoints_take_the_documented_parameters(client):
    listing = client.view_api(print_info=False, return_format="dict")["named_endpoints"]

    def parameters(name: str) -> dict:
        return {p["parameter_name"]: p["parameter_default"] if p["parameter_has_default"] else "required"
                for p in listing[name]["parameters"]}

    assert parameters("/summary") == {"model": "required", "input_size": None}
    assert parameters("/roadmap") == {"regime": "resnet50"}
    assert parameters("/predict") == {"image": "required", "model": "convnext_shapes", "weights": "default",
                                      "topk": 5, "checkpoint": None}
    assert parameters("/explain") == {"image": "required", "model": "convnext_shapes", "method": "gradcam",
                                      "layer": None, "target": None, "weights": "default", "checkpoint": None}
    assert [r["component"] for r in listing["/explain"]["returns"]] == ["Image", "Json"]


def test_usage_analytics_are_off_unless_a_person_opts_in():
    """In a fresh interpreter: the test session's own app_server sets the variable, so it cannot tell."""
    environment = {key: value for key, value in os.environ.items() if key != "GRADIO_ANALYTICS_ENABLED"}
    probe = "import app; print(app.demo.analytics_enabled, app.demo.config['analytics_enabled'])"
    default = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=environment, capture_output=True,
                             text=True, timeout=300)
    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["False", "False"]


# --- each endpoint against its command ------------------------------------------------------------------

# (endpoint, its keyword arguments, the command's arguments for the same input)
SAME_INPUT = [
    ("/summary", {"model": "convnext_tiny", "input_size": 384}, ["summary", "convnext_tiny", "--input-size", "384"]),
    ("/summary", {"model": "convnext_shapes"}, ["summary", "convnext_shapes"]),  # the model's own 320 px
    ("/roadmap", {"regime": "resnet200"}, ["roadmap", "--regime", "resnet200"]),
    ("/predict", {"image": STAR, "topk": 3}, ["predict", "convnext_shapes", STAR, "--topk", "3"]),
    ("/sanity", {"image": STAR, "method": "saliency"}, ["sanity", "convnext_shapes", STAR, "--method", "saliency"]),
    ("/faithfulness", {"image": STAR, "layer": "stages.1", "target": "ring", "steps": 4},
     ["faithfulness", "convnext_shapes", STAR, "--layer", "stages.1", "--target", "ring", "--steps", "4"]),
    ("/erf", {"noise": 2, "stage": "stages.2"}, ["erf", "convnext_shapes", "--noise", "2", "--stage", "stages.2"]),
    ("/flops", {"model": "convnext_shapes", "input_size": 128}, ["flops", "convnext_shapes", "--input-size", "128"]),
    ("/collapse", {"image": STAR}, ["collapse", "convnext_shapes", STAR]),
]


@pytest.mark.parametrize("endpoint, arguments, command", SAME_INPUT,
                         ids=[" ".join("STAR" if arg == STAR else arg for arg in case[2]) for case in SAME_INPUT])
def test_each_endpoint_answers_with_the_commands_document(client, capsys, endpoint, arguments, command):
    from gradio_client import handle_file

    sent = {key: handle_file(value) if key == "image" else value for key, value in arguments.items()}
    web = client.predict(**sent, api_name=endpoint)
    cli = command_json(capsys, *command)
    assert not differences(web, cli), differences(web, cli)


def test_explain_gives_the_overlay_and_the_cam_commands_document(client, capsys, tmp_path):
    from gradio_client import handle_file

    from explorer import attribute, load, open_image, overlay

    picture, web = client.predict(handle_file(STAR), method="hirescam", target="4", api_name="/explain")
    out = tmp_path / "map.npy"
    cli = command_json(capsys, "cam", "convnext_shapes", STAR, "--method", "hirescam", "--target", "4",
                       "--out", str(out))
    assert not differences(web, cli), differences(web, cli)
    cam = np.load(out)  # the document describes the map the command wrote
    assert list(cam.shape) == cli["size"] and list(np.unravel_index(cam.argmax(), cam.shape)) == cli["peak"]
    assert cli["target"] == 4 and cli["layer"] == "stages.2" and cli["method"] == "hirescam"
    expected = overlay(attribute(load("convnext_shapes"), open_image(STAR), "hirescam", None, "4"))
    shown = np.asarray(Image.open(picture).convert("RGB"))
    assert shown.shape == expected.shape and int(np.abs(shown.astype(int) - expected).max()) <= 2


# --- mistakes ---------------------------------------------------------------------------------------------

def test_mistakes_come_back_as_the_commands_sentences(client, capsys, tmp_path, app_server):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    cases = [
        ("/summary", {"model": "convnext_tinny"}, ["summary", "convnext_tinny"]),
        ("/roadmap", {"regime": "resnet100"}, []),  # the command's argparse refuses it before explorer sees it
        ("/predict", {"image": STAR, "model": "resnet18", "topk": 0}, ["predict", "resnet18", STAR, "--topk", "0"]),
        ("/explain", {"image": STAR, "method": "gradcam", "layer": "stages.9"},
         ["cam", "convnext_shapes", STAR, "--layer", "stages.9", "--out", str(tmp_path / "x.npy")]),
        ("/erf", {"noise": 0}, ["erf", "convnext_shapes", "--noise", "0"]),
        ("/predict", {"image": str(broken)}, ["predict", "convnext_shapes", str(broken)]),
    ]
    for endpoint, arguments, command in cases:
        sent = {key: handle_file(value) if key == "image" else value for key, value in arguments.items()}
        with pytest.raises(AppError) as caught:
            client.predict(**sent, api_name=endpoint)
        message = str(caught.value)
        assert "Traceback" not in message and message[-1] in ".?", (endpoint, message)
        if endpoint == "/roadmap":
            assert "resnet100" in message and "resnet50" in message and "resnet200" in message
        else:  # an image is named by its file name, not its folder, so the upload's message is the same
            assert message == command_error(capsys, *command), endpoint
    for weights, checkpoint, words in (("mine.pth", None, "Unknown weights 'mine.pth'"),
                                       ("file", None, "checkpoint upload")):
        with pytest.raises(AppError, match=re.escape(words)):
            client.predict(handle_file(STAR), weights=weights, checkpoint=checkpoint, api_name="/predict")
    assert client.predict(handle_file(STAR), api_name="/predict")["top"][0]["label"] == "star"  # still serving
    assert app_server.process.poll() is None


def test_empty_parameters_of_a_raw_http_call_mean_the_defaults_or_get_a_sentence():
    """gradio_client fills in defaults; a plain HTTP call can send null for any parameter."""
    import gradio as gr

    from explorer.ui import api

    plain = api.predict(STAR, topk=2)
    empty = api.predict(STAR, model=None, weights=None, topk=None)
    assert [top["label"] for top in empty["top"]] == [top["label"] for top in api.predict(STAR)["top"]]
    assert len(plain["top"]) == 2 and len(empty["top"]) == 5
    assert api.faithfulness(STAR, method="saliency", steps=None)["steps"] == 20
    for call, words in ((lambda: api.summary(None), "Name a model"), (lambda: api.flops(""), "Name a model"),
                        (lambda: api.predict(None), "Upload an image first")):
        with pytest.raises(gr.Error, match=words):
            call()


def test_a_checkpoint_upload_is_used_for_the_weights(client, capsys, tmp_path):
    from gradio_client import handle_file
    from safetensors.torch import save_file

    from explorer import load

    # random weights of this process: the server's own random init differs, so only the file can match
    state = {key: value.contiguous() for key, value in load("resnet18").model.state_dict().items()}
    file = tmp_path / "mine.safetensors"
    save_file(state, str(file))
    web = client.predict(handle_file(STAR), "resnet18", weights="file", checkpoint=handle_file(str(file)),
                         topk=3, api_name="/predict")
    cli = command_json(capsys, "predict", "resnet18", STAR, "--weights", str(file), "--topk", "3")
    assert cli["weights"].startswith("mine.safetensors")
    assert differences(web, cli) == []


# --- the Python API and the README ----------------------------------------------------------------------

def test_importing_the_python_api_loads_nothing_heavy():
    """In a fresh interpreter, so that no other test's imports can hide an eager one."""
    probe = ("import sys, explorer; print([m for m in ('torch', 'timm', 'gradio', 'PIL', 'numpy') if m in sys.modules])"
             "; from explorer import summarize, load, predict, attribute; print(summarize.__module__)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "explorer.analysis"]


def test_the_python_api_names_resolve_and_unknown_names_fail():
    import explorer

    for name in explorer.__all__:
        assert callable(getattr(explorer, name)), name
    assert set(explorer.__all__) <= set(dir(explorer))
    with pytest.raises(AttributeError, match="no attribute 'summary'"):
        explorer.summary  # noqa: B018


def readme_block(heading: str) -> str:
    """The first ```python block under a README heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_python_example_runs_as_written():
    result = subprocess.run([sys.executable, "-c", readme_block("Python API")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "star" in result.stdout and "4.46" in result.stdout  # ConvNeXt-T's GFLOPs; the bundled model's answer


def test_the_readme_web_api_example_runs_as_written(app_url):
    code = readme_block("Web API")
    assert 'Client("http://127.0.0.1:7860/")' in code
    result = subprocess.run([sys.executable, "-c", code.replace("http://127.0.0.1:7860/", app_url)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "star" in result.stdout and "4.46" in result.stdout
