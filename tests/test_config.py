"""Every config in conf/ composes against its schema and passes the value checks."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from qste.cli import CONF_DIR
from qste.config import IMAGE_MODEL_DATASETS, check_config, register_configs
from qste.errors import QsteError

register_configs()
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and any(p.glob("*.yaml")))
# experiment/ files are whole sweeps over the other groups: tests/test_sweeps.py checks them.
OPTIONS = [(g, p.stem) for g in GROUPS if g != "experiment" for p in sorted((CONF_DIR / g).glob("*.yaml"))]


@pytest.fixture
def composer():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield lambda *overrides: compose("config", overrides=list(overrides))


def test_groups_mirror_the_code():
    assert GROUPS == ["dataset", "experiment", "logger", "model", "optimizer", "ste"]


def test_conf_ships_inside_the_package():
    assert (Path(__file__).resolve().parents[1] / "qste" / "conf" / "config.yaml").exists()


@pytest.mark.parametrize("group,option", OPTIONS)
def test_every_option_composes_and_checks(composer, group, option):
    image_data = IMAGE_MODEL_DATASETS.get(option) if group == "model" else None
    cfg = composer(f"{group}={option}", *([f"dataset={image_data[0]}"] if image_data else []))
    check_config(cfg)
    assert cfg[group].name == option
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # every value is set


def test_dataset_seed_follows_run_seed(composer):
    assert composer("seed=7").dataset.seed == 7
    assert composer("seed=7", "dataset.seed=3").dataset.seed == 3


@pytest.mark.parametrize(
    "override,key",
    [
        ("bits=0", "bits"),
        ("bits=17", "bits"),
        ("alpha=-1", "alpha"),
        ("alpha=fixed", "alpha"),
        ("epochs=0", "epochs"),
        ("optimizer.lr=0", "optimizer.lr"),
        ("optimizer.momentum=1.0", "optimizer.momentum"),
        ("model.hidden=0", "model.hidden"),
        ("dataset.n_train=0", "dataset.n_train"),
        ("device=tpu", "device"),
        ("calibration_percentile=0", "calibration_percentile"),
        ("dataset.clusters_per_class=3", "dataset.clusters_per_class"),
        ("dataset.dim=4", "dataset.dim"),
    ],
)
def test_out_of_range_values_name_the_key(composer, override, key):
    with pytest.raises(QsteError) as error:
        check_config(composer(override))
    message = str(error.value)
    assert message.startswith(f"{key}=") and "\n" not in message


def test_blocks_need_hidden_divisible_by_classes(composer):
    with pytest.raises(QsteError, match="model.hidden=30"):
        check_config(composer("model.output_init=blocks", "model.hidden=30"))
    check_config(composer("model.output_init=blocks", "model.hidden=32"))
