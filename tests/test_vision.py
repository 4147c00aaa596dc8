"""torchvision-based loaders on tiny files of our own: MNIST IDX, Fashion-MNIST .gz, CIFAR-10 batches."""

import json
import subprocess
import sys
import time

import pytest
import torch
import torchvision
from hydra import compose, initialize_config_dir
from rich.console import Console

from qste.cli import CONF_DIR
from qste.config import register_configs
from qste.data import load_dataset
from qste.errors import QsteError
from qste.models import build_model
from qste.quant import QuantReLU, quantizers
from qste.runfiles import load_initial_weights, save_checkpoint
from qste.train import train
from qste.vision import random_crop_flip
from tests.fake_data import write_cifar10, write_mnist

register_configs()
QUIET = Console(quiet=True)


def config(*overrides: str):
    """A composed config; image datasets never download in tests."""
    offline = ["dataset.download=false"] if any(o.startswith("dataset=") for o in overrides) else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=["device=cpu", *offline, *overrides])


@pytest.fixture
def mnist_root(tmp_path):
    arrays = write_mnist(tmp_path / "MNIST" / "raw")
    return tmp_path, arrays


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    arrays = write_cifar10(tmp_path)
    # Our tiny files cannot match the real files' MD5 sums; keep torchvision's loader, skip its checksum.
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[name, None] for name, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[name, None] for name, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", dict(cls.meta, md5=None))
    return tmp_path, arrays


def test_mnist_shapes_and_normalisation(mnist_root):
    root, arrays = mnist_root
    data = load_dataset(config("dataset=mnist", f"dataset.root={root}").dataset)
    assert data.train_x.shape == (64, 1, 28, 28) and data.test_x.shape == (32, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.n_classes == 10
    raw_images, raw_labels = arrays["train"]
    expected = (torch.tensor(raw_images, dtype=torch.float32) / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(data.train_x[:, 0], expected)
    assert data.train_y.tolist() == raw_labels.tolist()
    assert data.augment is None


def test_limits_take_the_first_samples(mnist_root):
    root, arrays = mnist_root
    data = load_dataset(config("dataset=mnist", f"dataset.root={root}", "dataset.limit_train=10", "dataset.limit_test=5").dataset)
    assert len(data.train_y) == 10 and len(data.test_y) == 5
    assert data.train_y.tolist() == arrays["train"][1][:10].tolist()


def test_flat_gz_folder_as_debian_installs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    arrays = write_mnist(tmp_path / "flat", compress=True)
    data = load_dataset(config("dataset=fashion_mnist", f"dataset.root={tmp_path / 'flat'}").dataset)
    expected = (torch.tensor(arrays["t10k"][0], dtype=torch.float32) / 255 - 0.2860) / 0.3530
    torch.testing.assert_close(data.test_x[:, 0], expected)


def test_root_from_environment(mnist_root, monkeypatch):
    root, _ = mnist_root
    monkeypatch.setenv("QSTE_DATA", str(root))
    cfg = config("dataset=mnist")
    assert cfg.dataset.root == str(root)
    assert len(load_dataset(cfg.dataset).train_y) == 64


def test_cifar10_shapes_normalisation_and_augmentation(cifar_root):
    root, arrays = cifar_root
    data = load_dataset(config("dataset=cifar10", f"dataset.root={root}").dataset)
    assert data.train_x.shape == (40, 3, 32, 32) and data.test_x.shape == (8, 3, 32, 32)
    raw = torch.tensor(arrays["test_batch"][0]).reshape(8, 3, 32, 32).float() / 255
    mean, std = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2470, 0.2435, 0.2616])
    torch.testing.assert_close(data.test_x, (raw - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))
    assert data.test_y.tolist() == arrays["test_batch"][1]
    assert data.augment is random_crop_flip


def test_random_crop_flip_is_a_shifted_window_or_its_mirror():
    x = torch.randn(6, 3, 8, 8)
    out = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    again = random_crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    assert out.shape == x.shape and torch.equal(out, again)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)


def test_missing_data_is_one_line_naming_folder_and_files(tmp_path):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "qste", "train", "dataset=mnist", f"dataset.root={tmp_path / 'nowhere'}", "dataset.download=false"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in line and "train-images-idx3-ubyte" in line
    assert "dataset.download=true" in line
    assert not (tmp_path / "outputs").exists()
    assert time.perf_counter() - start < 60


def test_truncated_file_gets_a_clear_message(mnist_root):
    root, _ = mnist_root
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(QsteError, match="truncated or corrupt"):
        load_dataset(config("dataset=mnist", f"dataset.root={root}").dataset)


