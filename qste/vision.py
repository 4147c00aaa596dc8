"""Image datasets through torchvision, loaded once into normalised tensors.

No per-sample transforms: each split becomes one float tensor [N, C, H, W], normalised
with the dataset's channel mean and std; CIFAR-10 augmentation runs on whole batches
of device tensors (``random_crop_flip``).

Where the files live, per dataset (``root`` = ``dataset.root``):
- torchvision's own layout: ``root/MNIST/raw/train-images-idx3-ubyte`` ...,
  ``root/cifar-10-batches-py/data_batch_1`` ... (``download=true`` fetches them there);
- for MNIST and Fashion-MNIST also a flat folder of IDX files, plain or ``.gz`` (as
  Debian's ``dataset-fashion-mnist`` installs under /usr/share/datasets/fashion-mnist):
  they are unpacked once into a cache in torchvision's layout.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from qste.errors import QsteError


@dataclass(frozen=True)
class VisionSpec:
    """What qste needs to know about one torchvision dataset class."""

    class_name: str  # in torchvision.datasets; imported only when data are loaded (torchvision imports slowly)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: tuple[str, ...]  # the files the class reads, relative to its folder
    folder: str  # the class's folder under root
    n_classes: int = 10

    @property
    def idx(self) -> bool:
        return self.class_name in ("MNIST", "FashionMNIST")

    @property
    def cls(self) -> type:
        import torchvision

        return getattr(torchvision.datasets, self.class_name)


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SPECS = {
    "mnist": VisionSpec("MNIST", (0.1307,), (0.3081,), _IDX_FILES, "MNIST/raw"),
    "fashion_mnist": VisionSpec("FashionMNIST", (0.2860,), (0.3530,), _IDX_FILES, "FashionMNIST/raw"),
    "cifar10": VisionSpec(
        "CIFAR10",
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        "cifar-10-batches-py",
    ),
}


def locate(name: str, root: str, download: bool) -> tuple[Path, bool]:
    """(root in torchvision's layout, whether the files are there); an error if they are
    missing and may not be downloaded. Cheap: meant for checking before training too."""
    spec = SPECS[name]
    root_path = Path(root).expanduser().resolve()
    if spec.idx and not _has_files(root_path / spec.folder, spec.files):
        root_path = _unpack_flat_idx(root_path, spec) or root_path
    present = _has_files(root_path / spec.folder, spec.files)
    if not present and not download:
        raise QsteError(_missing_message(name, spec, Path(root)))
    return root_path, present


def load_vision(name: str, root: str, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(train_x, train_y, test_x, test_y) of dataset ``name``, normalised, on the CPU."""
    spec = SPECS[name]
    root_path, present = locate(name, root, download)
    splits = []
    for train in (True, False):
        try:
            ds = spec.cls(str(root_path), train=train, download=download and not present)
        except Exception as error:  # torchvision raises RuntimeError, URLError, AssertionError, ...
            raise QsteError(_load_error_message(name, spec, Path(root), present, error)) from None
        splits += list(_to_tensors(ds, spec))
    return splits[0], splits[1], splits[2], splits[3]


def _to_tensors(ds: torch.utils.data.Dataset, spec: VisionSpec) -> tuple[Tensor, Tensor]:
    data = torch.as_tensor(ds.data)
    images = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)  # -> [N, C, H, W]
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    if len(images) != len(labels):
        raise QsteError(f"{type(ds).__name__}: {len(images)} images but {len(labels)} labels; the files do not match")
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (images.float().div_(255) - mean).div_(std).contiguous(), labels


def _has_files(folder: Path, files: tuple[str, ...]) -> bool:
    return all((folder / f).is_file() for f in files)


def _unpack_flat_idx(root: Path, spec: VisionSpec) -> Path | None:
    """A cache root in torchvision's layout, made from IDX files lying directly in ``root``."""
    sources = []
    for name in spec.files:
        plain, packed = root / name, root / f"{name}.gz"
        sources.append(plain if plain.is_file() else packed if packed.is_file() else None)
    if None in sources:
        return None
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    cache_root = cache_home / "qste" / hashlib.sha1(str(root).encode()).hexdigest()[:12]
    target = cache_root / spec.folder
    target.mkdir(parents=True, exist_ok=True)
    for name, source in zip(spec.files, sources):
        destination = target / name
        if destination.is_file() and destination.stat().st_mtime >= source.stat().st_mtime:
            continue
        tmp = destination.with_suffix(".tmp")
        with (gzip.open(source) if source.suffix == ".gz" else source.open("rb")) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.replace(destination)
    return cache_root


def _missing_message(name: str, spec: VisionSpec, root: Path) -> str:
    where = root / spec.folder
    flat = f" (or these files, plain or .gz, directly in {root})" if spec.idx else ""
    return (
        f"dataset.root={root}: {name} not found: looked for {where}/{{{', '.join(spec.files)}}}{flat}; "
        f"put the files there or set dataset.download=true (needs network); dataset.root or QSTE_DATA names the folder"
    )


def _load_error_message(name: str, spec: VisionSpec, root: Path, present: bool, error: Exception) -> str:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if present:
        return (
            f"dataset.root={root}: {name} files in {root / spec.folder} could not be read ({reason}); "
            "they may be truncated or corrupt: delete them and download or copy them again"
        )
    return f"dataset.root={root}: could not download {name} into {root / spec.folder} ({reason}); {_missing_message(name, spec, root)}"


def random_crop_flip(x: Tensor, generator: torch.Generator, padding: int = 4) -> Tensor:
    """Per-image random crop (zero padding) and horizontal flip of a batch [N, C, H, W]."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    shift = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device) + shift[0, :, None])[:, None, :, None]  # [N, 1, H, 1]
    cols = (torch.arange(w, device=x.device) + shift[1, :, None])[:, None, None, :]  # [N, 1, 1, W]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    cropped = padded[batch, channel, rows, cols]
    flip = torch.rand(n, generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)
