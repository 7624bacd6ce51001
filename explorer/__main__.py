"""The command line: `python -m explorer COMMAND ...` (see the README for every command).

`--json` prints one JSON document on stdout; messages go to stderr. A person's mistake (an unknown
model, a bad size or file) prints one line on stderr and exits with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from explorer.bench import DEFAULT_BATCH, DEFAULT_MODELS, REPEATS, WARMUP
from explorer.attribution import METHODS
from explorer.erf import DEFAULT_SEEDS
from explorer.sanity import DEFAULT_STEPS
from explorer.zoo import ExplorerError

USAGE_ERROR = 2


def _summary(args: argparse.Namespace) -> None:
    from explorer.analysis import summarize
    from explorer.report import format_table, paper_comparison

    summary = summarize(args.model, args.input_size)
    if args.json:
        print(json.dumps(summary.to_json()))
        return
    print(f"{summary.label} ({summary.model}) at {summary.input_size}x{summary.input_size}")
    print(format_table(summary))
    print(paper_comparison(summary))


def _roadmap(args: argparse.Namespace) -> None:
    from explorer.report import format_roadmap
    from explorer.roadmap import roadmap_table, steps

    rows = roadmap_table(args.regime)
    if args.json:
        print(json.dumps(rows))
        return
    print(format_roadmap(rows, steps(args.regime)))


def _predict(args: argparse.Namespace) -> None:
    from explorer.inference import open_image, predict
    from explorer.weights import load

    prediction = predict(load(args.model, args.weights), open_image(args.image), args.topk)
    if args.json:
        print(json.dumps(prediction.to_json()))
        return
    print(f"{prediction.model} with {prediction.weights} on {prediction.device}: {prediction.latency_ms:.1f} ms")
    for top in prediction.top:
        print(f"{top.prob:7.2%}  {top.label} (class {top.index})")


def _cam(args: argparse.Namespace) -> None:
    import numpy as np

    from explorer.attribution import attribute
    from explorer.inference import open_image
    from explorer.weights import load

    result = attribute(load(args.model, args.weights), open_image(args.image), args.method, args.layer, args.target)
    np.save(args.out, result.map.astype(np.float32))
    print(f"{result.method} of '{result.label}' at {result.layer or 'the input'}: "
          f"{result.map.shape[0]}x{result.map.shape[1]} map in {result.seconds:.2f} s, written to {args.out}",
          file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json()))


def _explained(result) -> str:
    from explorer.attribution import METHOD_TITLES

    where = f" at {result.layer}" if result.layer else ""
    return f"{METHOD_TITLES[result.method]}{where} of '{result.label}' (class {result.target}), {result.weights}"


def _sanity(args: argparse.Namespace) -> None:
    from explorer.inference import open_image
    from explorer.report import cascade_table
    from explorer.sanity import cascade
    from explorer.weights import load

    result = cascade(load(args.model, args.weights), open_image(args.image), args.method, args.layer, args.target)
    if args.json:
        print(json.dumps(result.to_json()))
        return
    print(f"{_explained(result.original)}: {result.seconds:.2f} s")
    print(cascade_table(result))
    print(result.reading())


def _faithfulness(args: argparse.Namespace) -> None:
    from explorer.inference import open_image
    from explorer.report import faithfulness_table
    from explorer.sanity import faithfulness
    from explorer.weights import load

    result = faithfulness(load(args.model, args.weights), open_image(args.image), args.method, args.layer,
                          args.target, args.steps)
    if args.json:
        print(json.dumps(result.to_json()))
        return
    print(f"{_explained(result.result)}, {result.steps} steps: {result.seconds:.2f} s")
    print(faithfulness_table(result))
    print(result.reading())


def _erf(args: argparse.Namespace) -> None:
    import numpy as np

    from explorer.erf import NOISE, ErfRequest, compute_erf
    from explorer.report import erf_table

    if (args.images is None) == (args.noise is None):
        raise ExplorerError("Give exactly one of --images DIR (a folder of images) and --noise N (N noise images).")
    images = NOISE if args.images is None else args.images
    request = ErfRequest(args.model, args.weights, images, args.noise or 0, args.seeds, args.stage, args.input_size)
    result = compute_erf(request)
    if args.out:
        try:
            np.save(args.out, result.map.astype(np.float32))
        except OSError as error:
            raise ExplorerError(f"Cannot write {args.out} ({error.strerror}); choose another path.") from error
        print(f"{result.input_size}x{result.input_size} map written to {args.out}", file=sys.stderr)
    if result.skipped:
        print(f"{result.skipped} files could not be read as images and were skipped", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json()))
        return
    print(f"{result.label} at {result.input_size}x{result.input_size}: {result.seconds:.2f} s. Area ratio "
          f"(side of the centred square, pixels) holding more than t of the log-scaled map:")
    print(erf_table([result]))


def _collapse(args: argparse.Namespace) -> None:
    from explorer.collapse import collapse_profile, reading
    from explorer.inference import open_image
    from explorer.weights import load

    profile = collapse_profile(load(args.model, args.weights), open_image(args.image))
    if args.json:
        print(json.dumps(profile.to_json()))
        return
    print(f"{profile.label} with {profile.weights}: mean pairwise cosine distance of the MLP's channels")
    for block, distance in zip(profile.blocks, profile.distances):
        print(f"{block:<20}{distance:.4f}")
    print(reading([profile]))


def _bench(args: argparse.Namespace) -> None:
    from pathlib import Path

    from explorer.bench import benchmark, format_report, to_csv

    def say(_fraction: float, what: str) -> None:
        print(f"{what} ...", file=sys.stderr)

    report = benchmark(args.models, args.batch, args.input_size, args.dtype, args.compile, args.device,
                       args.baseline, args.warmup, args.repeats, progress=say)
    if args.csv:
        try:
            Path(args.csv).write_text(to_csv(report))
        except OSError as error:
            raise ExplorerError(f"Cannot write {args.csv} ({error.strerror}); choose another path.") from error
    if args.json:
        print(json.dumps(report.to_json()))
        return
    print(format_report(report), file=sys.stderr)
    if args.csv:
        print(f"results written to {args.csv}", file=sys.stderr)


def _flops(args: argparse.Namespace) -> None:
    from explorer.counting import count
    from explorer.report import counting_notes, counting_table

    counting = count(args.model, args.input_size)
    if args.json:
        print(json.dumps(counting.to_json()))
        return
    print(f"{counting.label} ({counting.model}) at {counting.input_size}x{counting.input_size}, batch 1: billions of "
          f"multiply-accumulates as each tool counts them")
    print(counting_table(counting))
    print(counting_notes(counting))
def _attribution_arguments(command: argparse.ArgumentParser) -> None:
    """MODEL IMAGE and the options that choose a map: shared by cam, sanity and faithfulness."""
    command.add_argument("model", help="a timm name, roadmap:STEP, or convnext_shapes")
    command.add_argument("image", help="an image file")
    command.add_argument("--weights", default=None, help="a checkpoint file or 'pretrained' (as for predict)")
    command.add_argument("--method", choices=METHODS, default="gradcam")
    command.add_argument("--layer", default=None, help="the stage a CAM method reads (default: the family's)")
    command.add_argument("--target", default=None, help="class index or name to explain (default: the top class)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    summary = commands.add_parser("summary", help="per-stage shapes, parameters and GFLOPs of a model")
    summary.add_argument("model", help="a timm name (convnext_tiny, resnet50, ...) or roadmap:STEP")
    summary.add_argument("--input-size", type=int, default=None, help="square input side (default: the model's)")
    summary.add_argument("--json", action="store_true", help="print one JSON document")
    summary.set_defaults(run=_summary)

    roadmap = commands.add_parser("roadmap", help="every step from ResNet to ConvNeXt, counted and as printed")
    roadmap.add_argument("--regime", choices=["resnet50", "resnet200"], default="resnet50",
                         help="ResNet-50 -> ConvNeXt-T (Fig. 2) or ResNet-200 -> ConvNeXt-B (appendix)")
    roadmap.add_argument("--json", action="store_true", help="print one JSON document")
    roadmap.set_defaults(run=_roadmap)

    predict = commands.add_parser("predict", help="top-k classes of an image")
    predict.add_argument("model", help="a timm name, roadmap:STEP, or convnext_shapes (the bundled model)")
    predict.add_argument("image", help="an image file (PNG, JPEG, ...)")
    predict.add_argument("--weights", default=None,
                         help="a checkpoint file (.safetensors, .pth, .bin) or 'pretrained' for the paper's "
                              "weights from the hub (default: random init; convnext_shapes: its own)")
    predict.add_argument("--topk", type=int, default=5, help="how many classes to list (default 5)")
    predict.add_argument("--json", action="store_true", help="print one JSON document")
    predict.set_defaults(run=_predict)

    cam = commands.add_parser("cam", help="an attribution map (Grad-CAM, ...) of an image, saved as .npy")
    _attribution_arguments(cam)
    cam.add_argument("--out", required=True, help="where to write the float32 map (.npy)")
    cam.add_argument("--json", action="store_true", help="also print one JSON document (what the map explains)")
    cam.set_defaults(run=_cam)

    sanity = commands.add_parser("sanity", help="does the map change when the layers are randomized, top down? "
                                                "(Adebayo et al. 2018)")
    _attribution_arguments(sanity)
    sanity.add_argument("--json", action="store_true", help="print one JSON document")
    sanity.set_defaults(run=_sanity)

    faithful = commands.add_parser("faithfulness", help="deletion and insertion curves of a map, against a random "
                                                        "order and Sobel edges (Petsiuk et al. 2018)")
    _attribution_arguments(faithful)
    faithful.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                          help=f"pixels deleted or inserted in this many equal steps (default {DEFAULT_STEPS})")
    faithful.add_argument("--json", action="store_true", help="print one JSON document")
    faithful.set_defaults(run=_faithfulness)

    erf = commands.add_parser("erf", help="effective receptive field of a stage and its area ratios (RepLKNet's way)")
    erf.add_argument("model", help="a timm name, roadmap:STEP, or convnext_shapes")
    erf.add_argument("--weights", default=None,
                     help="a checkpoint file, 'pretrained', 'random' or 'random-branches-on' (random init with "
                          "layer scale and zero-initialized norms at 1); default: random init averaged over "
                          "--seeds (convnext_shapes: its own weights)")
    erf.add_argument("--images", default=None, metavar="DIR", help="a folder of images (unreadable files are skipped)")
    erf.add_argument("--noise", type=int, default=None, metavar="N", help="N noise images instead of --images")
    erf.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                     help=f"random inits averaged, for random weights (default {DEFAULT_SEEDS})")
    erf.add_argument("--input-size", type=int, default=None, help="square input side (default: the model's)")
    erf.add_argument("--stage", default=None, help="the stage's module name (default: the last stage)")
    erf.add_argument("--out", default=None, metavar="FILE.npy", help="write the averaged map (float32, H x W)")
    erf.add_argument("--json", action="store_true", help="print one JSON document")
    erf.set_defaults(run=_erf)

    flops = commands.add_parser("flops", help="what every FLOP counter (fvcore, ptflops, thop, torchinfo, ...) "
                                              "counts, per operator kind")
    flops.add_argument("model", help="a timm name, roadmap:STEP, or convnext_shapes")
    flops.add_argument("--input-size", type=int, default=None, help="square input side (default: the model's)")
    flops.add_argument("--json", action="store_true", help="print one JSON document")
    flops.set_defaults(run=_flops)
    collapse = commands.add_parser("collapse", help="feature collapse per block (ConvNeXt V2's cosine distance)")
    collapse.add_argument("model", help="a ConvNeXt or ConvNeXt V2 (convnext_tiny, convnextv2_tiny, convnext_shapes, ...)")
    collapse.add_argument("image", help="an image file")
    collapse.add_argument("--weights", default=None, help="a checkpoint file or 'pretrained' (as for predict)")
    collapse.add_argument("--json", action="store_true", help="print one JSON document")
    collapse.set_defaults(run=_collapse)

    bench = commands.add_parser("bench", help="images per second, beside the paper's A100 figures (Table 12)")
    bench.add_argument("models", nargs="*", metavar="MODEL", default=list(DEFAULT_MODELS),
                       help=f"registry names (default: {' '.join(DEFAULT_MODELS)})")
    batches = ", ".join(f"{batch} on {kind}" for kind, batch in DEFAULT_BATCH.items())
    bench.add_argument("--batch", type=int, default=None, help=f"images per pass (default: {batches})")
    bench.add_argument("--input-size", type=int, default=None, help="square input side (default: each model's)")
    bench.add_argument("--dtype", choices=["fp32", "tf32", "bf16"], default=None,
                       help="precision (default: tf32 on an Ampere or newer GPU, as in the paper; else fp32)")
    bench.add_argument("--compile", action="store_true", help="torch.compile each model first (slow to start)")
    bench.add_argument("--device", default=None, help="cuda, cuda:N, mps or cpu (default: the best one here)")
    bench.add_argument("--baseline", action="store_true",
                       help="also measure timm's plain path (fp32, contiguous, eager) and give the speed-up")
    bench.add_argument("--warmup", type=int, default=WARMUP, help=f"untimed passes first (default {WARMUP})")
    bench.add_argument("--repeats", type=int, default=REPEATS, help=f"timed passes, median taken (default {REPEATS})")
    bench.add_argument("--csv", default=None, metavar="FILE", help="also write the results as CSV")
    bench.add_argument("--json", action="store_true", help="print one JSON document")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except ExplorerError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
