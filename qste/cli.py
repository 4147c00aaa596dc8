"""The ``qste`` command line: ``qste train <hydra overrides>`` (``-m`` for sweeps).

Before Hydra starts any job, every job's configuration is composed and checked here, so
a bad key, type or value stops the whole command with one line naming the key and what
is allowed, and nothing is written.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from qste.config import ALLOWED, check_config, register_configs
from qste.errors import QsteError
from qste.train import resolve_device, train
from qste.vision import SPECS, locate

CONF_DIR = Path(__file__).resolve().parent / "conf"
CONFIG_NAME = "config"

register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=CONFIG_NAME)
def hydra_train(cfg: DictConfig) -> float:
    """One Hydra job: check the composed config, train, return the final test accuracy.

    A QsteError ends a single run with its one-line message; in a sweep it fails this
    job only, and Hydra reports it.
    """
    try:
        check_config(cfg)
        summary = train(cfg, Path(HydraConfig.get().runtime.output_dir))
    except QsteError as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        print(f"qste train: error: {error}", file=sys.stderr)
        sys.exit(2)
    return summary["final"]["test_acc"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qste",
        description="Train activation-quantized networks with the coarse gradient method (STEs).",
        epilog="Examples: qste train ste=clipped_relu bits=2 | qste train -m ste=relu,identity bits=1,2,4 "
        "| qste train --help | qste report outputs/multirun/<date>/<time>",
    )
    parser.add_argument(
        "command",
        choices=["train", "report"],
        help="train: one run, or a sweep with -m (Hydra overrides); report DIR [DIR ...]: table and plots of the runs there",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="Hydra overrides and flags, or report's folders")
    ns = parser.parse_args(argv)
    if ns.command == "report":
        return report_command(ns.args)
    return train_command(ns.args)


def report_command(args: list[str]) -> int:
    from qste.report import report  # matplotlib is imported only for reports

    dirs = [Path(a) for a in args if not a.startswith("-")]
    if not dirs or "-h" in args or "--help" in args:
        print("usage: qste report DIR [DIR ...]  (writes report.md, results.csv and PNG plots into the first DIR)")
        return 0 if dirs or "-h" in args or "--help" in args else 2
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        print(f"qste report: error: {missing[0]}: no such folder", file=sys.stderr)
        return 2
    report(dirs)
    return 0


def train_command(args: list[str]) -> int:
    hydra_args = get_args_parser().parse_args(args)
    asks_for_info = hydra_args.help or hydra_args.hydra_help or hydra_args.info or hydra_args.shell_completion
    if not asks_for_info:
        try:
            check_jobs(hydra_args.overrides, multirun=hydra_args.multirun)
        except QsteError as error:
            print(f"qste train: error: {error}", file=sys.stderr)
            return 2
    sys.argv = ["qste train", *args]
    hydra_train()
    return 0


def check_jobs(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Compose and check the config of every job the command would launch.

    A sweep's jobs come from the command line and, when an experiment config asks for
    MULTIRUN, from its ``hydra.sweeper.params`` (the command line wins, as in Hydra).
    """
    parser = OverridesParser.create()
    try:
        fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    except HydraException as error:
        raise QsteError(f"cannot parse overrides: {first_line(error)}") from None
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        hydra_cfg = compose_job(fixed, return_hydra_config=True).hydra
        multirun = multirun or hydra_cfg.mode == RunMode.MULTIRUN
        params = [f"{k}={v}" for k, v in (hydra_cfg.sweeper.get("params") or {}).items()] if multirun else []
        parsed = parser.parse_overrides(params + overrides)
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps and not multirun:
            raise QsteError(f"{sweeps[0]}: a sweep over several values needs -m (multirun)")
        jobs = BasicSweeper.split_arguments(parsed, None)[0] if multirun else [overrides]
        for cfg in compose_jobs(jobs):
            check_config(cfg)
            resolve_device(cfg.device)
            if cfg.dataset.name in SPECS:
                locate(cfg.dataset.name, cfg.dataset.root, cfg.dataset.download)
    return jobs


def compose_jobs(jobs: list[list[str]]) -> Iterator[DictConfig]:
    """Each job's config, fast enough for sweeps of hundreds of jobs.

    Hydra composes once per distinct choice of config groups (and hydra/... settings);
    plain ``key=value`` overrides are then applied to a copy, as Hydra itself applies
    them after composing.
    """
    parser = OverridesParser.create()
    composed: dict[tuple[str, ...], DictConfig] = {}
    for job in jobs:
        parsed = parser.parse_overrides(job)
        plain = [o for o in parsed if o.input_line[0] not in "+~" and "@" not in o.key_or_group
                 and not o.key_or_group.startswith("hydra") and not (CONF_DIR / o.key_or_group).is_dir()]  # fmt: skip
        structural = tuple(o.input_line for o in parsed if o not in plain)
        if structural not in composed:
            composed[structural] = compose_job(list(structural))
        cfg = copy.deepcopy(composed[structural])
        for override in plain:
            try:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            except OmegaConfBaseException as error:
                raise QsteError(describe_error(error, override.key_or_group, job)) from None
        yield cfg


def compose_job(overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose one job's config, turning Hydra's multi-line errors into one line."""
    try:
        return compose(CONFIG_NAME, overrides=overrides, return_hydra_config=return_hydra_config)
    except MissingConfigException as error:
        group, _, option = (error.missing_cfg_file or "").partition("/")
        options = list(error.options or [])
        if options:
            raise QsteError(f"{group}={option}: unknown option; allowed: {', '.join(options)}") from None
        raise QsteError(first_line(error)) from None
    except ConfigCompositionException as error:
        if isinstance(error.__cause__, OmegaConfBaseException):
            raise QsteError(describe_error(error.__cause__, None, overrides)) from None
        raise QsteError(first_line(error)) from None


def describe_error(error: OmegaConfBaseException, key: str | None, overrides: list[str]) -> str:
    """One line for an unknown key or a value of the wrong type."""
    key = getattr(error, "full_key", None) or key
    if isinstance(error, (ConfigKeyError, ConfigAttributeError)) and key:
        parent, _, _ = key.rpartition(".")
        where = f" in {parent}" if parent else ""
        return f"{key}: unknown key; allowed keys{where}: {', '.join(known_keys(overrides, parent))}"
    if isinstance(error, ValidationError) and key:
        return f"{key}={override_value(overrides, key)}: must be {ALLOWED.get(key) or first_line(error)}"
    return first_line(error)


def known_keys(overrides: list[str], parent: str) -> list[str]:
    """The keys at ``parent`` in the config composed from the group choices alone."""
    group_choices = [o for o in overrides if (CONF_DIR / o.partition("=")[0]).is_dir()]
    try:
        cfg: Any = compose(CONFIG_NAME, overrides=group_choices)
    except HydraException:
        cfg = compose(CONFIG_NAME)
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(node.keys()) if isinstance(node, DictConfig) else []


def override_value(overrides: list[str], key: str | None) -> str:
    for override in overrides:
        name, _, value = override.lstrip("+~").partition("=")
        if name == key:
            return value
    return "?"


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
