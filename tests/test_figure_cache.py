"""The counted figures kept on disk: what comes back from the file equals a fresh count, a file of
another version or of another code is counted again, and a damaged or unwritable cache never stops
a count.

The fresh counts here are independent of the cache: timm's own modules counted with torch's
FlopCounterMode in the test, and the counting functions called past the cache (`.uncached`).
"""
from __future__ import annotations

import json
import shutil

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from explorer import analysis, compare, figure_cache, roadmap
from explorer.analysis import count_summary, summarize, typical_block
from explorer.compare import report
from explorer.roadmap import what_if


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(figure_cache.CACHE_ENV, str(folder))
    figure_cache.forget()
    yield folder
    figure_cache.forget()


def reread(monkeypatch, module, counter: str) -> None:
    """Forget what this process holds and make any new count fail: what follows comes from the file."""
    figure_cache.forget()

    def counted_again(*_args, **_kwargs):
        raise AssertionError("counted again instead of read from the file")
    monkeypatch.setattr(module, counter, counted_again)


def timm_count(name: str, size: int) -> tuple[int, float]:
    """(parameters, GFLOPs as the paper counts them) of timm's model, counted here on the meta device."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2e9


@pytest.mark.parametrize("name, size", [("convnext_tiny", 224), ("convnext_base", 384),
                                        ("swin_tiny_patch4_window7_224", 224), ("vit_small_patch16_224", 224)])
def test_a_summary_read_from_the_file_equals_a_fresh_count(cache, monkeypatch, name, size):
    fresh = count_summary.uncached(name, size)
    summarize(name, size)
    assert (cache / figure_cache.FILE_NAME).is_file()
    reread(monkeypatch, analysis, "summarize_model")
    stored = summarize(name, size)
    assert stored == fresh  # every row, every float exactly
    params, gflops = timm_count(name, size)
    assert stored.params == params
    assert stored.gflops == pytest.approx(gflops, rel=1e-12)


def test_a_block_comparison_read_from_the_file_equals_a_fresh_count(cache, monkeypatch):
    from timm.models.convnext import ConvNeXtBlock

    fresh = report.uncached("convnext", 192, 28)
    report("convnext", 192, 28)
    reread(monkeypatch, compare, "trace_layers")
    stored = report("convnext", 192, 28)
    assert stored == fresh
    with torch.device("meta"):
        block = ConvNeXtBlock(192)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        block(torch.empty(1, 192, 28, 28, device="meta"))
    assert stored.params == sum(p.numel() for p in block.parameters())
    assert stored.gflops == pytest.approx(counter.get_total_flops() / 2e9, rel=1e-12)


def test_a_roadmap_block_read_from_the_file_equals_a_fresh_trace(cache, monkeypatch):
    fresh = typical_block.uncached("roadmap:inverted", 3)
    typical_block("roadmap:inverted", 3)
    reread(monkeypatch, analysis, "trace_block")
    stored = typical_block("roadmap:inverted", 3)
    assert stored == fresh
    with torch.device("meta"):
        model = roadmap.build_step("inverted")
    assert stored.block == "stages.2.blocks.1"
    assert stored.params == sum(p.numel() for p in model.get_submodule(stored.block).parameters())


def test_a_what_if_read_from_the_file_equals_the_roadmaps_own_step(cache, monkeypatch):
    fresh = what_if.uncached("move_dw", "kernel_size", 9)
    what_if("move_dw", "kernel_size", 9)
    reread(monkeypatch, roadmap, "summarize_model")
    stored = what_if("move_dw", "kernel_size", 9)
    assert stored == fresh
    assert stored.gflops == pytest.approx(4.210, abs=5e-4)  # PAPER-FACTS: kernel 9 counted 4.210


def test_the_file_is_counted_again_when_the_versions_change(cache, monkeypatch):
    summarize("resnet18")
    before = json.loads((cache / figure_cache.FILE_NAME).read_text())
    counts = []
    original = analysis.summarize_model
    monkeypatch.setattr(analysis, "summarize_model", lambda *args: counts.append(args) or original(*args))
    figure_cache.forget()
    summarize("resnet18")
    assert counts == []  # same versions: read from the file

    newer = {**figure_cache.cache_key(), "torch": "99.0"}
    monkeypatch.setattr(figure_cache, "cache_key", lambda: newer)
    figure_cache.forget()
    summarize("resnet18")
    assert len(counts) == 1  # another torch: counted again
    after = json.loads((cache / figure_cache.FILE_NAME).read_text())
    assert before["key"]["torch"] != "99.0" and after["key"] == newer


def test_the_code_hash_follows_the_counting_modules_and_what_they_import(tmp_path, monkeypatch):
    copy = tmp_path / "explorer"
    shutil.copytree(figure_cache.HERE, copy)
    monkeypatch.setattr(figure_cache, "HERE", copy)
    fresh = figure_cache.code_hash.__wrapped__
    original = fresh()
    assert original == figure_cache.code_hash()  # the copy hashes as the package itself

    (copy / "plots.py").write_text((copy / "plots.py").read_text() + "\n# drawing only\n")
    assert fresh() == original  # drawing does not count

    blocks = (copy / "blocks.py").read_text()  # imported by the roadmap, not named in COUNTING_MODULES
    (copy / "blocks.py").write_text(blocks.replace("EXPANSION = 4", "EXPANSION = 3"))
    assert blocks != (copy / "blocks.py").read_text()
    assert fresh() != original


def test_a_changed_code_hash_counts_again(cache, monkeypatch):
    summarize("resnet18")
    counts = []
    original = analysis.summarize_model
    monkeypatch.setattr(analysis, "summarize_model", lambda *args: counts.append(args) or original(*args))
    changed = {**figure_cache.cache_key(), "code": "another"}
    monkeypatch.setattr(figure_cache, "cache_key", lambda: changed)
    figure_cache.forget()
    summarize("resnet18")
    assert len(counts) == 1


@pytest.mark.parametrize("damage", ["not json", "truncated", "wrong figures", "a folder"])
def test_a_damaged_file_is_ignored_and_written_again(cache, damage):
    fresh = count_summary.uncached("resnet18", 224)
    file = cache / figure_cache.FILE_NAME
    summarize("resnet18")
    text = file.read_text()
    if damage == "not json":
        file.write_bytes(b"\x00\xff not json at all")
    elif damage == "truncated":
        file.write_text(text[: len(text) // 2])
    elif damage == "wrong figures":  # the right key, an entry of the wrong shape
        document = json.loads(text)
        document["figures"] = {key: {"model": "resnet18"} for key in document["figures"]}
        file.write_text(json.dumps(document))
    else:  # unreadable and unwritable: a folder where the file should be
        file.unlink()
        file.mkdir()
    figure_cache.forget()
    assert summarize("resnet18") == fresh
    if damage != "a folder":
        figure_cache.forget()
        assert summarize("resnet18") == fresh
        assert json.loads(file.read_text())["key"] == figure_cache.cache_key()  # written again, whole


def test_a_cache_folder_that_cannot_be_made_only_means_counting_again(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(figure_cache.CACHE_ENV, str(blocker / "cache"))
    figure_cache.forget()
    try:
        assert summarize("resnet18") == count_summary.uncached("resnet18", 224)
    finally:
        figure_cache.forget()


def test_fill_counts_every_part_and_survives_one_that_fails(cache, monkeypatch):
    def broken():
        raise RuntimeError("a part that cannot be counted")
    parts = [("a broken part", broken), ("resnet18", lambda: summarize("resnet18")),
             ("a block", lambda: report("resnet", 96, 56))]
    monkeypatch.setattr(figure_cache, "views_to_fill", lambda: parts)
    summary, block = count_summary.uncached("resnet18", 224), report.uncached("resnet", 96, 56)
    seen = []
    assert figure_cache.fill(lambda done, total, what: seen.append((done, total, what))) == 3
    assert seen[-1] == (3, 3, "a block")
    reread(monkeypatch, analysis, "summarize_model")
    monkeypatch.setattr(compare, "trace_layers", analysis.summarize_model)
    assert summarize("resnet18") == summary and report("resnet", 96, 56) == block


def test_a_fill_that_ran_to_the_end_spares_the_next_start_its_child_process(cache, monkeypatch):
    """The file says when a fill of the same work list finished with no part failing; a server that
    finds it so only draws, without the child's counting (and its 5 s of imports)."""
    parts = [("resnet18", lambda: summarize("resnet18"))]
    monkeypatch.setattr(figure_cache, "views_to_fill", lambda: parts)
    assert not figure_cache.filled()
    figure_cache.fill()
    figure_cache.forget()  # as the next server reads it
    assert figure_cache.filled()

    spawned = []
    monkeypatch.setattr(figure_cache.subprocess, "Popen", lambda *args, **kwargs: spawned.append(args))
    figure_cache.fill_in_background().join(timeout=120)
    assert spawned == []

    parts.append(("resnet34", lambda: summarize("resnet34")))  # a new part: the list is not the one filled
    assert not figure_cache.filled()

    def broken():
        raise RuntimeError("a part that cannot be counted")
    parts.append(("a broken part", broken))
    figure_cache.fill()
    figure_cache.forget()
    assert not figure_cache.filled()  # a part failed: the next start tries again