def test_failed_run_leaves_a_whole_summary(tmp_path, mnist_root):
    root, _ = mnist_root
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(QsteError):
        train(config("dataset=mnist", f"dataset.root={root}"), tmp_path / "run", QUIET)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed" and "corrupt" in summary["error"]


@pytest.mark.parametrize("model,n_act", [("two_layer", 1), ("lenet5", 4)])
def test_end_to_end_on_tiny_mnist(tmp_path, mnist_root, model, n_act):
    root, _ = mnist_root
    cfg = config("dataset=mnist", f"dataset.root={root}", f"model={model}", "epochs=3", "batch_size=16")
    summary = train(cfg, tmp_path / "run", QUIET)
    assert summary["status"] == "finished" and len(summary["alpha"]) == n_act
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert summary["final"]["train_loss"] < first["train_loss"]


@pytest.mark.parametrize("model,n_act", [("vgg11", 8), ("resnet20", 19)])
def test_end_to_end_on_tiny_cifar10(tmp_path, cifar_root, model, n_act):
    root, _ = cifar_root
    cfg = config("dataset=cifar10", f"dataset.root={root}", f"model={model}", "epochs=2", "batch_size=20")
    summary = train(cfg, tmp_path / "run", QUIET)
    assert summary["status"] == "finished" and len(summary["alpha"]) == n_act
    assert summary["final"]["step"] == 4


def test_deterministic_batching_with_augmentation(tmp_path, cifar_root):
    root, _ = cifar_root
    cfg = config("dataset=cifar10", f"dataset.root={root}", "epochs=2", "batch_size=10", "model.hidden=32")
    runs = [train(cfg, tmp_path / name, QUIET)["final"] for name in "ab"]
    assert {k: v for k, v in runs[0].items() if k not in ("seconds", "samples_per_s")} == {
        k: v for k, v in runs[1].items() if k not in ("seconds", "samples_per_s")
    }


def test_model_and_dataset_shapes_must_agree():
    from qste.config import check_config

    with pytest.raises(QsteError, match="model=lenet5: needs dataset=mnist"):
        check_config(config("dataset=cifar10", "model=lenet5"))
    with pytest.raises(QsteError, match="model=resnet20"):
        check_config(config("dataset=mnist", "model=resnet20"))


def test_init_from_loads_weights_strictly(tmp_path):
    def lenet(bits):
        return build_model(config("dataset=mnist", "model=lenet5").model, (1, 28, 28), 10, lambda: QuantReLU(bits, "relu", 0.5))

    float_net, quant_net = lenet(None), lenet(2)
    save_checkpoint({"model": float_net.state_dict()}, tmp_path / "run" / "checkpoints" / "last.pt")
    load_initial_weights(quant_net, tmp_path / "run")
    for (name, a), b in zip(float_net.state_dict().items(), quant_net.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    assert all(q.bits == 2 and q.alpha == 0.5 for q in quantizers(quant_net))  # settings stay the run's own

    two_layer = build_model(config().model, (1, 28, 28), 10, lambda: QuantReLU(None, "relu"))
    save_checkpoint({"model": two_layer.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(QsteError, match="missing: classifier.1.weight.*unexpected: hidden.bias, hidden.weight"):
        load_initial_weights(quant_net, tmp_path / "other.pt")
    with pytest.raises(QsteError, match="no checkpoint"):
        load_initial_weights(quant_net, tmp_path / "nothing")


def test_quantized_run_starts_from_a_float_run(tmp_path, mnist_root):
    """[Y19]'s protocol end to end: float LeNet-5, then 2-bit from its weights."""
    root, _ = mnist_root
    common = ["dataset=mnist", f"dataset.root={root}", "model=lenet5", "batch_size=16"]
    train(config(*common, "bits=null", "epochs=2"), tmp_path / "float", QUIET)
    start = train(config(*common, "bits=2", "epochs=1", "optimizer.lr=1e-9", f"init_from={tmp_path / 'float'}"), tmp_path / "q", QUIET)
    float_weights = torch.load(tmp_path / "float" / "checkpoints" / "last.pt", weights_only=True)["model"]
    quant_weights = torch.load(tmp_path / "q" / "checkpoints" / "last.pt", weights_only=True)["model"]
    # with a vanishing learning rate the quantized run still holds the float run's weights
    torch.testing.assert_close(quant_weights["features.0.weight"], float_weights["features.0.weight"])
    assert start["status"] == "finished" and len(start["alpha"]) == 4
