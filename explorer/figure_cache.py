"""Counted figures kept on disk: every count of a model that does not change is done once per
installed version, not once per click or per server start.

A function that counts (a model's per-stage summary, a block's layers, a what-if sweep point) is
marked `@persisted`. Its results live in one JSON file under the user's cache folder
(`$CONVNEXT_EXPLORER_CACHE`, else `$XDG_CACHE_HOME/convnext-explorer`, else
`~/.cache/convnext-explorer`), keyed by the versions of Python, torch and timm and by a hash of the
source of every `explorer` module the counting functions import. A file with another key, or one that
cannot be read, is ignored and overwritten; a folder that cannot be written only means the figures
are counted again next time.

`fill()` counts everything the app's views show (every registry model at its default size, the
paper's family, both roadmap regimes, the blocks at each stage, the lessons' live parts);
`fill_in_background()` does it in a child process when the server starts (unless the file says a
fill of the same work list finished), then draws the views.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import platform
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

CACHE_ENV = "CONVNEXT_EXPLORER_CACHE"  # the cache folder (default: the user's cache folder)
FILE_NAME = "counted-figures.json"
MAX_ENTRIES = 4096  # about 1 KB each; beyond this, figures are counted but not kept
SAVE_EVERY_S = 2.0  # while filling, how often the file is written
FILL_NICENESS = 10  # the background fill's scheduling priority (a Unix nice value: lower priority)
PARENT_CHECK_S = 1.0  # how often the fill's child process checks that its server still runs
HERE = Path(__file__).resolve().parent
COUNTING_MODULES = ("analysis", "compare", "roadmap")  # where `@persisted` counts are: roots of the code hash


def cache_root() -> Path:
    """The folder of every disk cache of the app (counted figures here, receptive fields in `erf/`)."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "convnext-explorer"


def cache_file() -> Path:
    return cache_root() / FILE_NAME


# --- the key ------------------------------------------------------------------------------------

def _imported_modules(source: str) -> set[str]:
    """Names of the `explorer` modules a source file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "explorer":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("explorer."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("explorer.")}
    return found


@functools.cache
def code_hash() -> str:
    """A hash of this module, the counting modules and every `explorer` module they import, directly
    or not (this module's own imports are the views it fills, which count nothing themselves)."""
    seen: dict[str, bytes] = {"figure_cache": (HERE / "figure_cache.py").read_bytes()}
    waiting = list(COUNTING_MODULES)
    while waiting:
        name = waiting.pop()
        file = HERE / f"{name}.py"
        if name in seen or not file.is_file():
            continue
        seen[name] = file.read_bytes()
        waiting += _imported_modules(seen[name].decode())
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name] + b"\0")
    return digest.hexdigest()[:20]


def package_versions() -> dict[str, str]:
    """The versions of Python, torch and timm that every disk cache of the app is keyed by, read from
    the installed packages' metadata: importing timm for its `__version__` took 2.5 s of the first
    page's drawing."""
    return {"python": platform.python_version(), "torch": version("torch"), "timm": version("timm")}


@functools.cache
def cache_key() -> dict[str, str]:
    """What the stored figures depend on besides the arguments of each count."""
    return {**package_versions(), "code": code_hash()}


# --- to and from JSON ---------------------------------------------------------------------------

def _to_json(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    return value


def _from_json(kind, value):
    """`value` (plain JSON) as type `kind`: dataclasses, tuples and lists of them, plain values."""
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _from_json(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)})
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        return [_from_json(args[0], v) for v in value]
    return value


# --- the store ----------------------------------------------------------------------------------