def test_the_drawing_waits_before_each_part(cache, monkeypatch):
    """The server's drawing asks `wait()` (a quiet spell of the server) before every part it draws."""
    calls = []
    parts = [(name, lambda name=name: calls.append(name)) for name in ("one", "two", "three")]
    monkeypatch.setattr(figure_cache, "views_to_fill", lambda: parts)
    figure_cache.fill(wait=lambda: calls.append("wait"))
    assert calls == ["wait", "one", "wait", "two", "wait", "three"]


def test_tests_keep_their_figures_out_of_the_users_cache():
    from pathlib import Path

    assert not figure_cache.cache_root().resolve().is_relative_to(Path.home() / ".cache")


def test_counts_made_in_two_threads_at_once_equal_counts_made_alone():
    """The background fill counts while visitors' requests count: FlopCounterMode and the meta device
    must see only their own thread's operations, or wrong figures would be kept on disk."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["resnet50", "convnext_tiny", "swin_tiny_patch4_window7_224"]
    alone = {name: count_summary.uncached(name, 224) for name in names}
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda name: (name, count_summary.uncached(name, 224)), names * 2))
    for name, summary in together:
        assert summary == alone[name], name


def test_figures_another_process_wrote_are_read_when_missing_here(cache, monkeypatch):
    """The server reads what the background fill's child process writes while both run."""
    summarize("resnet34")  # this process has read and written the file
    here = figure_cache._STORE
    monkeypatch.setattr(figure_cache, "_STORE", figure_cache._Store())  # another process, with its own store
    expected = summarize("resnet18")
    monkeypatch.setattr(figure_cache, "_STORE", here)
    monkeypatch.setattr(analysis, "summarize_model", lambda *args: pytest.fail("counted again: the file was not read"))
    assert summarize("resnet18") == expected
    assert summarize("resnet34").model == "resnet34"


