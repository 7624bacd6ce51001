"""Train the bundled `convnext_shapes` model on freshly generated shapes, measure it, and save it.

    python -m explorer.train_shapes [--out assets/weights] [--epochs N] [--device cpu|cuda]

Every epoch draws new images from `explorer.shapes` (no image is seen twice), the optimizer is
AdamW with a linear warm-up and a cosine decay, and the architecture is `shapes.SHAPES_NET`, the
same one the zoo builds. After training, the script measures on images from a seed never used in
training:

- top-1 accuracy;
- the Grad-CAM pointing rate: captum's `LayerGradCam` for the true class (ReLU on), upsampled to
  the input size; a hit is a peak that lies inside the object's mask.

It writes `convnext_shapes.safetensors` (the timm state dict) and `convnext_shapes.json` (the model
card: classes, input size, mean/std, architecture, the command, the training time and the measured
figures) to `--out`.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from explorer.shapes import CLASSES, SHAPES_NET, ShapesDataset, build_shapes_convnext

NAME = "convnext_shapes"
CAM_LAYER = "stages.2"  # stage 3 (8x8 at 128): stage 4's 4x4 grid is too coarse to point reliably
LAST_STAGE = "stages.3"
TRAIN_SEED = 0
EVAL_SEED = 20_260_101  # a stream never used in training


@dataclass(frozen=True)
class Measured:
    """Figures measured on held-out images."""

    top1: float
    pointing: float  # at CAM_LAYER
    pointing_last_stage: float
    images: int


def pick_device(requested: str | None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up to 1, then a cosine decay to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return factor


def phases(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(image side, epochs) in training order: a cheap low-resolution phase, then the model's own size."""
    low = min(args.low_res_epochs, args.epochs)
    plan = [(args.low_res, low), (SHAPES_NET.input_size, args.epochs - low)]
    return [(side, epochs) for side, epochs in plan if epochs > 0]


def train(model: nn.Module, args: argparse.Namespace, device: torch.device) -> None:
    """Train in place on `args.epochs` epochs of `args.images_per_epoch` fresh images each.

    ConvNeXt is fully convolutional, so most epochs run at `--low-res` (a quarter of the pixels) and
    the last ones at the model's input size, where it settles to the final object scale.
    """
    steps_per_epoch = args.images_per_epoch // args.batch_size
    total = steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total, steps_per_epoch))
    model.train()
    start, epoch = time.monotonic(), 0
    for phase, (side, epochs) in enumerate(phases(args)):
        # each phase draws its own stream: args.seed for the first, args.seed + 1 for the second
        stream = ShapesDataset(args.seed + phase, epochs * steps_per_epoch * args.batch_size, side)
        loader = DataLoader(stream, batch_size=args.batch_size, shuffle=False, num_workers=args.workers)
        seen, correct, loss_sum = 0, 0, 0.0
        for step, (images, labels) in enumerate(loader):
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss = nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            seen += len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            loss_sum += loss.item() * len(labels)
            if (step + 1) % steps_per_epoch == 0:
                epoch += 1
                print(f"epoch {epoch}/{args.epochs} at {side}px  loss {loss_sum / seen:.3f}  "
                      f"train acc {correct / seen:.3f}  lr {schedule.get_last_lr()[0]:.2e}  "
                      f"{time.monotonic() - start:.0f}s", file=sys.stderr, flush=True)
                seen, correct, loss_sum = 0, 0, 0.0


