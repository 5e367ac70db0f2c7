"""Datasets, held as whole tensors on the training device (no DataLoader workers, no host round trips).

* Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (gzipped IDX files under
  /usr/share/datasets/fashion-mnist), read directly: torchvision's own loader would try to download
  and its checksum check rejects Debian's .gz files. Images are zero-padded 28 -> 32 so two
  reductions keep even sizes.
* CIFAR-10 through torchvision from a folder the user gives (``download=False``).
* A synthetic set (class-dependent blobs) for unit tests.

All are returned as float32 NCHW tensors normalised per channel, labels int64.
"""
from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from searchspace.config import SearchConfig

log = logging.getLogger(__name__)

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # (N, C, 32, 32) float32, normalised (16 x 16 for the synthetic set)
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device) -> "Split":
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))


@dataclass(frozen=True)
class Datasets:
    train: Split  # search (weights; also alphas with arch_data=same)
    val: Split  # held out from the training split: supernet accuracy; alphas with arch_data=split
    test: Split  # the official test split: the target network's accuracy
    eval_train: Split  # the target network's training images (the search's, or more: eval_train_size)


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte payload
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion(root: str = "") -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train_x uint8 (60000, 28, 28), train_y), (test_x, test_y)) from the Debian package's files."""
    root = root or FASHION_DIR
    out = []
    for split in ("train", "test"):
        img, lab = (os.path.join(root, f) for f in FASHION_FILES[split])
        if not (os.path.exists(img) and os.path.exists(lab)):
            raise FileNotFoundError(
                f"Fashion-MNIST not found at {root} (missing {os.path.basename(img)}): install the Debian package "
                f"`dataset-fashion-mnist` (apt-get install -y dataset-fashion-mnist) or set data_dir")
        out.append((_read_idx(img), _read_idx(lab).astype(np.int64)))
    return out[0], out[1]


def load_cifar10(root: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train_x uint8 (50000, 32, 32, 3), train_y), (test_x, test_y)) via torchvision, never downloading."""
    if not root:
        raise ValueError("dataset=cifar10 needs data_dir: a folder holding cifar-10-batches-py (torchvision layout)")
    from torchvision.datasets import CIFAR10

    try:
        tr, te = CIFAR10(root, train=True, download=False), CIFAR10(root, train=False, download=False)
    except RuntimeError as exc:
        raise FileNotFoundError(f"CIFAR-10 not found under {root}: {exc}") from None
    return (tr.data, np.asarray(tr.targets, np.int64)), (te.data, np.asarray(te.targets, np.int64))


def synthetic(n: int, seed: int, in_channels: int = 1, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy 16x16 images: each class is a fixed random 4x4 pattern upsampled, plus noise."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(1234).random((classes, in_channels, 4, 4)).astype(np.float32)
    y = rng.integers(0, classes, n)
    x = np.kron(protos[y], np.ones((1, 1, 4, 4), np.float32)) + 0.3 * rng.standard_normal((n, in_channels, 16, 16))
    return (np.clip(x, 0, 1) * 255).astype(np.uint8), y.astype(np.int64)


def _to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 images -> float (N, C, H, W) in [0, 1]; 28x28 grey images are zero-padded to 32x32."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.ndim == 3:  # (N, 28, 28) grey
        t = t.unsqueeze(1)
    elif t.shape[-1] == 3:  # (N, 32, 32, 3) HWC
        t = t.permute(0, 3, 1, 2)
    t = t.float().div_(255.0)
    return F.pad(t, (2, 2, 2, 2)) if t.shape[-1] == 28 else t


def _subset(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x[idx], y[idx]


def load_datasets(config: SearchConfig, device: torch.device | str = "cpu") -> Datasets:
    """Train / val / test splits for a config, subsetted with a seed-independent permutation (so every
    trial of an experiment sees the same images), normalised with train-split statistics, on ``device``."""
    if config.dataset == "fashion":
        (trx, tr_y), (tex, tey) = load_fashion(config.data_dir)
    elif config.dataset == "cifar10":
        (trx, tr_y), (tex, tey) = load_cifar10(config.data_dir)
    else:
        n_tr = (config.train_size or 2000) + config.val_size
        (trx, tr_y), (tex, tey) = synthetic(n_tr, 1, config.in_channels), synthetic(config.test_size or 500, 2, config.in_channels)

    perm = np.random.default_rng(0).permutation(len(tr_y))
    n_val = min(config.val_size, len(tr_y) // 2)
    n_train = min(config.train_size or len(tr_y) - n_val, len(tr_y) - n_val)
    n_eval = min(config.eval_train_size or n_train, len(tr_y) - n_val)
    val_idx, train_idx = perm[:n_val], perm[n_val:n_val + n_train]
    eval_idx = perm[n_val:n_val + n_eval]  # starts with the search's images
    test_idx = np.arange(min(config.test_size or len(tey), len(tey)))

    tr = _to_tensor(trx[train_idx])
    mean = tr.mean(dim=(0, 2, 3), keepdim=True)
    std = tr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)

    def split(x: np.ndarray, y: np.ndarray, t: torch.Tensor | None = None) -> Split:
        t = _to_tensor(x) if t is None else t
        return Split(((t - mean) / std).contiguous(), torch.from_numpy(np.ascontiguousarray(y))).to(torch.device(device))

    train = split(trx[train_idx], tr_y[train_idx], tr)
    data = Datasets(train, split(*_subset(trx, tr_y, val_idx)), split(tex[test_idx], tey[test_idx]),
                    train if n_eval == n_train else split(*_subset(trx, tr_y, eval_idx)))
    log.info("data %s: train %d, val %d, test %d, target-network train %d on %s", config.dataset, len(data.train),
             len(data.val), len(data.test), len(data.eval_train), device)
    return data


PAD = 4  # random-crop padding (pixels each side), as DARTS's CIFAR pipeline


def batches(split: Split, batch_size: int, generator: torch.Generator, augment: bool, drop_last: bool = True):
    """Shuffled (x, y) batches, augmented on the split's device: every image its own random 4-pixel-padded
    crop and horizontal flip (``augment_batch``).

    The permutation and the per-image draws come from ``generator`` (CPU: one small (N, 3) draw per batch,
    so a seed fixes the whole stream on CPU and GPU alike and a checkpoint carries its position).
    """
    n = len(split)
    order = torch.randperm(n, generator=generator)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        draws = torch.randint(0, 2 * PAD + 1, (len(idx), 3), generator=generator) if augment else None
        idx = idx.to(split.x.device)
        x, y = split.x.index_select(0, idx), split.y.index_select(0, idx)
        if augment:
            x = augment_batch(x, draws[:, :2].to(x.device, non_blocking=True),
                              (draws[:, 2] % 2).bool().to(x.device, non_blocking=True))
        yield x, y


def augment_batch(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Per-image random crop of the zero-padded image, then per-image horizontal flip, as two gathers.

    x: (N, C, H, W); offsets: (N, 2) int in [0, 2*pad] (row, column of the crop's corner in the padded
    image; ``pad`` = no shift); flips: (N,) bool. Output (N, C, H, W), x's dtype and device. No loop over
    images: the crop's rows and (flipped) columns are index tensors, read with one ``gather`` per axis.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # (N, C, H+2p, W+2p), zero fill (the normalised mean)
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[:, 0:1].long() + ar_h  # (N, H)
    cols = offsets[:, 1:2].long() + torch.where(flips[:, None], (w - 1) - ar_w, ar_w)  # (N, W): flip after crop
    x = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad))  # (N, C, H, W+2p)
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w))  # (N, C, H, W)
