"""Datasets as device-resident tensors.

Every dataset is loaded once into ``Splits`` (whole train and test tensors on the run's
device); the training loop batches them by slicing a random permutation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
from omegaconf import DictConfig
from torch import Tensor

from qste.vision import SPECS, load_vision, random_crop_flip


@dataclass
class Splits:
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    n_classes: int
    # Applied to each training batch on the device (e.g. random crop + flip), or None.
    augment: Optional[Callable[[Tensor, torch.Generator], Tensor]] = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def in_features(self) -> int:
        return math.prod(self.input_shape)

    def to(self, device: torch.device) -> Splits:
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )


def random_orthogonal(dim: int, generator: torch.Generator) -> Tensor:
    """A random dim x dim orthogonal matrix (QR of a Gaussian matrix, float64)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # sign fix makes Q Haar-distributed


def orthogonal_centres(
    n_classes: int, clusters_per_class: int, dim: int, subspace_dim: int, radius: float, g: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Class k lives in span(U_k), U_k = columns [k*s, (k+1)*s) of a random orthogonal Q.

    Its clusters sit at +-radius * U_k[:, j] for j < clusters_per_class / 2, so every
    class has mean zero and the classes are not linearly separable.
    Returns (centres [K*C, dim], bases [K, dim, s]).
    """
    q = random_orthogonal(dim, g)
    bases = torch.stack([q[:, k * subspace_dim : (k + 1) * subspace_dim] for k in range(n_classes)])
    pairs = clusters_per_class // 2
    directions = bases[:, :, :pairs].transpose(1, 2)  # [K, pairs, dim]
    centres = radius * torch.cat([directions, -directions], dim=1)  # [K, C, dim]
    return centres.reshape(-1, dim), bases


def random_centres(n_centres: int, dim: int, radius: float, min_gap: float, g: torch.Generator) -> Tensor:
    """n_centres points on the sphere of given radius, pairwise at least min_gap apart."""
    centres: list[Tensor] = []
    for _ in range(1000 * n_centres):
        c = torch.randn(dim, generator=g, dtype=torch.float64)
        c = radius * c / c.norm()
        if all((c - other).norm() >= min_gap for other in centres):
            centres.append(c)
            if len(centres) == n_centres:
                return torch.stack(centres)
    raise ValueError(
        f"could not place {n_centres} centres on a sphere of radius {radius} in R^{dim} "
        f"at least {min_gap} apart; lower dataset.min_gap or raise dataset.dim"
    )


def gaussian_clusters(
    layout: str,
    n_classes: int,
    clusters_per_class: int,
    dim: int,
    subspace_dim: int,
    radius: float,
    std: float,
    min_gap: float,
    n_train: int,
    n_test: int,
    seed: int,
) -> Splits:
    """K classes, each a union of Gaussian clusters; train and test from one mixture.

    ``orthogonal``: noise is isotropic inside the class subspace, so every sample of
    class k lies exactly in span(U_k). ``random``: K*C centres on a sphere, labels
    round-robin (centre i belongs to class i mod K), isotropic noise in R^dim.
    """
    g = torch.Generator().manual_seed(seed)
    n_centres = n_classes * clusters_per_class
    if layout == "orthogonal":
        centres, bases = orthogonal_centres(n_classes, clusters_per_class, dim, subspace_dim, radius, g)
        noise_basis = bases.repeat_interleave(clusters_per_class, dim=0)  # [K*C, dim, s]
    elif layout == "random":
        centres = random_centres(n_centres, dim, radius, min_gap, g)
        noise_basis = torch.eye(dim, dtype=torch.float64).expand(n_centres, dim, dim)
    else:
        raise ValueError(f"layout must be 'orthogonal' or 'random', got {layout!r}")
    # Orthogonal layout: centre k*C + j belongs to class k; random: round-robin.
    centre_class = (
        torch.arange(n_centres) // clusters_per_class if layout == "orthogonal" else torch.arange(n_centres) % n_classes
    )

    def draw(n: int) -> tuple[Tensor, Tensor]:
        which = torch.randint(n_centres, (n,), generator=g)
        z = torch.randn(n, noise_basis.shape[2], 1, generator=g, dtype=torch.float64)
        x = centres[which] + std * (noise_basis[which] @ z).squeeze(2)
        return x.float(), centre_class[which]

    train_x, train_y = draw(n_train)
    test_x, test_y = draw(n_test)
    return Splits(train_x, train_y, test_x, test_y, n_classes)




def load_dataset(cfg: DictConfig) -> Splits:
    """The dataset named by the ``dataset/`` config group, on the CPU."""
    if cfg.name == "gaussian_clusters":
        return gaussian_clusters(
            layout=cfg.layout.name,
            n_classes=cfg.n_classes,
            clusters_per_class=cfg.clusters_per_class,
            dim=cfg.dim,
            subspace_dim=cfg.subspace_dim,
            radius=cfg.radius,
            std=cfg.std,
            min_gap=cfg.min_gap,
            n_train=cfg.n_train,
            n_test=cfg.n_test,
            seed=cfg.seed,
        )
    if cfg.name in SPECS:
        train_x, train_y, test_x, test_y = load_vision(cfg.name, cfg.root, cfg.download)
        return Splits(
            train_x[: cfg.limit_train],
            train_y[: cfg.limit_train],
            test_x[: cfg.limit_test],
            test_y[: cfg.limit_test],
            SPECS[cfg.name].n_classes,
            augment=random_crop_flip if cfg.augment else None,
        )
    raise ValueError(f"unknown dataset {cfg.name!r}")
