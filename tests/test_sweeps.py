"""Sweeps: experiment configs, Hydra's launchers, failing jobs, and the report."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from qste.cli import CONF_DIR, check_jobs
from qste.config import register_configs
from qste.report import Run, group_rows, report
from qste.train import train
from tests.fake_data import write_cifar10, write_mnist

register_configs()
QUIET = Console(quiet=True)
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    write_mnist(tmp_path / "data" / "MNIST" / "raw")
    write_cifar10(tmp_path / "data")
    monkeypatch.setenv("QSTE_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_checks_each_job(data_root, experiment):
    jobs = check_jobs([f"experiment={experiment}"], multirun=False)
    assert len(jobs) >= 1


def test_lyx_synthetic_is_the_full_grid(data_root):
    jobs = check_jobs(["experiment=lyx_synthetic"], multirun=False)
    assert len(jobs) == 2 * 2 * 5 * 3 * 5  # layouts x output frozen/trained x STEs x bits x seeds
    narrowed = check_jobs(["experiment=lyx_synthetic", "seed=0", "bits=2"], multirun=False)
    assert len(narrowed) == 2 * 2 * 5  # the command line wins over the experiment's sweep


def qste(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "-m", "qste", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]])
def test_small_multirun_through_each_launcher(tmp_path, launcher):
    result = qste("train", "-m", *launcher, "ste=relu,clipped_relu", "epochs=2", "dataset.n_train=200", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = list((tmp_path / "outputs" / "multirun").rglob("summary.json"))
    assert sorted(json.loads(p.read_text())["config"]["ste"]["name"] for p in summaries) == ["clipped_relu", "relu"]


def test_failing_job_keeps_the_others_and_the_report_lists_it(tmp_path):
    result = qste("train", "-m", "init_from=/nonexistent.pt,null", "epochs=2", "dataset.n_train=200", cwd=tmp_path)
    assert result.returncode != 0
    (sweep,) = (tmp_path / "outputs" / "multirun").glob("*/*")
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.rglob("summary.json"))
    assert statuses == ["failed", "finished"]

    report([sweep], QUIET)
    rows = list(csv.DictReader((sweep / "results.csv").open()))
    assert sorted(r["status"] for r in rows) == ["failed", "finished"]
    assert "no checkpoint" in next(r["error"] for r in rows if r["status"] == "failed")
    text = (sweep / "report.md").read_text()
    assert "Runs not finished" in text and "failed" in text
    assert (sweep / "curves.png").stat().st_size > 0 and (sweep / "accuracy_vs_bits.png").stat().st_size > 0


def test_report_aggregates_seeds_and_lists_unfinished_runs(tmp_path, monkeypatch):
    def cfg(*overrides):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=["device=cpu", "dataset.n_train=200", "epochs=2", *overrides])

    for seed in (0, 1, 2):
        train(cfg(f"seed={seed}"), tmp_path / f"s{seed}", QUIET)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "metrics.jsonl").write_text((tmp_path / "s0" / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    report([tmp_path], QUIET)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert sorted(r["status"] for r in rows) == ["finished"] * 3 + ["unfinished"]
    text = (tmp_path / "report.md").read_text()
    finals = [json.loads((tmp_path / f"s{s}" / "summary.json").read_text())["final"]["test_acc"] for s in (0, 1, 2)]
    mean = 100 * sum(finals) / 3
    assert f"{mean:.2f} ±" in text and "3/3" in text and "unfinished" in text


def test_group_rows_put_the_paper_figure_beside_ours():
    def run(seed, acc):
        config = {"dataset": {"name": "mnist"}, "model": {"name": "lenet5"}, "ste": {"name": "relu"}, "bits": 2, "seed": seed}
        return Run(Path(f"r{seed}"), "finished", [f"seed={seed}"], config, [{"epoch": 1, "train_loss": 0.1, "train_acc": acc, "test_acc": acc}])

    (row,) = group_rows([run(0, 0.98), run(1, 1.0)])
    assert row["paper"] == "5.1e-3 / 99.24"
    assert row["runs"] == 2 and row["perfect_train"] == 1
    assert row["test_acc"][0] == pytest.approx(0.99)


def test_fast_sweep_composition_equals_hydra_composition(data_root):
    from omegaconf import OmegaConf

    from qste.cli import compose_jobs

    jobs = check_jobs(["experiment=lyx_synthetic", "seed=3", "bits=1,4"], multirun=False)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        fast = [OmegaConf.to_container(c, resolve=True) for c in compose_jobs(jobs)]
        full = [OmegaConf.to_container(compose("config", overrides=job), resolve=True) for job in jobs]
    assert len(fast) == 40 and fast == full


def test_sweeps_use_qste_sweeper_which_skips_hydras_second_validation():
    from hydra_plugins.qste_sweeper import CheckedSweeper

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.qste_sweeper.CheckedSweeper"
    assert CheckedSweeper.validate_batch_is_legal(None, [["bits=0"]]) is None  # nothing composed again