class _Store:
    """The counted figures of this process, loaded from and written to `cache_file()`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.deferred = threading.local()  # a thread that fills writes every SAVE_EVERY_S, not per entry
        self._reset(None)

    def _reset(self, file: Path | None) -> None:
        """Hold nothing yet of `file` (None: of no file)."""
        self.loaded_from = file
        self.stored: dict[str, object] = {}  # entry key -> JSON value, as on disk
        self.values: dict[str, object] = {}  # entry key -> the value, decoded
        self.dirty = False
        self.read_version: tuple[int, int] | None = None  # (mtime, size) of the file when last read
        self.filled: str | None = None  # the work list of the last fill() that ran without a failure

    def _load(self) -> None:
        """Read the file once per cache location; anything unreadable or keyed otherwise is ignored."""
        file = cache_file()
        if self.loaded_from == file:
            return
        self._reset(file)
        self._read_newer()

    def _read_newer(self) -> None:
        """Take in what another process (the background fill) wrote since the file was last read."""
        try:
            stat = self.loaded_from.stat()
            if (stat.st_mtime_ns, stat.st_size) == self.read_version:
                return
            self.read_version = (stat.st_mtime_ns, stat.st_size)
            document = json.loads(self.loaded_from.read_text())
            if document["key"] == cache_key() and isinstance(document["figures"], dict):
                self.stored = {**document["figures"], **self.stored}
                self.filled = document.get("filled") or self.filled
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not there yet, damaged, or written by another version: count again

    def get(self, key: str, kind) -> tuple[bool, object]:
        with self.lock:
            self._load()
            if key in self.values:
                return True, self.values[key]
            if key not in self.stored:
                self._read_newer()
            if key in self.stored:
                try:
                    self.values[key] = _from_json(kind, self.stored[key])
                    return True, self.values[key]
                except (KeyError, TypeError, ValueError, AttributeError):
                    del self.stored[key]  # a damaged entry: counted again
        return False, None

    def put(self, key: str, value) -> None:
        with self.lock:
            self._load()
            if len(self.stored) >= MAX_ENTRIES:
                return
            self.stored[key], self.values[key], self.dirty = _to_json(value), value, True
            if not getattr(self.deferred, "on", False):
                self.save()

    def save(self) -> None:
        """Write the file (atomically: another process reads the old file or the new, never half)."""
        with self.lock:
            if not self.dirty:
                return
            file = cache_file()
            if self.loaded_from == file:
                self._read_newer()  # keep what another process wrote meanwhile
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
                partial = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                partial.write_text(json.dumps({"key": cache_key(), "filled": self.filled, "figures": self.stored}))
                partial.replace(file)
                self.dirty = False
            except OSError:  # a read-only home: the figures are still good, only not kept
                pass

    def forget(self) -> None:
        """Drop what this process holds; the next lookup reads the file again."""
        with self.lock:
            self._reset(None)

    def holds(self, work: str) -> bool:
        """Whether a fill of `work` (its parts' names) ran to the end, with no part failing, into the file."""
        with self.lock:
            self._load()
            self._read_newer()
            return self.filled == work

    def mark_filled(self, work: str) -> None:
        with self.lock:
            self._load()
            if self.filled != work:
                self.filled, self.dirty = work, True


_STORE = _Store()


def persisted(count: Callable) -> Callable:
    """Keep `count`'s results (a dataclass, or tuples of them) on disk, keyed by its arguments (plain
    JSON values). An exception is not kept: the next call counts again."""
    name = f"{count.__module__}.{count.__qualname__}"
    signature = inspect.signature(count)
    kind = None

    @functools.wraps(count)
    def cached(*args, **kwargs):
        nonlocal kind
        if kind is None:
            kind = typing.get_type_hints(count)["return"]
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()  # f(x) and f(x, default) are one entry
        key = json.dumps([name, *call.arguments.values()])
        found, value = _STORE.get(key, kind)
        if found:
            return value
        value = count(*call.args, **call.kwargs)
        _STORE.put(key, value)
        return value

    cached.uncached = count  # the count itself, for tests that compare the two
    return cached


def forget() -> None:
    """Forget what this process has loaded (tests: after pointing CACHE_ENV elsewhere)."""
    _STORE.forget()


# --- filling ------------------------------------------------------------------------------------

def views_to_fill() -> list[tuple[str, Callable[[], object]]]:
    """(what, a call) for everything the app's views count, the first page's views first. Each call
    draws its view, so a server whose figures are already on disk only draws (`explorer.views`)."""
    from explorer.compare import STAGES
    from explorer.layouts import TRIOS
    from explorer.lesson_panels import kernel_fields, precount_lessons
    from explorer.paper import family_point, model_figures
    from explorer.roadmap import REGIMES, steps
    from explorer.views import architecture, blocks_at, isotropic, roadmap_step
    from explorer.zoo import get_spec, model_names

    work: list[tuple[str, Callable[[], object]]] = [
        ("the family chart", lambda: [family_point(figure) for figure in model_figures()]),
        *[(f"the isotropic comparison, {size}", functools.partial(isotropic, size)) for size in TRIOS],
        ("the roadmap's first step", functools.partial(roadmap_step, "resnet50", 1)),
        ("the blocks at stage 1", functools.partial(blocks_at, 1)),
    ]
    work += precount_lessons()
    for regime in REGIMES:
        work += [(f"the {regime} roadmap, step {number}", functools.partial(roadmap_step, regime, number))
                 for number in range(1, len(steps(regime)) + 1)]
    work += [(f"the blocks at stage {stage}", functools.partial(blocks_at, stage)) for stage in STAGES]
    work += [(f"the architecture of {name}", functools.partial(architecture, name, get_spec(name).input_size, ""))
             for name in model_names()]  # each model as the Architecture tab's pickers first show it
    return work + [("the kernel lesson's receptive fields", kernel_fields)]  # measured, the longest part


def fill(report: Callable[[int, int, str], None] | None = None, wait: Callable[[], None] | None = None) -> int:
    """Count everything `views_to_fill` lists that is not on disk yet; returns how many parts ran.
    A part that fails is skipped (the view that needs it will say why when it is opened). `wait()`, if
    given, is called before each part (the server's drawing waits for a quiet spell)."""
    work = views_to_fill()
    _STORE.deferred.on = True
    last_save, failed = time.monotonic(), False
    try:
        for done, (what, call) in enumerate(work):
            if wait:
                wait()
            try:
                call()
            except Exception as error:  # noqa: BLE001 - one bad part must not stop the rest
                print(f"counted figures: {what} failed: {error}", file=sys.stderr)
                failed = True
            if report:
                report(done + 1, len(work), what)
            if time.monotonic() - last_save > SAVE_EVERY_S:
                _STORE.save()
                last_save = time.monotonic()
        if not failed:
            _STORE.mark_filled(_names(work))
    finally:
        _STORE.deferred.on = False
        _STORE.save()
    return len(work)


def _names(work: list[tuple[str, Callable[[], object]]]) -> str:
    """A fill's work list, by its parts' names, as the file records it."""
    return hashlib.sha256("\n".join(what for what, _call in work).encode()).hexdigest()[:20]


def filled() -> bool:
    """Whether the file holds every part `views_to_fill` lists: a fill of this work list ran to the end
    with no part failing (a new lesson choice, say, makes the next start count again)."""
    return _STORE.holds(_names(views_to_fill()))


def fill_in_background(wait: Callable[[], None] | None = None) -> threading.Thread:
    """Count in a child process (`python -m explorer.figure_cache`, at a lower scheduling priority)
    unless the file is `filled()`, then draw the views in this one from the file, each part after
    `wait()` returns; prints one line to stderr when done.

    The counting runs in its own process because torch's FlopCounterMode installs module hooks for
    the whole process while it counts: a gradient taken meanwhile in another thread (an attribution
    map, a receptive field) fails with "A leaf node was passed to _will_engine_execute_node"."""
    def run() -> None:
        start = time.monotonic()
        if not filled():  # a filled file spares this start the child's 5 s of imports
            child = subprocess.Popen([sys.executable, "-m", "explorer.figure_cache", str(os.getpid())],
                                     cwd=HERE.parent)
            try:
                os.setpriority(os.PRIO_PROCESS, child.pid, FILL_NICENESS)
            except (AttributeError, OSError):
                pass
            child.wait()
        parts = fill(wait=wait)  # here only drawing: the counts come from the file (or, if it could not be written, again)
        print(f"counted figures ready: {parts} parts in {time.monotonic() - start:.1f} s ({cache_file()})",
              file=sys.stderr, flush=True)

    thread = threading.Thread(target=run, name="figure-cache-fill", daemon=True)
    thread.start()
    return thread


def _end_with(parent: int) -> None:
    """End this process when `parent`, the server that started it, has ended (this one is then adopted
    by another, or already was when `parent` ended before it got here): a stopped server's fill used
    to count on for minutes, at 1.5 GB, one more for each start."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        with _STORE.lock:  # not in the middle of writing the file
            os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":  # the background fill's child process (see fill_in_background)
    from explorer.figure_cache import _end_with, fill as fill_the_file  # the module the counting functions use

    _end_with(int(sys.argv[1]))  # the server's process id
    fill_the_file()