def _fill_processes(folder) -> list[int]:
    """Process ids of background fills (`python -m explorer.figure_cache`) counting into `folder`."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environment = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone meanwhile
            continue
        if command[1:3] == [b"-m", b"explorer.figure_cache"] and f"{figure_cache.CACHE_ENV}={folder}".encode() in environment:
            found.append(int(entry.name))
    return found


def test_the_background_fill_ends_when_its_server_ends(tmp_path):
    """A stopped server must not leave its fill counting on (each was 1.5 GB and minutes of CPU)."""
    import os
    import subprocess
    import sys
    import time

    folder = tmp_path / "cache"  # empty: the fill has minutes of counting ahead of it
    server = subprocess.Popen(
        [sys.executable, "-c", "import time; from explorer.figure_cache import fill_in_background; "
                               "fill_in_background(); time.sleep(600)"],
        cwd=figure_cache.HERE.parent, env={**os.environ, figure_cache.CACHE_ENV: str(folder)})
    deadline = time.monotonic() + 120
    while not _fill_processes(folder):
        assert time.monotonic() < deadline, "the fill's child process never started"
        time.sleep(0.2)
    server.kill()  # as abruptly as a server can end
    server.wait()
    deadline = time.monotonic() + 30
    while _fill_processes(folder):
        assert time.monotonic() < deadline, "the fill went on counting after its server ended"
        time.sleep(0.5)
