"""Bad input and hostile files through every door: the app's handlers, the command line and the
running server. Each file gets a sentence that names the problem, or the correct result; never a
traceback, never a dead server, never code run from a pickle, never a file read from outside.

The corpus lives in `tests/badfiles.py`. Handlers are called through one small function each
(below), so a handler that gains a parameter is a one-line change here.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from explorer.inference import predict as predict_image
from explorer.ui.image_source import BRUSH_RADIUS, CANVAS_SIDE
from explorer.ui import image_source, inside
from explorer.ui import predict as predict_tab
from explorer.weights import SAFETENSORS_SUFFIX, TORCH_SUFFIXES, load
from tests.badfiles import (CHECKPOINT_MODEL, WORKS, Case, RunsCode, checkpoint_cases, encode, image_cases,
                            photo)
from tests.conftest import ROOT
from tests.test_cli import run_cli

MODEL = CHECKPOINT_MODEL  # resnet18: the smallest registry model, random init unless a file is given
QUICK_S = 5.0  # a refusal reads a header, never the pixels: far below what decoding a bomb takes
IMAGES = image_cases()
REFUSED_IMAGES = [case for case in IMAGES if case.expect != WORKS]
WORKING_IMAGES = [case for case in IMAGES if case.expect == WORKS]
MARKER = Path(tempfile.mkdtemp(prefix="explorer-pickle-")) / "code-ran"  # a hostile pickle creates it
CHECKPOINTS = checkpoint_cases(MARKER)


# --- one function per handler: the only place that knows their parameters -------------------------

def classify(image: str, source: str = "default", checkpoint: str | None = None):
    return predict_tab.classify(MODEL, source, checkpoint, image)


def show_activations(image: str):
    return inside.show_activations(MODEL, "default", None, image)


def explain(image: str):
    return inside.explain(MODEL, "default", None, image, "gradcam", None, None)


def side_by_side(image: str):
    return inside.side_by_side(image)


# What each handler's result is compared by: the top-5 scores, the activation maps, the Grad-CAM overlay.
def classify_result(image: str):
    scores, _seen, _info = classify(image)
    return scores


def activations_result(image: str):
    *figures, _info = show_activations(image)
    return [np.asarray(trace.z) for figure in figures for trace in figure.data]


def explain_result(image: str):
    overlay, scores, _classes, _info = explain(image)
    return overlay, scores


IMAGE_HANDLERS = {"classify": classify, "activations": show_activations, "explain": explain,
                  "side_by_side": side_by_side}
RESULTS = {"classify": classify_result, "activations": activations_result, "explain": explain_result}


def same(a, b) -> bool:
    """Equal results of one handler: scores to 1e-5, activations to 1e-4, overlays to 2 levels of 255."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(abs(a[key] - b[key]) <= 1e-5 * max(abs(a[key]), 1e-3) for key in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype == np.uint8:
        return a.shape == b.shape and int(np.abs(a.astype(int) - b).max()) <= 2
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5)


def assert_sentence(message: str, expect: str, name: str | None = None) -> None:
    """One line that names the problem (and the file), ends like a sentence and shows no internals."""
    assert re.search(expect, message), f"{message!r} does not match {expect!r}"
    assert "\n" not in message and "Traceback" not in message and message.rstrip().endswith((".", ")", "]"))
    assert "/tmp/" not in message, f"the message shows a server path: {message!r}"
    if name:
        assert name in message, f"{message!r} does not name {name}"


@pytest.fixture(scope="module", autouse=True)
def warm_model():
    load(MODEL)  # built once, so that timings below measure the refusals alone


@pytest.fixture
def written(tmp_path):
    """Write a case (or a PIL reference image, as PNG) into the test's folder; return the path as text."""
    def write(item: Case | Image.Image, name: str = "reference.png") -> str:
        if isinstance(item, Case):
            return str(item.write(tmp_path))
        item.save(tmp_path / name)
        return str(tmp_path / name)
    return write


# --- images through the handlers ------------------------------------------------------------------

