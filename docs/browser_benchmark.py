"""How fast the app answers a person in a browser: start-up, first page, and the clicks a class makes.

    .venv/bin/python docs/browser_benchmark.py [--cache DIR] [--clicks N] [--starts N] [--json FILE]

Starts `python app.py` on a free port, each time with the counted-figure cache in DIR (default: a new
empty folder, so the first start fills it):

1. cold: server start to first answer; the first page drawn while the background fill runs; how long
   the fill takes (the server prints a line when it is done);
2. warm (the cache filled), `--starts` times (medians reported): server start to first answer; the
   first page fully drawn; then, on the last start, clicks, each timed from the browser's input event
   to the view complete: Lessons Next through every lesson, Roadmap Next and Previous, the regime switch
   (resnet50 <-> resnet200), the Blocks stage chooser, and the Architecture pickers (family, model,
   input size, overlay).

"The view complete" is measured in the page: the watched element's text has changed, no visible
gradio status tracker is busy, and the page has not changed for `QUIET_MS`; the time reported is that
of the last change before the quiet spell. Headless Debian Chromium via Playwright, as the tests use.
The figures go to docs/benchmarks.md with the machine's load average, which this script prints.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CACHE_ENV = "CONVNEXT_EXPLORER_CACHE"  # explorer.figure_cache.CACHE_ENV (not imported: torch is not needed here)
FILL_DONE = "counted figures ready"  # what the server prints when the background fill is done
LAUNCHED = "To create a public link"  # what gradio prints when its launch is complete
STARTS = 3  # tries to start a server (see StartFailed)
QUIET_MS = 500
TIMEOUT_MS = 600_000
VIEWPORT = {"width": 1400, "height": 1000}
REGIMES = ("ResNet-200 -> ConvNeXt-B (appendix)", "ResNet-50 -> ConvNeXt-T (Figure 2)")  # the Roadmap's choices
STAGES = ("stage 2: C = 192, 28x28", "stage 3: C = 384, 14x14", "stage 4: C = 768, 7x7", "stage 1: C = 96, 56x56")

# In the page: when the person's input arrived, when the page last changed, whether a status tracker is busy.
WATCH = """
(() => {
  const b = window.__bench = {t0: null, lastChange: performance.now(), lastBusy: 0};
  for (const kind of ["pointerdown", "mousedown", "keydown"])
    document.addEventListener(kind, () => { if (b.t0 === null) b.t0 = performance.now(); }, true);
  new MutationObserver(() => { b.lastChange = performance.now(); })
    .observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true});
})();
"""
BUSY = """() => [...document.querySelectorAll('[data-testid="status-tracker"]')]
  .some(w => !w.classList.contains('hide') && w.getClientRects().length > 0)"""
ARM = "(selector) => { const b = window.__bench; b.t0 = null; b.selector = selector; " \
      "b.before = document.querySelector(selector)?.textContent ?? null; }"
SETTLED = """([quiet, timeout, ready]) => new Promise(resolve => {
  const b = window.__bench, busy = %s, started = performance.now();
  let changedAt = null;
  const tick = () => {
    const now = performance.now();
    const el = b.selector ? document.querySelector(b.selector) : null;
    if (changedAt === null && (b.selector ? el && el.textContent !== b.before : true)
        && (!ready || ready.every(s => document.querySelector(s)))) changedAt = now;
    if (busy()) b.lastBusy = now;
    const last = Math.max(b.lastChange, b.lastBusy, changedAt ?? 0);
    if (changedAt !== null && !busy() && now - last >= quiet) resolve(last - (b.t0 ?? 0));
    else if (now - started > timeout) resolve(-1);
    else setTimeout(tick, 5);
  };
  tick();
})""" % BUSY
FIRST_PAGE = ["#arch-headline p", "#arch-table td", "#arch-family .js-plotly-plot", "#arch-iso-chart .js-plotly-plot",
              "#arch-iso-text p"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


class StartFailed(RuntimeError):
    """The server answered, then gradio's launch gave up: under heavy load its own 3 s check of the
    address can time out ("When localhost is not accessible...")."""


class Server:
    """`python app.py` with its own cache folder; remembers when it started and first answered."""

    def __init__(self, root: Path, cache: Path, log: Path) -> None:
        self.port, self.log = free_port(), log
        env = {**os.environ, CACHE_ENV: str(cache), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.started = time.monotonic()
        with open(log, "w") as out:
            self.process = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=root,
                                            stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}/"
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2):
                    break
            except OSError:
                time.sleep(0.05)
        self.answered = time.monotonic()
        while LAUNCHED not in log.read_text():  # gradio's own check of the address, after it answered
            if self.process.poll() is not None:
                raise StartFailed(log.read_text()[-400:])
            time.sleep(0.1)

    def wait_for_fill(self, timeout_s: float = 3600) -> float:
        """Seconds from the server's first answer until the background fill printed that it is done."""
        while time.monotonic() - self.answered < timeout_s:
            if FILL_DONE in self.log.read_text():
                return time.monotonic() - self.answered
            time.sleep(0.5)
        raise RuntimeError("the background fill did not finish")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def start(root: Path, cache: Path, log: Path) -> Server:
    for attempt in range(STARTS):
        try:
            return Server(root, cache, log)
        except StartFailed as failure:
            print(f"start {attempt + 1} failed after answering: {failure}", flush=True)
    raise RuntimeError(f"the server did not start in {STARTS} tries")


