"""The paper's inlier/outlier classifier (§4.3): a small CNN, its training, a content-keyed cache, prediction.

Architecture (paper §4.3, the Keras MNIST CNN it follows): conv 3x3/32 stride 2 -> ReLU -> conv 3x3/64 stride 2
-> ReLU -> max-pool 2 -> dropout 0.25 -> flatten -> FC (flatten -> 128) -> ReLU -> dropout 0.5 -> FC 128 -> 2 ->
softmax. With ``width=1, padding=0`` (the paper's) the flatten size is 64*7*7 = 3136 at 64 px, 576 at 32 px and 64
at 16 px. The benchmark's default (``EvalConfig``) is ``width=2, padding=1`` (64 and 128 channels, borders kept),
trained on degraded copies too: the paper's network, even so trained, lets blurred outliers through
(bench/validity.py; measured in docs/trust.md).

Class indices: 0 = inlier, 1 = outlier. The network returns logits; :func:`predict_outlier_prob` applies the
softmax.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench import atomic
from bench.config import EvalConfig
from bench.degradations import augment
from bench.errors import BenchError
from bench.progress import Progress, null_progress

INLIER, OUTLIER = 0, 1
# Bump when the architecture or the training procedure changes: old cache entries then stop matching.
ARCHITECTURE_VERSION = "inlier-cnn-v4"  # v4: cosine learning rate, heavier augmentation (v3: scaled with the size)
EMBEDDING_DIM = 128


def _conv_out(n: int, padding: int) -> int:
    return (n + 2 * padding - 3) // 2 + 1  # kernel 3, stride 2


def flatten_size(image_size: int, width: int = 1, padding: int = 0) -> int:
    """Length of the flattened feature map for square ``image_size`` inputs (3136 at 64 px with the paper's net)."""
    side = _conv_out(_conv_out(image_size, padding), padding) // 2
    if side < 1:
        raise BenchError(f"image size {image_size} px is too small for the inlier classifier (need at least 7 px)")
    return 64 * width * side * side


class InlierCNN(nn.Module):
    def __init__(self, image_size: int, in_channels: int = 3, width: int = 1, padding: int = 0):
        super().__init__()
        self.image_size, self.width, self.padding = image_size, width, padding
        self.conv1 = nn.Conv2d(in_channels, 32 * width, kernel_size=3, stride=2, padding=padding)
        self.conv2 = nn.Conv2d(32 * width, 64 * width, kernel_size=3, stride=2, padding=padding)
        self.pool = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(flatten_size(image_size, width, padding), EMBEDDING_DIM)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(EMBEDDING_DIM, 2)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate (128-d, post-ReLU) features of float images in [0, 1]."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.drop1(self.pool(x))
        return F.relu(self.fc1(torch.flatten(x, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop2(self.embed(x)))


def as_uint8_images(images, what: str = "images") -> torch.Tensor:
    """``images`` as a uint8 N x C x H x W tensor (numpy arrays accepted); one-line BenchError otherwise."""
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8 or t.dim() != 4:
        raise BenchError(f"{what}: expected uint8 images of shape N x C x H x W, got {t.dtype} {tuple(t.shape)}")
    return t


def _to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float().div_(255.0)


def train_classifier(
    images_uint8, is_outlier_bool, cfg: EvalConfig, seed: int, progress: Progress = null_progress
) -> InlierCNN:
    """Train the CNN with Adam and cross-entropy on a labelled split (the learning rate annealed to zero on a cosine
    unless ``cfg.classifier_lr_schedule`` is "constant"); returns it in eval mode.

    The split should be balanced (paper §4.3: "the same number of inliers and outliers") and disjoint from
    every generator's training images; that is the caller's data protocol. Both classes must be present.
    Deterministic for a given seed (init and shuffling use a forked RNG; the global RNG is left untouched).
    """
    images = as_uint8_images(images_uint8, "classifier training images")
    labels = torch.as_tensor(is_outlier_bool).to(torch.bool).reshape(-1)
    if len(labels) != len(images):
        raise BenchError(f"classifier training: {len(images)} images but {len(labels)} labels")
    n_out = int(labels.sum())
    if n_out == 0 or n_out == len(labels):
        raise BenchError(
            f"classifier training split has {len(labels) - n_out} inliers and {n_out} outliers: it needs both"
        )
    if images.shape[2] != images.shape[3]:
        raise BenchError(f"classifier training images must be square, got {images.shape[2]}x{images.shape[3]}")
    targets = labels.long()  # 0 = inlier, 1 = outlier
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = InlierCNN(images.shape[2], images.shape[1], cfg.classifier_width, cfg.classifier_padding)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.classifier_lr)
        steps = cfg.classifier_epochs * -(-len(images) // cfg.classifier_batch)
        schedule = (
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cfg.classifier_lr_schedule == "cosine" else None
        )
        gen = torch.Generator().manual_seed(seed)
        net.train()
        with progress(total=cfg.classifier_epochs, desc="inlier classifier training, epoch") as bar:
            for _epoch in range(cfg.classifier_epochs):
                order = torch.randperm(len(images), generator=gen)
                for start in range(0, len(images), cfg.classifier_batch):
                    idx = order[start : start + cfg.classifier_batch]
                    batch = augment(images[idx], gen) if cfg.classifier_augment else images[idx]
                    loss = F.cross_entropy(net(_to_float(batch)), targets[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if schedule is not None:
                        schedule.step()
                bar.update(1)
    return net.eval()


def classifier_cache_key(images_uint8, is_outlier_bool, cfg: EvalConfig, seed: int) -> str:
    """sha256 of the image and label bytes, their shapes, the training settings, the seed and the architecture."""
    images = as_uint8_images(images_uint8, "classifier training images").contiguous()
    labels = torch.as_tensor(is_outlier_bool).to(torch.bool).reshape(-1).contiguous()
    settings = {
        "arch": ARCHITECTURE_VERSION,
        "shape": list(images.shape),
        "epochs": cfg.classifier_epochs,
        "batch": cfg.classifier_batch,
        "lr": cfg.classifier_lr,
        "augment": cfg.classifier_augment,
        "width": cfg.classifier_width,
        "padding": cfg.classifier_padding,
        "schedule": cfg.classifier_lr_schedule,
        "seed": seed,
    }
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(images.numpy().tobytes())
    h.update(labels.numpy().tobytes())
    return h.hexdigest()


def load_or_train_classifier(
    images, labels, cfg: EvalConfig, seed: int, cache_dir: Path, progress: Progress = null_progress
) -> InlierCNN:
    """The trained classifier from ``cache_dir`` if this exact (data, settings, seed) was trained before, else train
    it and store it there (atomic write). An unreadable cache entry is retrained and overwritten."""
    key = classifier_cache_key(images, labels, cfg, seed)
    path = Path(cache_dir) / f"inlier_cnn-{key[:24]}.pt"
    if path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("key") == key:
                net = InlierCNN(
                    int(blob["image_size"]), int(blob["in_channels"]), int(blob["width"]), int(blob["padding"])
                )
                net.load_state_dict(blob["state_dict"])
                return net.eval()
        except Exception as e:  # a damaged derived file: retrain rather than fail the cell
            print(f"note: classifier cache {path} is unreadable ({type(e).__name__}); retraining", file=sys.stderr)
    net = train_classifier(images, labels, cfg, seed, progress)
    atomic.torch_save(
        path,
        {
            "key": key,
            "image_size": net.image_size,
            "in_channels": net.conv1.in_channels,
            "width": net.width,
            "padding": net.padding,
            "state_dict": net.state_dict(),
            "eval_config": dataclasses.asdict(cfg),
        },
    )
    return net


def _check_fits(classifier: InlierCNN, images: torch.Tensor, what: str) -> None:
    expected = (classifier.conv1.in_channels, classifier.image_size, classifier.image_size)
    if tuple(images.shape[1:]) != expected:
        raise BenchError(
            f"{what}: images are {tuple(images.shape[1:])} but the classifier was trained on {expected} (C, H, W)"
        )


def _batched(classifier: InlierCNN, images_uint8, fn, what: str, batch: int) -> torch.Tensor:
    images = as_uint8_images(images_uint8, what)
    _check_fits(classifier, images, what)
    classifier.eval()
    with torch.inference_mode():
        parts = [fn(_to_float(images[i : i + batch])) for i in range(0, len(images), batch)]
    if not parts:
        return torch.empty(0)
    return torch.cat(parts)


def predict_outlier_prob(classifier: InlierCNN, images_uint8, batch: int = 256) -> torch.Tensor:
    """P(outlier) per image (softmax of the two logits), a float tensor of length N."""
    return _batched(
        classifier, images_uint8, lambda x: torch.softmax(classifier(x), dim=1)[:, OUTLIER], "images to classify", batch
    )


def is_outlier_prediction(outlier_prob: torch.Tensor) -> torch.Tensor:
    """The classifier's decision (argmax of the softmax): outlier iff P(outlier) > 0.5."""
    return outlier_prob > 0.5


def classifier_embeddings(classifier: InlierCNN, images_uint8, batch: int = 256) -> torch.Tensor:
    """N x 128 penultimate-layer features (the fallback feature space for ``fd_classifier``)."""
    return _batched(classifier, images_uint8, classifier.embed, "images to embed", batch).reshape(-1, EMBEDDING_DIM)


def classifier_fingerprint(classifier: InlierCNN) -> str:
    """sha256 of the classifier's weights: its identity as a feature extractor (for feature caches)."""
    h = hashlib.sha256(ARCHITECTURE_VERSION.encode())
    for name, tensor in sorted(classifier.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