@pytest.mark.parametrize("handler", list(IMAGE_HANDLERS))
@pytest.mark.parametrize("case", REFUSED_IMAGES, ids=str)
def test_bad_image_is_refused_quickly_with_a_sentence(case, handler, written):
    path = written(case)
    start = time.monotonic()
    with pytest.raises(gr.Error) as caught:
        IMAGE_HANDLERS[handler](path)
    assert time.monotonic() - start < QUICK_S
    assert_sentence(caught.value.message, case.expect, case.name)


@pytest.mark.parametrize("handler", list(RESULTS))
@pytest.mark.parametrize("case", WORKING_IMAGES, ids=str)
def test_odd_image_gives_the_result_of_the_picture_it_holds(case, handler, written):
    result = RESULTS[handler]
    got = result(written(case))
    assert same(got, result(written(case.reference))), f"{case.name} was not seen as its reference picture"
    if case.not_reference is not None:  # the comparison can tell the right picture from the wrong one
        assert not same(got, result(written(case.not_reference, "wrong.png")))


def test_no_image_at_all_is_a_sentence():
    for handler in IMAGE_HANDLERS.values():
        with pytest.raises(gr.Error, match="Upload an image first"):
            handler(None)


def _canvas(strokes: list[list[tuple[int, int]]]) -> dict:
    """A Sketchpad value as the Draw tab sends it: white, with black strokes."""
    composite = Image.new("RGB", (CANVAS_SIDE, CANVAS_SIDE), "white")
    pen = ImageDraw.Draw(composite)
    for stroke in strokes:
        pen.line(stroke, fill="black", width=2 * BRUSH_RADIUS)
    return {"background": Image.new("RGB", composite.size, "white"), "layers": [composite], "composite": composite}


DRAWINGS = {  # what a person may send from the canvas that is none of the eight shapes
    "blank": [],
    "scribble": [[(40, 300), (120, 60), (180, 350), (260, 90), (330, 320)]],
    "a face": [[(120, 140), (130, 150)], [(270, 140), (280, 150)], [(110, 260), (200, 310), (290, 260)]],
}


@pytest.mark.parametrize("handler", IMAGE_HANDLERS)
@pytest.mark.parametrize("drawn", DRAWINGS)
def test_a_blank_or_senseless_drawing_gets_its_scores_and_a_blank_one_a_sentence(drawn, handler, tmp_path):
    path = tmp_path / "drawing.png"
    image_source.drawing(_canvas(DRAWINGS[drawn]), True).save(path)  # as the page hands it to the upload
    *result, info = IMAGE_HANDLERS[handler](str(path))
    assert result
    if handler in ("classify", "explain"):  # the handlers that give scores say when there was nothing to score
        assert (image_source.BLANK in info) == (drawn == "blank")


def test_a_canvas_cleared_away_is_no_image():
    with pytest.raises(gr.Error, match="Upload an image first, draw one"):
        classify(image_source.drawing(None, True))


# --- checkpoints through the Predict tab's file option ----------------------------------------------

def test_the_hostile_payloads_do_run_code_when_unpickled_plainly(tmp_path):
    """Without this, "the marker was never created" would prove nothing."""
    import os
    import pickle

    for proof, payload in ((tmp_path / "touched", lambda p: RunsCode(Path.touch, p)),
                           (tmp_path / "shell", lambda p: RunsCode(os.system, f"touch {p}"))):
        pickle.loads(pickle.dumps(payload(proof), protocol=2))
        assert proof.exists()


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("picture") / "photo.png"
    photo(120, 90, seed=3).save(path)
    return str(path)


@pytest.mark.parametrize("case", CHECKPOINTS, ids=str)
def test_checkpoint_file_in_the_predict_tab(case, picture, tmp_path):
    path = str(case.write(tmp_path))
    if case.expect == WORKS:
        reference = tmp_path / "reference.safetensors"
        save_file({key: value.float() if value.is_floating_point() else value
                   for key, value in case.reference_state().items()}, reference)
        scores, _seen, info = classify(picture, "file", path)
        assert case.name in info
        assert same(scores, classify(picture, "file", str(reference))[0])
    else:
        with pytest.raises(gr.Error) as caught:
            classify(picture, "file", path)
        assert_sentence(caught.value.message, case.expect)
    assert not MARKER.exists(), f"unpickling {case.name} ran code"


