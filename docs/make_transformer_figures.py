"""Figures of docs/transformers.rst: Grad-CAM on a small ViT and a small Swin, two classes per image.

Trains a small torchvision ``VisionTransformer`` and a small ``SwinTransformer`` (CPU, one
thread, three to five minutes each) on a toy task made here, seeded: 64 x 64 images of textured noise with one shape
(square, disc or triangle, of a random colour), the shape naming the class. The figure shows
test images holding *two* shapes of different classes, with the Grad-CAM maps of both classes
from one call (``target`` = a list of two classes per image: one forward pass, one batched
backward pass), at the automatic layer (the ViT's second-to-last block, the Swin's last stage).
No line of user code reshapes a token or channels-last layer.

Usage: ``python docs/make_transformer_figures.py`` (from the repository root; writes
docs/figures/transformers_vit.png and docs/figures/transformers_swin.png and prints the test
accuracies and pointing rates that docs/transformers.rst quotes).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.models import SwinTransformer, VisionTransformer

import attribmap
from attribmap.viz import method_grid

OUT = Path(__file__).with_name("figures")
SIZE = 64
CLASSES = ("square", "disc", "triangle")


def _shape_mask(kind: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    if kind == 0:
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return (yy >= cy - r) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - (cy - r)) / 2)  # apex up


def render(rng: np.random.Generator, kinds):
    """One image (64, 64, 3) float in [0, 1] with one shape per entry of ``kinds``, apart, and
    the shapes' masks (len(kinds), 64, 64)."""
    low = rng.random((4, 4, 3)).astype(np.float32)
    image = np.kron(low, np.ones((16, 16, 1), np.float32)) * 0.25 + rng.random((SIZE, SIZE, 3)).astype(np.float32) * 0.2
    centres, masks = [], []
    for kind in kinds:
        for _ in range(100):
            r = rng.uniform(8, 12)
            cy, cx = rng.uniform(r + 1, SIZE - r - 1, size=2)
            if all((cy - y) ** 2 + (cx - x) ** 2 > (r + q + 4) ** 2 for y, x, q in centres):
                break
        centres.append((cy, cx, r))
        mask = _shape_mask(kind, cy, cx, r)
        image[mask] = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
        masks.append(mask)
    return np.clip(image, 0, 1), np.stack(masks)


def dataset(n: int, seed: int, objects: int = 1):
    """(images (n, 3, 64, 64), labels (n, objects), masks (n, objects, 64, 64))."""
    rng = np.random.default_rng(seed)
    labels = np.stack([rng.choice(len(CLASSES), size=objects, replace=False) for _ in range(n)])
    images, masks = zip(*(render(rng, row) for row in labels))
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2), torch.from_numpy(labels).long(),
            torch.from_numpy(np.stack(masks)))


def normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - 0.5) / 0.25


def train(model: nn.Module, images, labels, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    steps = epochs * (len(images) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images))
        for start in range(0, len(images) - 63, 64):
            batch = order[start:start + 64]
            x = normalize(images[batch])
            x = torch.where(torch.rand(len(batch), 1, 1, 1) < 0.5, x, x.flip(3))  # horizontal flips
            loss = nn.functional.cross_entropy(model(x), labels[batch, 0])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def accuracy(model: nn.Module, images, labels) -> float:
    with torch.no_grad():
        return float((model(normalize(images)).argmax(1) == labels[:, 0]).float().mean())


def pointing(model: nn.Module, objects: int, count: int = 200):
    """Share of (image, class) pairs whose Grad-CAM maximum lies on the shape of that class
    (all classes of an image from one call), and the chance level (the shapes' mean area)."""
    images, labels, masks = dataset(count, seed=2, objects=objects)
    maps = attribmap.explain(model, normalize(images), "gradcam", target=labels.tolist())  # (n, objects, 64, 64)
    peak = maps.flatten(2).argmax(dim=2)
    hits = masks.flatten(2).gather(2, peak[..., None])[..., 0]
    return float(hits.float().mean()), float(masks.float().mean())


def shrink_png(path: Path, colours: int = 96) -> None:
    """Re-save a figure with a palette of ``colours`` (a few dozen kB instead of ~400)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def figure(model: nn.Module, title: str, path: Path) -> str:
    pairs, pair_labels, _ = dataset(4, seed=7, objects=2)
    explainer = attribmap.Explainer(model)
    maps = explainer.explain(normalize(pairs), "gradcam", target=pair_labels.tolist())  # (4, 2, 64, 64)
    columns = {f"{title}: {'first' if j == 0 else 'second'} class": maps[:, j] for j in range(2)}
    shown = [(img.permute(1, 2, 0).numpy() * 255).astype(np.uint8) for img in pairs]
    method_grid(shown, columns, path=path, size=1.6)
    shrink_png(path)
    names = ", ".join(f"{CLASSES[a]} / {CLASSES[b]}" for a, b in pair_labels.tolist())
    return f"{path.name}: layer {explainer.layers_used['gradcam']}; rows (first / second class): {names}"


def main(argv=None) -> int:
    torch.set_num_threads(1)  # small matrices: more threads only contend
    OUT.mkdir(exist_ok=True)
    images, labels, _ = dataset(2000, seed=0)
    test_images, test_labels, _ = dataset(300, seed=1)
    torch.manual_seed(0)
    vit = VisionTransformer(image_size=SIZE, patch_size=8, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128,
                            num_classes=len(CLASSES))
    torch.manual_seed(0)
    swin = SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=len(CLASSES))
    for name, model, epochs in (("vit", vit, 20), ("swin", swin, 20)):
        start = time.perf_counter()
        train(model, images, labels, epochs, seed=0)
        print(f"{name}: test accuracy {accuracy(model, test_images, test_labels):.3f} "
              f"({time.perf_counter() - start:.0f} s of training)")
        for objects in (1, 2):
            hit, chance = pointing(model, objects)
            print(f"  {objects}-shape images: Grad-CAM maximum on the explained class's shape in {hit:.3f} of "
                  f"{200 * objects} (image, class) pairs (chance {chance:.3f})")
        print(figure(model, "ViT" if name == "vit" else "Swin", OUT / f"transformers_{name}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
