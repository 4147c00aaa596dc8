"""Tiny datasets in the real on-disk formats, so tests run torchvision's own loaders."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_TYPE_UBYTE = 0x08


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An IDX file (MNIST's format): magic 0x0000 0x08 ndim, big-endian int32 dims, bytes."""
    header = struct.pack(">HBB", 0, IDX_TYPE_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist(folder: Path, n_train: int = 64, n_test: int = 32, seed: int = 0, compress: bool = False) -> dict:
    """train/t10k images and labels in ``folder``; digits drawn as class-coded bright squares."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 30, size=(n, 28, 28))
        for i, label in enumerate(labels):  # a learnable signal: a bright block whose place codes the label
            r, c = divmod(int(label), 5)
            images[i, 4 + 10 * r : 12 + 10 * r, 2 + 5 * c : 6 + 5 * c] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels, compress)
        arrays[split] = (images, labels)
    return arrays


def write_cifar10(root: Path, n_per_batch: int = 8, seed: int = 0) -> dict:
    """cifar-10-batches-py with five training batches, a test batch and batches.meta."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = list(rng.integers(0, 10, size=n_per_batch))
        data = rng.integers(0, 256, size=(n_per_batch, 3 * 32 * 32)).astype(np.uint8)
        with (folder / name).open("wb") as f:
            pickle.dump({"data": data, "labels": [int(v) for v in labels]}, f)
        arrays[name] = (data, labels)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return arrays