def test_valid_requests_still_work_afterwards(picture, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # side by side tries the paper's weights first
    scores, _seen, _info = classify(picture)
    assert len(scores) == 5
    assert len(activations_result(picture)) > 0
    overlay, _ = explain_result(picture)
    assert overlay.ndim == 3
    gallery, text = side_by_side(picture)
    assert len(gallery) == 3 and "ConvNeXt-T" in text


# --- the command line: one representative file per kind ---------------------------------------------

def _by_name(cases: list[Case], name: str) -> Case:
    return next(case for case in cases if case.name == name)


# Each command line call costs seconds (a new Python with torch): one file per kind, the rest above.
CLI_IMAGES = ["half.jpg", "poster.png", "bomb-20000.png"]  # damaged, not an image we read, a bomb
CLI_CHECKPOINTS = ["touch-in-zip.pth", "random.bin", "nan.safetensors"]  # hostile, broken, mismatched


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    for name in CLI_IMAGES + ["exif-orientation-6.jpg", "strip-1x20000.png"]:
        _by_name(IMAGES, name).write(folder)
    for name in CLI_CHECKPOINTS:
        _by_name(CHECKPOINTS, name).write(folder)
    torch.manual_seed(5)
    save_file(load(MODEL).model.state_dict(), folder / "weights.safetensors")  # for deterministic results
    photo(120, 90, seed=3).save(folder / "photo.png")
    return folder


def assert_one_line_refusal(result, expect: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert_sentence(lines[0], expect)
    assert result.stdout == ""


@pytest.mark.parametrize("name", CLI_IMAGES)
def test_cli_predict_refuses_a_bad_image_in_one_line(name, cli_files):
    assert_one_line_refusal(run_cli("predict", MODEL, str(cli_files / name)), _by_name(IMAGES, name).expect)


@pytest.mark.parametrize("name", CLI_CHECKPOINTS)
def test_cli_refuses_a_bad_checkpoint_in_one_line(name, cli_files):
    result = run_cli("predict", MODEL, str(cli_files / "photo.png"), "--weights", str(cli_files / name))
    assert_one_line_refusal(result, _by_name(CHECKPOINTS, name).expect)
    assert not MARKER.exists()


def test_cli_cam_refuses_a_strip_and_writes_nothing(cli_files):
    out = cli_files / "cam.npy"
    result = run_cli("cam", MODEL, str(cli_files / "strip-1x20000.png"), "--out", str(out))
    assert_one_line_refusal(result, _by_name(IMAGES, "strip-1x20000.png").expect)
    assert not out.exists()


def test_cli_predicts_an_exif_rotated_photo_upright(cli_files):
    weights = cli_files / "weights.safetensors"
    result = run_cli("predict", MODEL, str(cli_files / "exif-orientation-6.jpg"), "--weights", str(weights),
                     "--topk", "5", "--json")
    assert result.returncode == 0, result.stderr
    case = _by_name(IMAGES, "exif-orientation-6.jpg")
    upright = predict_image(load(MODEL, weights), case.reference, topk=5)
    got = {guess["index"]: guess["prob"] for guess in json.loads(result.stdout)["top"]}
    assert got == pytest.approx({guess.index: guess.prob for guess in upright.top}, rel=1e-4)


# --- the running app: uploads, limits, files, address -------------------------------------------------

APP_IMAGES = [case for case in IMAGES if case.expect != WORKS] + [
    _by_name(IMAGES, name) for name in ("gray-16bit.png", "rgba.png", "cmyk.jpg", "float-nan-inf.tiff",
                                        "palette-transparent.png", "animated.gif", "exif-orientation-6.jpg")]
CHECKPOINT_SUFFIXES = (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX)  # what the upload button takes
APP_CHECKPOINTS = [case for case in CHECKPOINTS if case.expect != WORKS]


def unexpected_tracebacks(log: str) -> list[str]:
    """Tracebacks in the server's log other than gradio's own messages to a person (gr.Error: gradio
    prints those it raises itself, e.g. for a file type the upload button does not take)."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [block for block in blocks if not re.search(r"^gradio\.exceptions\.Error: ", block, re.MULTILINE)]


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def app_classify(client, image: str | None, source: str = "default", checkpoint: str | None = None) -> dict:
    """The top 5 through the public /predict endpoint (the page's own events are not in the API)."""
    from gradio_client import handle_file

    return client.predict(handle_file(image) if image else None, MODEL, source, 5,
                          handle_file(checkpoint) if checkpoint else None, api_name="/predict")


def test_the_running_app_gives_sentences_and_results_for_every_file(client, app_server, tmp_path):
    """Through gradio itself: an upload reaches the handler as it was sent (gradio's own image
    handling used to decode bombs and answer damaged files with a traceback)."""
    from gradio_client.exceptions import AppError

    for case in APP_IMAGES:
        path = str(case.write(tmp_path))
        if case.expect == WORKS:
            reference = tmp_path / f"{case.name}.reference.png"
            case.reference.save(reference)
            scores, reference_scores = app_classify(client, path)["top"], app_classify(client, str(reference))["top"]
            assert scores[0]["label"] == reference_scores[0]["label"], case.name
            assert same({c["label"]: c["prob"] for c in scores},
                        {c["label"]: c["prob"] for c in reference_scores}), case.name
        else:
            with pytest.raises(AppError) as caught:
                app_classify(client, path)
            assert_sentence(str(caught.value), case.expect, case.name)
    photo(120, 90).save(tmp_path / "photo.png")
    for case in APP_CHECKPOINTS:
        with pytest.raises(AppError) as caught:
            app_classify(client, str(tmp_path / "photo.png"), "file", str(case.write(tmp_path)))
        known = case.name.lower().endswith(CHECKPOINT_SUFFIXES)
        assert_sentence(str(caught.value), case.expect if known else r"^Invalid file type\. Please upload")
    assert not MARKER.exists()
    assert len(app_classify(client, str(tmp_path / "photo.png"))["top"]) == 5
    assert app_server.process.poll() is None
    assert not unexpected_tracebacks(app_server.log.read_text())


def _post_upload(url: str, size: int) -> tuple[int, str]:
    """POST a file of `size` zero bytes to gradio's upload route, streamed; (status, body)."""
    parts = url.split("/")[2].split(":")
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.pth"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        chunk = bytes(1 << 20)
        for start in range(0, size, len(chunk)):
            yield chunk[: min(len(chunk), size - start)]
        yield tail

    connection = http.client.HTTPConnection(parts[0], int(parts[1]), timeout=300)
    try:
        connection.request("POST", "/gradio_api/upload", body=body(),
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                    "Content-Length": str(len(head) + size + len(tail))})
    except (BrokenPipeError, ConnectionResetError):  # the server may answer before all is sent
        pass
    response = connection.getresponse()
    return response.status, response.read().decode(errors="replace")


def test_an_upload_over_the_limit_is_refused_and_the_server_keeps_serving(app_server):
    import app

    status, body = _post_upload(app_server.url, app.MAX_UPLOAD + (1 << 20))
    assert status == 413 and "maximum allowed size" in body
    status, body = _post_upload(app_server.url, 1 << 20)  # a file under the limit is taken
    assert status == 200 and "big.pth" in body
    with urllib.request.urlopen(app_server.url, timeout=30) as page:
        assert page.status == 200


def test_max_upload_fits_a_convnext_xl_checkpoint():
    import app
    from explorer.zoo import build_model

    state = build_model("convnext_xlarge.fb_in22k", device="meta").state_dict()  # the largest model
    largest = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    assert largest < app.MAX_UPLOAD < 2 * largest


REPO_FILES = [ROOT / "app.py", ROOT / "tests" / "conftest.py", ROOT / ".venv" / "pyvenv.cfg", ROOT / "README.md"]
# The example images too: gradio serves its cached copies of them, never the repository's files.
FORBIDDEN = ["/etc/passwd", "/proc/self/environ", "app.py", "../app.py", "./tests/conftest.py", ".venv/pyvenv.cfg",
             "%2e%2e/%2e%2e/etc/passwd", "/tmp/gradio/../../etc/passwd", "assets/examples/circle-0.png",
             *[str(path) for path in REPO_FILES]]


def _status(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("path", FORBIDDEN)
def test_no_file_outside_the_apps_own_is_served(path, app_url):
    status, body = _status(f"{app_url}gradio_api/file={path}")
    assert status in (403, 404), f"{path} was served ({status}): {body[:80]!r}"


def test_the_example_images_are_served(app_url):
    with urllib.request.urlopen(f"{app_url}config", timeout=30) as response:
        config = response.read().decode()
    served = sorted(set(re.findall(r'"(/[^"]+/circle-0\.png)"', config)))
    assert served, "the examples are not in the page's config"
    status, body = _status(f"{app_url}gradio_api/file={served[0]}")
    assert status == 200 and body.startswith(b"\x89PNG")


def _call(app_url: str, api_name: str, data: list) -> str:
    """Call an event over plain HTTP, as a hostile client would; the server's streamed answer."""
    request = urllib.request.Request(f"{app_url}gradio_api/call/{api_name}", json.dumps({"data": data}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{app_url}gradio_api/call/{api_name}/{event}", timeout=120) as response:
        return response.read().decode()


def test_a_client_cannot_hand_the_handlers_a_server_path(app_url, tmp_path):
    hostile = _by_name(CHECKPOINTS, "shell.pth").write(tmp_path)
    photo_path = tmp_path / "photo.png"
    photo_path.write_bytes(encode(photo(), "PNG"))
    for checkpoint, image in ((str(hostile), str(photo_path)), (None, "/etc/passwd"), (None, str(ROOT / "app.py"))):
        file_data = lambda path: path and {"path": path, "meta": {"_type": "gradio.FileData"}}  # noqa: E731
        source = "file" if checkpoint else "default"
        # the public endpoint, and the page's own event: kept out of the API listing, but reachable over HTTP
        for name, data in (("predict", [file_data(image), MODEL, source, 5, file_data(checkpoint)]),
                           ("page_classify", [MODEL, source, file_data(checkpoint), file_data(image)])):
            answer = _call(app_url, name, data)
            assert "event: error" in answer and "root:" not in answer and "argparse" not in answer, answer[:300]
    assert not MARKER.exists()


def test_the_app_binds_this_machine_only_by_default():
    import app

    assert app.command_line().parse_args([]).host == "127.0.0.1"


def _other_address() -> str | None:
    """This machine's address on its network, if it has one besides the loopback."""
    import psutil

    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return None


def test_the_running_app_is_not_reachable_from_the_network(app_url):
    address = _other_address()
    if address is None:
        pytest.skip("this machine has no network interface besides the loopback")
    port = int(app_url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=5).close()



def test_a_damaged_upload_in_the_page_gets_the_sentence(page, tmp_path):
    """In Chromium, as a person does it: the message appears and the tab still classifies afterwards."""
    from playwright.sync_api import expect

    from tests.test_browser import ERROR_TOAST

    page.get_by_role("tab", name="Predict").click()
    upload = page.locator("#predict-image input[type=file]")
    upload.set_input_files(str(_by_name(IMAGES, "half.png").write(tmp_path)))
    page.locator("#predict-run").click()
    expect(page.locator(ERROR_TOAST)).to_contain_text("half.png is damaged or truncated", timeout=90_000)
    page.reload()
    page.get_by_role("tab", name="Predict").click()
    upload.set_input_files(str(_by_name(IMAGES, "cmyk.jpg").write(tmp_path)))
    page.locator("#predict-run").click()
    expect(page.locator("#predict-info")).to_contain_text("ms for the forward pass", timeout=90_000)
