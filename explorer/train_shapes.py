"""Train the bundled `convnext_shapes` model on generated shapes, measure it, and save it.

    python -m explorer.train_shapes [--out assets/weights] [--steps N] [--device cpu|cuda]
                                    [--init WEIGHTS] [--checkpoint FILE [--resume]]

The architecture is `zoo.SHAPES_NET`, the one the zoo builds as `convnext_shapes`. The recipe, and why:

- **Pools.** Each phase draws `--pool` images once from its own seed, and every batch is a random
  choice from the pool turned by one of the square's eight symmetries (quarter turns and mirror
  images), which map every class onto itself. Drawing an image costs about as much CPU time as
  training on it, so the pool pays that once.
- **Two resolutions.** ConvNeXt is fully convolutional: most steps run at `--low-res` (a quarter of
  the pixels), then the last `--full-res-steps` fine-tune at the model's input size, where every
  object is twice as many cells wide, with a schedule of their own (as the paper fine-tunes at 384).
- **Mask supervision while training.** From class labels alone, a ConvNeXt this small learns to tell
  a shape of any color from a background of any color very slowly (about 35% top-1 after 2,500
  steps at 64 px on two CPU cores). So during training a 1x1 convolution on each of the first three
  stages also predicts how much of each cell the object covers, against the generator's mask. These
  heads are dropped before saving: the saved model is a plain timm ConvNeXt.
- **Grad-CAM is taught to point.** Trained on labels and masks alone, the model classified well
  (0.970 top-1 after 13,000 steps) but its Grad-CAM at CAM_LAYER peaked on the object in only 28% of
  images, most misses a cell beside it. So the fine-tune at the input size also minimizes
  `pointing_loss`: Grad-CAM of the true class, computed as captum does but kept differentiable, should
  put its soft-max mass on the cells whose centre lies on the object (the "right for the right
  reasons" idea: supervise the explanation with the object's mask). 1,000 such steps from that model
  gave pointing 0.982. The pointing figure of this model is therefore trained for, not emergent.
- **Layer scale starts at 1.** ConvNeXt multiplies each block's output by a learned per-channel
  `gamma`, which timm starts at 1e-6 so that a deep network begins as the identity. With five blocks
  there is nothing to stabilize, and from 1e-6 the blocks spend the first thousands of steps growing
  into the network: from `--layer-scale-init 1` held-out top-1 was 0.535 after 4,000 steps at 64 px,
  from timm's 1e-6 0.457. The value only sets where training starts; the saved model has the same
  keys either way.
- **A warm start, when asked.** `--init WEIGHTS` starts from an earlier bundled model's weights
  (a safetensors file of the same architecture) instead of random ones: a model that already tells
  the eight shapes apart learns a wider recipe of drawings in far fewer steps than one from scratch.
  The card records the file's name and the figures it came with.
- AdamW; each phase has a linear warm-up and a cosine decay, from `--lr` and `--fine-tune-lr`.

With `--checkpoint FILE` the run saves its state every `--checkpoint-every` steps (and measures top-1
on a few held-out images); `--resume` continues from that file with the same batches and schedule.

At the end the script measures, on images from a seed never used in training:

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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.shapes import CLASSES, DRAWINGS, ShapesDataset, normalize, sample
from explorer.zoo import SHAPES_NET, build_shapes_convnext

NAME = "convnext_shapes"
CAM_STAGE = 2  # stage 3 (20x20 at 320): stage 4's 10x10 grid is too coarse to point reliably
CAM_LAYER = f"stages.{CAM_STAGE}"
CAM_SHARPNESS = 3.0  # the pointing loss's soft-max runs over the map divided by its spread, times this
LAST_STAGE = "stages.3"
MASK_STAGES = (0, 1, 2)  # the stages whose features also predict the object's mask while training
TRAIN_SEED = 0
EVAL_SEED = 20_260_101  # a stream never used in training
CHECK_SEED, CHECK_IMAGES = 20_260_102, 256  # the held-out images measured at each checkpoint


@dataclass(frozen=True)
class Measured:
    """Figures measured on held-out images."""

    top1: float
    pointing: float  # at CAM_LAYER
    pointing_last_stage: float
    images: int


@dataclass(frozen=True)
class Pool:
    """Images drawn once for a training phase."""

    images: torch.Tensor  # (N, 3, H, W) uint8
    masks: torch.Tensor  # (N, 1, H, W) float, 1 on the object
    labels: torch.Tensor  # (N,)


class MaskHeads(nn.Module):
    """Training only: from each stage in MASK_STAGES, the fraction of each cell the object covers."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Conv2d(dims[stage], 1, kernel_size=1) for stage in MASK_STAGES)

    def loss(self, features: list[torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of each head against the mask averaged over the head's cells."""
        total = masks.new_zeros(())
        for head, stage in zip(self.heads, MASK_STAGES):
            guess = head(features[stage])
            total = total + F.binary_cross_entropy_with_logits(guess, F.adaptive_avg_pool2d(masks, guess.shape[-2:]))
        return total


def grad_cam(logits: torch.Tensor, stage: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N, h, w) Grad-CAM of each image's `labels` class at `stage` (a tensor `logits` was computed
    from), before the ReLU, as captum's LayerGradCam computes it: the stage's channels weighted by their
    mean gradient. It stays differentiable, so a loss can be put on it."""
    score = logits.gather(1, labels[:, None]).sum()
    grads, = torch.autograd.grad(score, stage, create_graph=True)  # (N, C, h, w)
    return (grads.mean((2, 3), keepdim=True) * stage).sum(1)  # (N, C, h, w) -> (N, h, w)


def pointing_loss(cam: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """How far Grad-CAM maps (N, h, w) are from peaking on the object of masks (N, 1, H, W).

    Minus the log of each map's soft-max mass on the cells whose centre pixel lies on the object, the
    pixel the pointing measure reads; images with no such cell are skipped.
    """
    cell = masks.shape[-1] // cam.shape[-1]
    on_object = (masks[:, 0, cell // 2::cell, cell // 2::cell] > 0.5).flatten(1)  # (N, h*w)
    cam = cam.flatten(1)  # (N, h, w) -> (N, h*w)
    z = CAM_SHARPNESS * cam / (cam.std(1, keepdim=True) + 1e-6)
    inside = torch.logsumexp(z.masked_fill(~on_object, float("-inf")), 1) - torch.logsumexp(z, 1)
    counted = on_object.any(1)
    return -inside[counted].sum() / max(1, int(counted.sum()))


def start_layer_scale(model: nn.Module, value: float) -> None:
    """Set every block's layer-scale `gamma` to `value` before training."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".gamma"):
                parameter.fill_(value)


def forward_with_stages(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The timm ConvNeXt's logits, and each stage's output on the way."""
    x, features = model.stem(images), []
    for stage in model.stages:
        x = stage(x)
        features.append(x)
    return model.forward_head(x), features


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


def phase_at(step: int, args: argparse.Namespace) -> tuple[int, int, float]:
    """(image side, pool seed, learning rate) at `step`: --low-res images from the run's seed, then
    the last --full-res-steps at the model's input size from the next seed, each phase with its own
    warm-up and cosine decay."""
    fine_tune_from = args.steps - args.full_res_steps
    if step < fine_tune_from:
        return args.low_res, args.seed, args.lr * warmup_cosine(fine_tune_from, args.warmup_steps)(step)
    warmup = max(1, args.full_res_steps // 10)
    return (SHAPES_NET.input_size, args.seed + 1,
            args.fine_tune_lr * warmup_cosine(args.full_res_steps, warmup)(step - fine_tune_from))


def draw_pool(seed: int, count: int, side: int) -> Pool:
    items = [sample(seed, index, side) for index in range(count)]
    return Pool(torch.from_numpy(np.stack([item.image for item in items])).permute(0, 3, 1, 2).contiguous(),
                torch.from_numpy(np.stack([item.mask for item in items])).unsqueeze(1).float(),
                torch.tensor([item.label for item in items]))


def symmetric_batch(pool: Pool, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`size` random pool images, all turned by one random symmetry of the square, normalized."""
    picked = torch.randint(len(pool.labels), (size,), generator=generator)
    turns, mirror = torch.randint(4, (1,), generator=generator).item(), torch.randint(2, (1,), generator=generator).item()
    images, masks = pool.images[picked].rot90(turns, (2, 3)), pool.masks[picked].rot90(turns, (2, 3))
    if mirror:
        images, masks = images.flip(3), masks.flip(3)
    return normalize(images), masks, pool.labels[picked]


def held_out_top1(model: nn.Module, device: torch.device, side: int) -> float:
    """Top-1 on CHECK_IMAGES held-out images of side `side` (a quick look while training)."""
    model.eval()
    images, _, labels = ShapesDataset(CHECK_SEED, CHECK_IMAGES, side).batch(0, CHECK_IMAGES)
    with torch.no_grad():
        correct = (model(images.to(device)).argmax(1).cpu() == labels).sum().item()
    model.train()
    return correct / CHECK_IMAGES


def train(model: nn.Module, args: argparse.Namespace, device: torch.device) -> float:
    """Train in place for `args.steps` steps; returns the training seconds (those of earlier runs included)."""
    heads = MaskHeads(SHAPES_NET.dims).to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *heads.parameters()], lr=args.lr, weight_decay=args.weight_decay)
    first_step, seconds_before = 0, 0.0
    if args.resume:
        state = torch.load(args.checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        first_step, seconds_before = int(state["step"]), float(state["seconds"])
        print(f"resumed from {args.checkpoint} at step {first_step}", file=sys.stderr, flush=True)
    model.train()
    start, pool, pool_side = time.monotonic(), None, None
    seen = correct = 0
    loss_sum = 0.0
    for step in range(first_step, args.steps):
        side, seed, lr = phase_at(step, args)
        if side != pool_side:
            pool, pool_side = draw_pool(seed, args.pool, side), side
            print(f"step {step}: drew {args.pool} images at {side}px", file=sys.stderr, flush=True)
        images, masks, labels = symmetric_batch(pool, args.batch_size, torch.Generator().manual_seed(args.seed * 10**9 + step))
        images, masks, labels = images.to(device), masks.to(device), labels.to(device)
        logits, features = forward_with_stages(model, images)
        loss = F.cross_entropy(logits, labels) + args.mask_weight * heads.loss(features, masks)
        if side == SHAPES_NET.input_size and args.pointing_weight:
            loss = loss + args.pointing_weight * pointing_loss(grad_cam(logits, features[CAM_STAGE], labels), masks)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        loss_sum += loss.item() * len(labels)
        done, elapsed = step + 1, seconds_before + time.monotonic() - start
        if done % args.log_every == 0 or done == args.steps:
            print(f"step {done}/{args.steps} at {side}px  loss {loss_sum / seen:.3f}  train acc {correct / seen:.3f}  "
                  f"lr {lr:.2e}  {elapsed:.0f}s", file=sys.stderr, flush=True)
            seen = correct = 0
            loss_sum = 0.0
        if args.checkpoint and (done % args.checkpoint_every == 0 or done == args.steps):
            torch.save({"step": done, "seconds": elapsed, "model": model.state_dict(), "heads": heads.state_dict(),
                        "optimizer": optimizer.state_dict()}, args.checkpoint)
            print(f"checkpoint at step {done}: held-out top-1 {held_out_top1(model, device, side):.3f} at {side}px",
                  file=sys.stderr, flush=True)
    return seconds_before + time.monotonic() - start


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
    command = shlex.join(["python", "-m", "explorer.train_shapes", *(arg for arg in sys.argv[1:] if arg != "--resume")])
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
        "train_images": args.steps * args.batch_size,
        "steps": args.steps,
        "full_res_steps": min(args.full_res_steps, args.steps),
        "low_res": args.low_res,
        "lr": args.lr,
        "fine_tune_lr": args.fine_tune_lr,
        "mask_weight": args.mask_weight,
        "layer_scale_init": None if args.init else args.layer_scale_init,
        "init": args.init.name if args.init else None,
        "resize": "pad",  # non-square images are padded to a square with their border color, never cropped
        "recipe": asdict(DRAWINGS),
        "pointing_weight": args.pointing_weight,
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
    parser.add_argument("--steps", type=int, default=38_000, help="training steps in all")
    parser.add_argument("--full-res-steps", type=int, default=3_000, help="the last steps, fine-tuning at the model's input size")
    parser.add_argument("--low-res", type=int, default=64, help="image side of the steps before those")
    parser.add_argument("--pool", type=int, default=40_000, help="images drawn per phase")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--fine-tune-lr", type=float, default=5e-4, help="peak learning rate at the input size")
    parser.add_argument("--warmup-steps", type=int, default=500)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--mask-weight", type=float, default=1.0, help="weight of the mask loss (0: labels only)")
    parser.add_argument("--pointing-weight", type=float, default=1.0,
                        help="weight of the Grad-CAM pointing loss in the fine-tune at the input size (0: none)")
    parser.add_argument("--layer-scale-init", type=float, default=1.0, help="every block's gamma at the start (timm: 1e-6)")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these weights (safetensors, same architecture) instead of random ones")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    parser.add_argument("--seed", type=int, default=TRAIN_SEED, help="seed of the training images and weights")
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="seed of the held-out images")
    parser.add_argument("--eval-images", type=int, default=1000)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--checkpoint", type=Path, default=None, help="file for the training state")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.resume and not (args.checkpoint and args.checkpoint.is_file()):
        _parser().error("--resume needs --checkpoint FILE, and the file must exist")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    model = build_shapes_convnext()
    if args.init:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.init), strict=True)
    else:
        start_layer_scale(model, args.layer_scale_init)
    model = model.to(device)
    print(f"training {NAME} on {device_name(device)}: depths {SHAPES_NET.depths}, dims {SHAPES_NET.dims}, "
          f"input {SHAPES_NET.input_size}, {sum(p.numel() for p in model.parameters()):,} parameters",
          file=sys.stderr, flush=True)
    seconds = train(model, args, device)
    measured = measure(model, device, args.eval_seed, args.eval_images)
    card = model_card(args, seconds, device, measured)
    weights = save(model.cpu(), card, args.out)
    print(f"top-1 {measured.top1:.4f}, pointing {measured.pointing:.4f} ({CAM_LAYER}), "
          f"{measured.pointing_last_stage:.4f} ({LAST_STAGE}) on {measured.images} images; "
          f"{seconds:.0f}s; wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
