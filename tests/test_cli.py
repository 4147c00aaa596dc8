"""`qste train` end to end, and bad input rejected before anything is written."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

SMALL = ["epochs=15", "dataset.n_train=400", "dataset.n_test=200", "device=cpu"]


def qste(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "qste", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_train_writes_the_run_directory_and_learns(tmp_path):
    result = qste("train", "ste=clipped_relu", "bits=2", *SMALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert {p.name for p in run_dir.iterdir()} >= {".hydra", "metrics.jsonl", "summary.json", "checkpoints"}
    assert (run_dir / "checkpoints" / "last.pt").exists() and (run_dir / "checkpoints" / "best.pt").exists()

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, 16))
    assert set(records[0]) == {
        "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
        "lr", "alpha", "grad_norm", "seconds", "samples_per_s",
    }
    assert records[-1]["step"] == 15 * 4  # 400 samples in batches of 100
    assert records[-1]["train_acc"] == 1.0

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert summary["final"] == records[-1]
    assert summary["best"]["test_acc"] == max(r["test_acc"] for r in records)
    assert summary["config"]["ste"]["name"] == "clipped_relu" and summary["config"]["bits"] == 2
    assert set(summary["versions"]) >= {"qste", "torch", "python"}
    assert summary["alpha"] == records[-1]["alpha"] and len(summary["alpha"]) == 1

    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 15 and last["model"]["act._extra_state"]["alpha"] == summary["alpha"][0]
    assert "final" in result.stdout and "best" in result.stdout  # the summary table


def test_multirun_writes_one_directory_per_job(tmp_path):
    result = qste("train", "-m", "ste=relu,identity", "bits=1,null", "epochs=2", "dataset.n_train=200", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summaries = sorted((tmp_path / "outputs" / "multirun").glob("*/*/*/summary.json"))
    assert len(summaries) == 4
    configs = {(s["config"]["ste"]["name"], s["config"]["bits"]) for s in map(json.loads, map(Path.read_text, summaries))}
    assert configs == {("relu", 1), ("relu", None), ("identity", 1), ("identity", None)}


@pytest.mark.parametrize(
    "override,key,allowed",
    [
        ("ste=nope", "ste", "clipped_relu"),
        ("bits=0", "bits", "1..16"),
        ("bits=65", "bits", "1..16"),
        ("bits=abc", "bits", "1..16"),
        ("optimizer.lr=-1", "optimizer.lr", "positive"),
        ("epochs=0", "epochs", ">= 1"),
        ("model.hidden=0", "model.hidden", ">= 1"),
        ("dataset.n_train=0", "dataset.n_train", ">= 1"),
        ("device=tpu", "device", "cuda"),
        ("foo=1", "foo", "bits"),
        ("optimizer.lrr=1", "optimizer.lrr", "momentum"),
        ("loss=l1", "loss", "cross_entropy"),
    ],
)
def test_bad_input_is_one_line_before_anything_is_written(tmp_path, override, key, allowed):
    result = qste("train", override, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and allowed in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_bad_value_inside_a_sweep_stops_every_job(tmp_path):
    result = qste("train", "-m", "bits=1,2,0", "epochs=1", cwd=tmp_path)
    assert result.returncode != 0 and "bits=0" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_sweep_without_multirun_flag_is_explained(tmp_path):
    result = qste("train", "bits=1,2", cwd=tmp_path)
    assert result.returncode != 0 and "-m" in result.stderr


def test_help_and_cfg_work(tmp_path):
    assert "ste" in qste("train", "--help", cwd=tmp_path).stdout
    shown = qste("train", "--cfg", "job", "bits=4", cwd=tmp_path)
    assert shown.returncode == 0 and "bits: 4" in shown.stdout
    assert not (tmp_path / "outputs").exists()


def test_sigkill_then_rerun_gives_the_uninterrupted_result(tmp_path):
    args = ["train", "epochs=20", "checkpoint_every_s=0", "dataset.n_train=2000", "dataset.n_test=200", "device=cpu"]
    assert qste(*args, f"hydra.run.dir={tmp_path / 'whole'}", cwd=tmp_path).returncode == 0

    run_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "qste", *args, f"hydra.run.dir={run_dir}"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "summary.json").exists(), "killed too late: the run had finished"

    assert qste(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    timing = {"seconds", "samples_per_s"}
    assert resumed["resumed_from_epoch"] >= 4
    assert {k: v for k, v in resumed["final"].items() if k not in timing} == {
        k: v for k, v in whole["final"].items() if k not in timing
    }
