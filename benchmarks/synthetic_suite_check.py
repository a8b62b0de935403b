"""Check that the default synthetic WSOL suite is learnable yet hard to localize.

Generates the suite (``attribmap.data.synthetic.generate_suite``), trains a small CNN
(4 conv blocks -> global average pooling -> linear, so CAM applies) on CPU with a plain
loop, then reports test accuracy and the CAM's MaxBoxAccV2 / PxAP under the official
protocol (raw maps of the ground-truth class from ``attribmap.Explainer.explain_many``,
scored by ``attribmap.evaluate.evaluate_maps``); ``--methods`` scores other extractors
too. Run from the repository root::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synthetic_suite_check.py [--out DIR] [--epochs N] \
        [--methods cam,gradcam,dgl] [--json result.json]

Prints one JSON object (also written to ``--json`` when given).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from attribmap.data import WSOLDataset, collate_wsol, official_transform, train_transform
from attribmap.data.synthetic import generate_suite


class SmallCamNet(nn.Module):
    """Four conv blocks (stride 8 in all) -> GAP -> Linear; ``cam_layer = "features"``.

    Input ``(N, 3, S, S)``; the last feature map is ``(N, 256, S/8, S/8)`` (12 x 12 at 96 px).
    """

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        widths = [3, width, 2 * width, 4 * width, 8 * width]
        layers: List[nn.Module] = []
        for block in range(4):
            layers += [nn.Conv2d(widths[block], widths[block + 1], 3, padding=1, bias=False),
                       nn.BatchNorm2d(widths[block + 1]), nn.ReLU(inplace=True)]
            if block < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.cam_layer = "features"
        self.num_classes = num_classes
        self.arch = "small_cam_net"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def train(model: nn.Module, loader: DataLoader, epochs: int, lr: float) -> List[float]:
    """Plain AdamW + cosine schedule; returns the mean training loss of each epoch."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
    losses = []
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            loss = F.cross_entropy(model(batch["image"]), batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch["label"])
            count += len(batch["label"])
        losses.append(total / count)
        print(f"epoch {epoch + 1}/{epochs} loss {losses[-1]:.3f}", file=sys.stderr, flush=True)
    return losses


@torch.no_grad()
def _predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return model(images).argmax(1)


def evaluate(model: nn.Module, dataset: WSOLDataset, methods: Sequence[str] = ("cam",),
             batch_size: int = 50) -> Dict[str, object]:
    """Test accuracy, and each method's MaxBoxAccV2 / PxAP where attribmap's evaluator exists.

    Maps are raw maps (layer resolution) of the ground-truth class, from one shared pass per
    batch (``attribmap.Explainer(...).explain_many``).
    """
    import attribmap

    model.eval()
    explainer = attribmap.Explainer(model, layer=model.cam_layer)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_wsol)
    maps: Dict[str, List[torch.Tensor]] = {name: [] for name in methods}
    boxes, sizes, masks, ignores, correct = [], [], [], [], []
    for batch in loader:
        correct.append(_predict(model, batch["image"]) == batch["label"])
        batch_maps = explainer.explain_many(batch["image"], list(methods), target=batch["label"], raw=True)
        for name in methods:
            maps[name].append(batch_maps[name].detach())
        boxes += batch["boxes"]
        sizes.append(batch["size"])
        masks += batch.get("mask", [])
        ignores += batch.get("ignore", [])
    correct_all = torch.cat(correct)
    result: Dict[str, object] = {"test_accuracy": 100.0 * float(correct_all.float().mean())}
    try:
        from attribmap.evaluate import evaluate_maps
    except ImportError as exc:  # the evaluator is written separately
        result["evaluation"] = f"unavailable ({exc})"
        return result
    for name in methods:
        scores = evaluate_maps(torch.cat(maps[name]), boxes=boxes, image_sizes=torch.cat(sizes),
                               masks=masks or None, ignore=ignores or None, correct=correct_all)
        summary = {key: value for key, value in scores.items() if isinstance(value, (int, float))}
        for key in ("MaxBoxAccV2_per_iou", "MaxBoxAcc_per_iou", "best_tau"):
            if key in scores:
                value = scores[key]
                summary[key] = value.tolist() if hasattr(value, "tolist") else value
        result[name] = summary
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="suite directory, overwritten (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--test-per-class", type=int, default=25)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="cam",
                        help="comma-separated extractors to score (default: cam), e.g. cam,gradcam,dgl")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or os.path.join(scratch, "suite")
        started = time.perf_counter()
        summary = generate_suite(out, classes=args.classes, per_class=args.per_class, size=args.size,
                                 seed=args.seed, test_per_class=args.test_per_class, overwrite=True)
        generated = time.perf_counter()
        train_set = WSOLDataset(out, "train", transform=train_transform(args.size))
        test_set = WSOLDataset(out, "test", transform=official_transform(args.size))
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, collate_fn=collate_wsol,
                            generator=torch.Generator().manual_seed(args.seed))
        model = SmallCamNet(train_set.num_classes)
        losses = train(model, loader, args.epochs, args.lr)
        trained = time.perf_counter()
        result = evaluate(model, test_set, [name.strip() for name in args.methods.split(",") if name.strip()])
        evaluated = time.perf_counter()
    result.update({
        "suite": {"classes": args.classes, "per_class": args.per_class, "size": args.size, "seed": args.seed,
                  "splits": summary["splits"]},
        "model": "SmallCamNet (4 conv blocks 32-64-128-256, GAP, linear; CAM layer 'features', "
                 f"{args.size // 8}x{args.size // 8} at {args.size} px)",
        "epochs": args.epochs, "final_train_loss": round(losses[-1], 4), "threads": args.threads,
        "seconds": {"generate": round(generated - started, 1), "train": round(trained - generated, 1),
                    "evaluate": round(evaluated - trained, 1)},
    })
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        temporary = f"{args.json}.tmp-{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(temporary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