def settle(page, selector: str | None = None, ready: list[str] | None = None) -> float:
    """Seconds from the last input event (or the page's start) until the view is complete."""
    ms = page.evaluate(SETTLED, [QUIET_MS, TIMEOUT_MS, ready])
    if ms < 0:
        raise RuntimeError(f"the view did not settle within {TIMEOUT_MS / 1000:.0f} s ({selector})")
    return ms / 1000


def timed(page, selector: str, action) -> float:
    """Do `action()` (a click or a key press), then time it to the view complete."""
    page.evaluate(ARM, selector)
    action()
    return settle(page, selector)


def open_page(browser, url: str):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.add_init_script(WATCH)
    page.goto(url)
    first = settle(page, None, FIRST_PAGE)  # from the navigation's start: performance.now() is 0 there
    return page, first


def radio(page, label: str):
    """The visible choice `label` of a gradio Radio."""
    return page.locator(f'[data-testid="{label}-radio-label"]:visible')


def choose(page, elem_id: str, option: str):
    """Open a dropdown (not timed) and return the click on `option` (timed)."""
    page.locator(f"#{elem_id} input").click()
    return page.get_by_role("option", name=option, exact=True).click


def clicks(page, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}

    def add(kind: str, seconds: float) -> None:
        times.setdefault(kind, []).append(seconds)
        print(f"  {kind}: {seconds:.3f} s", flush=True)

    page.get_by_role("tab", name="Lessons").click()
    page.locator("#lesson-heading p").wait_for()
    settle(page)
    for _ in range(9):
        add("lesson Next", timed(page, "#lesson-heading", page.locator("#lesson-next").click))

    page.get_by_role("tab", name="Roadmap").click()
    page.locator("#roadmap-text h3").wait_for()
    settle(page)
    for _ in range(rounds):
        add("roadmap Next", timed(page, "#roadmap-text", page.locator("#roadmap-next").click))
    for _ in range(rounds):
        add("roadmap Previous", timed(page, "#roadmap-text", page.locator("#roadmap-prev").click))
    for _ in range(rounds):
        for regime in REGIMES:
            add("regime switch", timed(page, "#roadmap-text", radio(page, regime).click))

    page.get_by_role("tab", name="Blocks").click()
    page.locator("#blocks-table table").wait_for()
    settle(page)
    for _ in range(rounds):
        for stage in STAGES:
            add("Blocks stage", timed(page, "#blocks-table", radio(page, stage).click))

    page.get_by_role("tab", name="Architecture").click()
    settle(page)
    for _ in range(rounds):
        for family in ("Swin", "ResNet", "ConvNeXt"):
            add("Architecture family", timed(page, "#arch-headline", radio(page, family).click))
        for model in ("ConvNeXt-B (IN-1K head)", "ConvNeXt-T (IN-1K head)"):
            add("Architecture model", timed(page, "#arch-headline", choose(page, "arch-model", model)))
        for size in ("384", "224"):
            add("Architecture input size", timed(page, "#arch-headline", choose(page, "arch-size", size)))
        for other in ("Swin: Swin-T", "none"):
            add("Architecture overlay", timed(page, "#arch-headline", choose(page, "arch-compare", other)))
    return times


