"""Optimizer, learning-rate schedule and loss, built from their config groups."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]


def build_optimizer(cfg: DictConfig, params: Iterable[Tensor]) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.name!r}")


def build_scheduler(
    cfg: DictConfig, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-epoch schedule, or None for a constant learning rate."""
    schedule = cfg.schedule.name
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    return None


def build_loss(name: str, n_classes: int) -> LossFn:
    """Mean loss over the batch of (logits, integer labels)."""
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "multi_margin":
        return F.multi_margin_loss
    if name == "mse":
        return lambda logits, y: F.mse_loss(logits, F.one_hot(y, n_classes).to(logits.dtype))
    raise ValueError(f"unknown loss {name!r}")
