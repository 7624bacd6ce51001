"""Deep links: the query parameters that open a view of the app, read and written (DESIGN.md, "Deep links").

`?tab=roadmap&regime=resnet200&step=kernel7` opens the Roadmap at the 7x7 step of the ResNet-200 regime;
`?tab=architecture&model=convnext_xlarge&size=384&overlay=swin_base_patch4_window7_224` opens a model.
`read_link` turns what a browser sent into a `View` and a sentence for every value it had to ignore (a
link is typed by people: a wrong value is skipped, never an error); `address` writes a view back as the
query string that reopens it. Nothing here imports gradio.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from explorer.lessons import lessons
from explorer.roadmap import steps
from explorer.zoo import ExplorerError, check_input_size, specs_by_family

# tab id (the link's name) -> the label on the page, in the page's order
TABS = {"architecture": "Architecture", "roadmap": "Roadmap", "lessons": "Lessons", "blocks": "Blocks",
        "predict": "Predict", "inside": "Look inside", "erf": "Receptive field", "counting": "Counting",
        "collapse": "Feature collapse", "bench": "Benchmark"}
TAB_ALIASES = {"benchmark": "bench"}  # the name on the page, where it differs from the tab's id
REGIMES = ("resnet50", "resnet200")
STAGES = (1, 2, 3, 4)
PARAMETERS = ("tab", "model", "size", "overlay", "regime", "step", "lesson", "stage")
# which parameters belong to which tab: the address of a view names only its own
TAB_PARAMETERS = {"architecture": ("model", "size", "overlay"), "roadmap": ("regime", "step"),
                  "lessons": ("lesson",), "blocks": ("stage",)}


@dataclass(frozen=True)
class View:
    """What a link asks for; None where it asks nothing (the page keeps its default)."""

    tab: str | None = None  # a key of TABS
    model: str | None = None  # a registry name (Architecture)
    size: int | None = None  # input size in pixels (Architecture)
    overlay: str | None = None  # a second model drawn over the first; "" for none (Architecture)
    regime: str | None = None  # one of REGIMES (Roadmap)
    step: int | None = None  # 1-based position in the regime's steps (Roadmap)
    lesson: int | None = None  # 1-based, as the page counts lessons
    stage: int | None = None  # 1-4 (Blocks)
    ignored: list[str] = field(default_factory=list)  # a sentence per value that was skipped


def _model_names() -> set[str]:
    return {spec.name for specs in specs_by_family().values() for spec in specs}


def _whole(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _tab(value: str) -> str | None:
    key = value.strip().lower()
    key = TAB_ALIASES.get(key, key)
    if key in TABS:
        return key
    by_label = {label.lower(): tab for tab, label in TABS.items()}
    return by_label.get(key)


def _step(value: str, regime: str) -> int | None:
    ids = [step.id for step in steps(regime)]
    if value in ids:
        return ids.index(value) + 1
    number = _whole(value)
    return number if number is not None and 1 <= number <= len(ids) else None


def _size(value: str) -> int | None:
    number = _whole(value)
    if number is None:
        return None
    try:
        return check_input_size(number)
    except ExplorerError:
        return None


def read_link(query: Mapping[str, str]) -> View:
    """The view a link's query parameters ask for. Unknown parameters are left to others (gradio has its
    own, such as `__theme`); a known parameter with a value the app does not have is skipped, with a
    sentence in `ignored` that says what is accepted."""
    query = {key: str(value).strip() for key, value in query.items() if key in PARAMETERS}
    view, ignored = View(), []

    def skip(key: str, accepted: str) -> None:
        ignored.append(f"`{key}={query[key]}` was ignored: {accepted}.")

    if "tab" in query:
        tab = _tab(query["tab"])
        view = replace(view, tab=tab) if tab else view
        if not tab:
            skip("tab", "the tabs are " + ", ".join(TABS))
    names = _model_names() if {"model", "overlay"} & query.keys() else set()
    if "model" in query:
        if query["model"] in names:
            view = replace(view, model=query["model"])
        else:
            skip("model", "it is not a model the explorer knows (try convnext_tiny or resnet50)")
    if "size" in query:
        size = _size(query["size"])
        view = replace(view, size=size) if size else view
        if not size:
            skip("size", "the input size is a multiple of 32 in pixels, such as 224 or 384")
    if "overlay" in query:
        if query["overlay"] in names | {"", "none"}:
            view = replace(view, overlay="" if query["overlay"] == "none" else query["overlay"])
        else:
            skip("overlay", "it is not a model the explorer knows (or `none`)")
    if "regime" in query:
        if query["regime"] in REGIMES:
            view = replace(view, regime=query["regime"])
        else:
            skip("regime", "the regimes are " + " and ".join(REGIMES))
    if "step" in query:
        number = _step(query["step"], view.regime or REGIMES[0])
        view = replace(view, step=number) if number else view
        if not number:
            skip("step", "a step is named by its id, such as kernel7 (the ids: "
                 + ", ".join(step.id for step in steps(view.regime or REGIMES[0])) + ")")
    if "lesson" in query:
        number = _whole(query["lesson"])
        if number is not None and 1 <= number <= len(lessons()):
            view = replace(view, lesson=number)
        else:
            skip("lesson", f"the lessons are numbered 1 to {len(lessons())}")
    if "stage" in query:
        number = _whole(query["stage"])
        if number in STAGES:
            view = replace(view, stage=number)
        else:
            skip("stage", "the stages are 1 to 4")
    if view.tab is None:  # a link that sets a tab's view without naming the tab opens that tab
        asked = [tab for tab, keys in TAB_PARAMETERS.items() if any(getattr(view, key) for key in keys)]
        view = replace(view, tab=asked[0]) if len(asked) == 1 else view
    return replace(view, ignored=ignored)


def address(view: View) -> str:
    """The query string (with its "?") that reopens `view`: its tab and that tab's own parameters."""
    if view.tab is None:
        return "?"
    pairs: list[tuple[str, str]] = [("tab", view.tab)]
    for key in TAB_PARAMETERS.get(view.tab, ()):
        value = getattr(view, key)
        if key == "step" and value is not None:
            value = steps(view.regime or REGIMES[0])[value - 1].id
        if value not in (None, ""):
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs)