def cam_peaks(model: nn.Module, layer: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Where each image's Grad-CAM map (true class, ReLU) peaks, as (N, 2) pixel (row, col); -1 if empty.

    The map is upsampled to the input size with nearest-neighbour interpolation, so each cell of the
    layer's grid covers its block of pixels; the peak is the centre of the block that holds the
    maximum (torch's argmax alone would return the block's top-left corner).
    """
    from captum.attr import LayerAttribution, LayerGradCam

    attribution = LayerGradCam(model, layer).attribute(images, target=labels, relu_attributions=True)
    maps = LayerAttribution.interpolate(attribution, tuple(images.shape[-2:]), "nearest")[:, 0]  # (N, H, W)
    peaks = torch.full((len(maps), 2), -1, dtype=torch.long)
    rows, cols = torch.meshgrid(torch.arange(maps.shape[1]), torch.arange(maps.shape[2]), indexing="ij")
    for i, heat in enumerate(maps.detach().cpu()):
        if heat.max() <= 0:
            continue  # no positive evidence anywhere: counts as a miss
        top = heat == heat.max()
        peaks[i] = torch.stack([rows[top].float().mean(), cols[top].float().mean()]).round().long()
    return peaks


def pointing_hits(peaks: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) bool: the peak lies inside the object's mask."""
    found = peaks[:, 0] >= 0
    safe = peaks.clamp(min=0)
    inside = masks[torch.arange(len(masks)), safe[:, 0], safe[:, 1]]
    return found & inside


def measure(model: nn.Module, device: torch.device, seed: int, count: int, batch: int = 100) -> Measured:
    """Top-1 and pointing rates on `count` images of the stream `seed`."""
    model.eval()
    data = ShapesDataset(seed, count)
    correct = hits = hits_last = 0
    for start in range(0, count, batch):
        images, masks, labels = data.batch(start, min(batch, count - start))
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            correct += (model(images).argmax(1) == labels).sum().item()
        hits += pointing_hits(cam_peaks(model, model.get_submodule(CAM_LAYER), images, labels), masks).sum().item()
        hits_last += pointing_hits(cam_peaks(model, model.get_submodule(LAST_STAGE), images, labels), masks).sum().item()
    return Measured(correct / count, hits / count, hits_last / count, count)


def model_card(args: argparse.Namespace, seconds: float, device: torch.device, measured: Measured) -> dict:
    command = shlex.join(["python", "-m", "explorer.train_shapes", *sys.argv[1:]])
    return {
        "name": NAME,
        "classes": list(CLASSES),
        "input_size": SHAPES_NET.input_size,
        "mean": list(SHAPES_NET.mean),
        "std": list(SHAPES_NET.std),
        "depths": list(SHAPES_NET.depths),
        "dims": list(SHAPES_NET.dims),
        "command": command,
        "train_seconds": round(seconds, 1),
        "train_images": args.epochs * (args.images_per_epoch // args.batch_size) * args.batch_size,
        "device": device_name(device),
        "top1": round(measured.top1, 4),
        "pointing": round(measured.pointing, 4),
        "cam_layer": CAM_LAYER,
        "pointing_last_stage": round(measured.pointing_last_stage, 4),
        "eval_images": measured.images,
        "seed": args.seed,
        "eval_seed": args.eval_seed,
    }


def save(model: nn.Module, card: dict, out: Path) -> Path:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{NAME}.safetensors"
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(weights), metadata={"name": NAME})
    (out / f"{NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    return weights


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer.train_shapes", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("assets/weights"), help="folder for the weights and card")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--images-per-epoch", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--low-res", type=int, default=64, help="image side of the first, cheap epochs")
    parser.add_argument("--low-res-epochs", type=int, default=0, help="how many epochs run at --low-res")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--workers", type=int, default=1, help="processes that draw the images")
    parser.add_argument("--seed", type=int, default=TRAIN_SEED, help="seed of the training images and weights")
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="seed of the held-out images")
    parser.add_argument("--eval-images", type=int, default=1000)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    model = build_shapes_convnext().to(device)
    print(f"training {NAME} on {device_name(device)}: depths {SHAPES_NET.depths}, dims {SHAPES_NET.dims}, "
          f"input {SHAPES_NET.input_size}, {sum(p.numel() for p in model.parameters()):,} parameters",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    train(model, args, device)
    seconds = time.monotonic() - start
    measured = measure(model, device, args.eval_seed, args.eval_images)
    card = model_card(args, seconds, device, measured)
    weights = save(model.cpu(), card, args.out)
    print(f"top-1 {measured.top1:.4f}, pointing {measured.pointing:.4f} ({CAM_LAYER}), "
          f"{measured.pointing_last_stage:.4f} ({LAST_STAGE}) on {measured.images} images; "
          f"{seconds:.0f}s; wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
