"""The training loop: determinism, checkpoints, the theorem setting, run-file safety."""

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from rich.console import Console

from qste.cli import CONF_DIR
from qste.config import register_configs
from qste.errors import QsteError
from qste.runfiles import load_checkpoint, write_json
from qste.train import train

register_configs()
QUIET = Console(quiet=True)
TIMING = {"seconds", "samples_per_s"}


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["device=cpu", "dataset.n_train=300", "dataset.n_test=100", *overrides])


def metrics(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_bitwise_deterministic_on_cpu(tmp_path):
    cfg = config("epochs=4", "seed=3")
    train(cfg, tmp_path / "a", QUIET)
    train(cfg, tmp_path / "b", QUIET)
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b")
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt")["model"] for r in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_different_seeds_differ(tmp_path):
    train(config("epochs=2", "seed=0"), tmp_path / "a", QUIET)
    train(config("epochs=2", "seed=1"), tmp_path / "b", QUIET)
    assert metrics(tmp_path / "a") != metrics(tmp_path / "b")


@pytest.mark.parametrize("ste,bits", [("relu", 1), ("clipped_relu", 2), ("log_tailed_relu", 4)])
def test_lyx_theorem_setting_reaches_perfect_training_accuracy(tmp_path, ste, bits):
    """First layer trained, output frozen at blocks: monotone STEs classify perfectly."""
    cfg = config(f"ste={ste}", f"bits={bits}", "model.freeze_output=true", "model.output_init=blocks", "epochs=40")
    assert train(cfg, tmp_path, QUIET)["final"]["train_acc"] == 1.0


@pytest.mark.parametrize("ste", ["identity", "exact"])
def test_lyx_theorem_setting_fails_for_identity_and_exact(tmp_path, ste):
    cfg = config(f"ste={ste}", "bits=2", "model.freeze_output=true", "model.output_init=blocks", "epochs=40")
    assert train(cfg, tmp_path, QUIET)["final"]["train_acc"] <= 0.9


def test_full_batch_is_one_step_per_epoch(tmp_path):
    train(config("batch_size=null", "epochs=3"), tmp_path, QUIET)
    assert [r["step"] for r in metrics(tmp_path)] == [1, 2, 3]


def test_fixed_alpha_is_kept_and_float_run_has_none(tmp_path):
    assert train(config("alpha=0.25", "epochs=1"), tmp_path / "fixed", QUIET)["alpha"] == [0.25]
    assert train(config("bits=null", "epochs=1"), tmp_path / "float", QUIET)["alpha"] is None


@pytest.mark.parametrize(
    "overrides",
    [["optimizer=adam"], ["optimizer.schedule=step"], ["optimizer.schedule=none"], ["loss=mse", "optimizer.lr=0.0005"], ["loss=multi_margin"]],
)
def test_optimizers_schedules_and_losses_train(tmp_path, overrides):
    summary = train(config("epochs=5", *overrides), tmp_path, QUIET)
    first = metrics(tmp_path)[0]
    assert summary["final"]["train_loss"] < first["train_loss"]


def test_cosine_schedule_decays_lr_to_zero(tmp_path):
    train(config("optimizer.schedule=cosine", "epochs=4", "optimizer.lr=0.2"), tmp_path, QUIET)
    lrs = [r["lr"] for r in metrics(tmp_path)]
    assert lrs[0] == 0.2 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.2 * 0.2


def test_checkpoints_hold_what_resuming_needs(tmp_path):
    train(config("epochs=3", "optimizer.schedule=step", "optimizer.step_size=1"), tmp_path, QUIET)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["epoch"] == 3 and last["step"] == 9
    assert {"model", "optimizer", "scheduler", "rng", "metrics"} <= set(last)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert best["epoch"] == summary["best"]["epoch"]


def test_finished_run_is_skipped_and_kept(tmp_path):
    train(config("epochs=2"), tmp_path, QUIET)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert train(config("epochs=2"), tmp_path, QUIET)["status"] == "finished"
    with pytest.raises(QsteError, match="another config"):
        train(config("epochs=3"), tmp_path, QUIET)
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    cfg = config("epochs=6", "checkpoint_every_s=0", "dataset.layout=random", "model.hidden=64")
    train(cfg, tmp_path / "whole", QUIET)

    import qste.train as loop

    evaluations = {"n": 0}
    real_evaluate = loop.evaluate

    def crash_in_epoch_4(*args):
        evaluations["n"] += 1
        if evaluations["n"] == 7:  # two evaluations per epoch: epoch 4's first
            raise KeyboardInterrupt
        return real_evaluate(*args)

    monkeypatch.setattr(loop, "evaluate", crash_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed", QUIET)
    assert [r["epoch"] for r in metrics(tmp_path / "resumed")] == [1, 2, 3]
    monkeypatch.setattr(loop, "evaluate", real_evaluate)
    summary = train(cfg, tmp_path / "resumed", QUIET)
    assert summary["resumed_from_epoch"] == 3
    assert metrics(tmp_path / "resumed") == metrics(tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert {k: v for k, v in summary["final"].items() if k not in TIMING} == {
        k: v for k, v in whole["final"].items() if k not in TIMING
    }
    assert summary["best"]["epoch"] == whole["best"]["epoch"]


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "summary.json"
    write_json({"v": 1}, target)

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        write_json({"v": Unserialisable()}, target)
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind


def test_tensorboard_logger_writes_events_beside_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(config("logger=tensorboard", "epochs=3"), tmp_path, QUIET)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert {"train_loss", "test_acc", "alpha/0"} <= set(events.Tags()["scalars"])
    logged = [e.value for e in events.Scalars("test_acc")]
    assert logged == pytest.approx([r["test_acc"] for r in metrics(tmp_path)])
