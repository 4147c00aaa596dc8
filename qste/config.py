"""Structured-config schemas (registered in Hydra's ConfigStore) and value checks.

The dataclasses fix every key and its type, so Hydra rejects a wrong key or type while
composing; the values live in the YAML files under conf/, one place only. ``RULES`` adds the value ranges a type cannot express; ``check_config``
applies them to a composed config before any training starts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from qste.errors import QsteError
from qste.quant import MAX_BITS
from qste.ste import STES
from qste.vision import SPECS


# --- dataset/ ---------------------------------------------------------------------


class Layout(Enum):
    orthogonal = "orthogonal"
    random = "random"


@dataclass
class GaussianClustersConfig:
    name: str = "gaussian_clusters"
    layout: Layout = MISSING
    n_classes: int = MISSING
    clusters_per_class: int = MISSING
    dim: int = MISSING
    subspace_dim: int = MISSING
    radius: float = MISSING
    std: float = MISSING
    min_gap: float = MISSING
    n_train: int = MISSING
    n_test: int = MISSING
    seed: int = MISSING


@dataclass
class TorchvisionDatasetConfig:
    name: str = MISSING  # mnist | fashion_mnist | cifar10
    root: str = MISSING
    download: bool = MISSING
    limit_train: Optional[int] = MISSING
    limit_test: Optional[int] = MISSING
    augment: bool = MISSING


# --- model/ -----------------------------------------------------------------------


class OutputInit(Enum):
    random = "random"
    blocks = "blocks"


@dataclass
class TwoLayerConfig:
    name: str = "two_layer"
    hidden: int = MISSING
    bias: bool = MISSING
    output_init: OutputInit = MISSING
    freeze_output: bool = MISSING


@dataclass
class ConvNetConfig:
    name: str = MISSING  # lenet5 | vgg11
    bn_before_act: bool = MISSING
    bn_affine: bool = MISSING


@dataclass
class ResNetConfig:
    name: str = "resnet20"
    bn_affine: bool = MISSING


# --- ste/ -------------------------------------------------------------------------


@dataclass
class SteConfig:
    name: str = MISSING


# --- optimizer/ -------------------------------------------------------------------


class Schedule(Enum):
    none = "none"
    cosine = "cosine"
    step = "step"


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    schedule: Schedule = MISSING
    step_size: int = MISSING
    gamma: float = MISSING


@dataclass
class SgdConfig(OptimizerConfig):
    name: str = "sgd"
    momentum: float = MISSING
    nesterov: bool = MISSING


@dataclass
class AdamConfig(OptimizerConfig):
    name: str = "adam"
    betas: tuple[float, float] = MISSING


# --- logger/ --------------------------------------------------------------------


@dataclass
class LoggerConfig:
    name: str = MISSING  # none | tensorboard


# --- top level --------------------------------------------------------------------


class Loss(Enum):
    cross_entropy = "cross_entropy"
    multi_margin = "multi_margin"
    mse = "mse"


@dataclass
class Config:
    dataset: Any = MISSING
    model: Any = MISSING
    ste: SteConfig = MISSING
    optimizer: Any = MISSING
    logger: LoggerConfig = MISSING
    bits: Optional[int] = MISSING
    alpha: Any = MISSING  # a positive number or "calibrate": no Union type in OmegaConf 2.3
    calibration_percentile: float = MISSING
    loss: Loss = MISSING
    seed: int = MISSING
    epochs: int = MISSING
    batch_size: Optional[int] = MISSING
    eval_batch_size: int = MISSING
    device: str = MISSING
    checkpoint_every_s: float = MISSING
    init_from: Optional[str] = MISSING




def register_configs(cs: ConfigStore | None = None) -> None:
    """Put the schemas in Hydra's ConfigStore, under schema/<group>; each YAML file names
    its schema in its defaults list (``- /schema/<group>@_here_: <name>``)."""
    cs = cs or ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    schemas = {
        "dataset": {"gaussian_clusters": GaussianClustersConfig, "torchvision": TorchvisionDatasetConfig},
        "model": {"two_layer": TwoLayerConfig, "conv_net": ConvNetConfig, "resnet": ResNetConfig},
        "ste": {"ste": SteConfig},
        "optimizer": {"sgd": SgdConfig, "adam": AdamConfig},
        "logger": {"logger": LoggerConfig},
    }
    for group, nodes in schemas.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=node)


# --- value checks -----------------------------------------------------------------


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _non_negative(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _positive(v: Any) -> bool:
    return _non_negative(v) and v > 0


def _device(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None


@dataclass(frozen=True)
class Rule:
    key: str
    ok: Callable[[Any], bool]
    allowed: str


RULES = [
    Rule("bits", lambda v: v is None or (_positive_int(v) and v <= MAX_BITS), f"null (float ReLU) or an integer in 1..{MAX_BITS}"),
    Rule("alpha", lambda v: v == "calibrate" or _positive(v), "'calibrate' or a positive number"),
    Rule("calibration_percentile", lambda v: _positive(v) and v <= 100, "a number in (0, 100]"),
    Rule("ste.name", lambda v: v in STES.names(), "one of " + ", ".join(STES.names())),
    Rule("seed", lambda v: isinstance(v, int) and v >= 0, "a non-negative integer"),
    Rule("epochs", _positive_int, "an integer >= 1"),
    Rule("batch_size", lambda v: v is None or _positive_int(v), "null (full batch) or an integer >= 1"),
    Rule("eval_batch_size", _positive_int, "an integer >= 1"),
    Rule("device", _device, "auto, cpu, cuda or cuda:N"),
    Rule("checkpoint_every_s", _non_negative, "a number >= 0 (seconds)"),
    Rule("optimizer.lr", _positive, "a positive number"),
    Rule("optimizer.weight_decay", _non_negative, "a number >= 0"),
    Rule("optimizer.momentum", lambda v: _non_negative(v) and v < 1, "a number in [0, 1)"),
    Rule("optimizer.step_size", _positive_int, "an integer >= 1 (epochs)"),
    Rule("optimizer.gamma", _positive, "a positive number"),
    Rule("optimizer.betas", lambda v: len(v) == 2 and all(_non_negative(b) and b < 1 for b in v), "two numbers in [0, 1)"),
    Rule("model.hidden", _positive_int, "an integer >= 1"),
    Rule("dataset.n_classes", lambda v: _positive_int(v) and v >= 2, "an integer >= 2"),
    Rule("dataset.clusters_per_class", _positive_int, "an integer >= 1"),
    Rule("dataset.dim", _positive_int, "an integer >= 1"),
    Rule("dataset.subspace_dim", _positive_int, "an integer >= 1"),
    Rule("dataset.radius", _positive, "a positive number"),
    Rule("dataset.std", _non_negative, "a number >= 0"),
    Rule("dataset.min_gap", _non_negative, "a number >= 0"),
    Rule("dataset.n_train", _positive_int, "an integer >= 1"),
    Rule("dataset.n_test", _positive_int, "an integer >= 1"),
    Rule("dataset.limit_train", lambda v: v is None or _positive_int(v), "null (all) or an integer >= 1"),
    Rule("dataset.limit_test", lambda v: v is None or _positive_int(v), "null (all) or an integer >= 1"),
    Rule("dataset.seed", lambda v: isinstance(v, int) and v >= 0, "a non-negative integer"),
]

# What each key allows, for the one-line errors: the rules above, and the enum-typed keys
# (whose type check happens while Hydra composes).
ENUM_KEYS = {"loss": Loss, "dataset.layout": Layout, "model.output_init": OutputInit, "optimizer.schedule": Schedule}
ALLOWED = {rule.key: rule.allowed for rule in RULES} | {
    key: "one of " + ", ".join(member.name for member in enum) for key, enum in ENUM_KEYS.items()
}


def check_config(cfg: DictConfig) -> None:
    """Raise QsteError for the first value outside its allowed range."""
    for rule in RULES:
        if _has(cfg, rule.key):
            value = _plain(OmegaConf.select(cfg, rule.key))
            if not rule.ok(value):
                raise QsteError(f"{rule.key}={_show(value)}: must be {rule.allowed}")
    _check_combinations(cfg)


def _check_combinations(cfg: DictConfig) -> None:
    """Constraints that tie several keys together."""
    data, model = cfg.dataset, cfg.model
    if data.name == "gaussian_clusters":
        if data.layout == Layout.orthogonal:
            if data.clusters_per_class % 2:
                raise QsteError(
                    f"dataset.clusters_per_class={data.clusters_per_class}: the orthogonal layout needs an even number "
                    "(antipodal pairs)"
                )
            if data.clusters_per_class // 2 > data.subspace_dim:
                raise QsteError(
                    f"dataset.clusters_per_class={data.clusters_per_class}: the orthogonal layout allows at most "
                    f"2 * dataset.subspace_dim = {2 * data.subspace_dim}"
                )
            if data.dim < data.n_classes * data.subspace_dim:
                raise QsteError(
                    f"dataset.dim={data.dim}: the orthogonal layout needs dim >= n_classes * subspace_dim "
                    f"= {data.n_classes * data.subspace_dim}"
                )
    n_classes = data.n_classes if "n_classes" in data else SPECS[data.name].n_classes
    if model.name == "two_layer" and model.output_init == OutputInit.blocks and model.hidden % n_classes:
        raise QsteError(
            f"model.hidden={model.hidden}: output_init=blocks needs a multiple of the number of classes ({n_classes})"
        )
    datasets = IMAGE_MODEL_DATASETS.get(model.name)
    if datasets and data.name not in datasets:
        raise QsteError(f"model={model.name}: needs dataset={' or '.join(datasets)} (its input shape), not dataset={data.name}")


# Conv nets are built for one input shape: 1x28x28 (LeNet-5) or 3x32x32 (VGG-11, ResNet-20).
IMAGE_MODEL_DATASETS = {"lenet5": ("mnist", "fashion_mnist"), "vgg11": ("cifar10",), "resnet20": ("cifar10",)}


def _has(cfg: DictConfig, key: str) -> bool:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node._get_node(part)
    return True


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _show(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "null"
    return value.name if isinstance(value, Enum) else str(value)