def row(kind: str, seconds: list[float]) -> dict:
    return {"what": kind, "clicks": len(seconds), "median_s": round(statistics.median(seconds), 3),
            "worst_s": round(max(seconds), 3)}


def start_and_open(browser, root: Path, cache: Path, log: Path):
    """Start a server, open its first page: the server, the page, seconds from start to the first
    answer, and seconds from there until the first page is fully drawn."""
    server = start(root, cache, log)
    page, first = open_page(browser, server.url)
    return server, page, round(server.answered - server.started, 2), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="cache folder (default: a new empty one, filled by the first start)")
    parser.add_argument("--clicks", type=int, default=3, help="rounds of each kind of click (default 3)")
    parser.add_argument("--starts", type=int, default=1,
                        help="starts on the filled cache, each timed to its first page; the clicks use the last "
                             "(default 1; the medians are reported)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout whose app.py to start (default: this one; another, to compare versions)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    cache = args.cache or Path(tempfile.mkdtemp(prefix="explorer-bench-cache-"))
    logs = Path(tempfile.mkdtemp(prefix="explorer-bench-logs-"))
    result = {"cpus": os.cpu_count(), "load_average_at_start": load_average(), "cache": str(cache)}
    print(f"load average (1, 5, 15 min): {result['load_average_at_start']}; cache {cache}", flush=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        was_filled = (cache / "counted-figures.json").is_file()
        server, page, result["first_start_to_answer_s"], first = start_and_open(browser, args.root, cache,
                                                                                 logs / "first.log")
        result["first_start_first_page_s"] = round(first, 2)
        print(f"first start (cache {'already filled' if was_filled else 'empty'}): answered after "
              f"{result['first_start_to_answer_s']} s, first page drawn {first:.2f} s later", flush=True)
        page.context.close()
        if (args.root / "explorer" / "figure_cache.py").is_file():  # versions before it count on every start
            result["fill_s"] = round(server.wait_for_fill(), 1)
            print(f"background fill done {result['fill_s']} s after the first answer", flush=True)
        server.stop()

        starts = []  # (start to first answer, first page) of each start on the filled cache
        for number in range(args.starts):
            if starts:  # each start but the last is only timed
                page.context.close()
                server.stop()
            server, page, answered, first = start_and_open(browser, args.root, cache, logs / f"start-{number}.log")
            starts.append((answered, round(first, 2)))
            print(f"start {number + 2}{' (cache filled)' if 'fill_s' in result else ''}: answered after {answered} s, "
                  f"first page fully drawn {first:.2f} s later", flush=True)
        result["start_to_answer_s"], result["first_page_s"] = (statistics.median(s) for s in zip(*starts))
        result["starts"] = starts
        result["load_average_before_clicks"] = load_average()
        times = clicks(page, args.clicks)
        result["clicks"] = [row(kind, seconds) for kind, seconds in times.items()]
        result["load_average_at_end"] = load_average()
        page.context.close()
        server.stop()
        browser.close()
    print(f"\n{'view':<26} {'clicks':>6} {'median s':>9} {'worst s':>8}")
    for line in result["clicks"]:
        print(f"{line['what']:<26} {line['clicks']:>6} {line['median_s']:>9.3f} {line['worst_s']:>8.3f}")
    print(f"load average at the end: {result['load_average_at_end']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
