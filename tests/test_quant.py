"""sigma_b: values, levels and shape of the staircase, against the hand formula."""

import pytest
import torch

from qste.quant import QuantReLU, calibrate_alphas, levels_for, quantize
from tests.formulas import hand_sigma


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 2.5])
def test_values_match_hand_formula(bits, alpha):
    levels = levels_for(bits)
    # Points strictly inside each step (k + u) * alpha, u in [0.05, 0.95], plus negatives and overflow.
    k = torch.randint(-3, levels + 4, (2000,)).double()
    u = 0.05 + 0.9 * torch.rand(2000, dtype=torch.float64)
    x = ((k + u) * alpha).float()
    y = quantize(x, alpha, levels)
    expected = torch.tensor([hand_sigma(v, alpha, bits) for v in x.double().tolist()], dtype=torch.float64)
    torch.testing.assert_close(y.double(), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
@pytest.mark.parametrize("alpha", [0.25, 0.5, 2.0])  # powers of two: k * alpha is exact in float32
def test_exact_step_edges(bits, alpha):
    levels = levels_for(bits)
    k = torch.arange(-2, levels + 3, dtype=torch.float32)
    y = quantize(k * alpha, alpha, levels)
    expected = alpha * k.clamp(0, levels)  # sigma(k*alpha) = k*alpha: the step closes on the right
    assert torch.equal(y, expected)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_output_takes_exactly_the_levels(bits):
    alpha, levels = 0.1, levels_for(bits)
    x = torch.linspace(-1, alpha * levels * 1.5, 200_000)
    y = quantize(x, alpha, levels)
    allowed = torch.arange(levels + 1, dtype=torch.float32) * alpha  # {0, alpha, ..., L*alpha}
    assert torch.equal(y.unique(), allowed), "every level is taken, and nothing else"
    assert torch.all(y[1:] >= y[:-1]), "the staircase is non-decreasing"
    assert y.max().item() == pytest.approx(alpha * levels)


def test_one_bit_is_binarized_relu():
    x = torch.randn(10_000)
    assert torch.equal(quantize(x, 0.7, levels_for(1)), 0.7 * (x > 0).float())


def test_float_baseline_is_relu():
    x = torch.randn(1000)
    assert torch.equal(QuantReLU(bits=None, ste="relu")(x), torch.relu(x))


def test_quantize_does_not_modify_input():
    x = torch.randn(100)
    before = x.clone()
    quantize(x, 0.3, 3)
    assert torch.equal(x, before)


def test_calibration_puts_clip_at_percentile():
    act = QuantReLU(bits=2, ste="clipped_relu")
    x = torch.cat([torch.arange(1, 101, dtype=torch.float32), -torch.ones(50)])  # positives 1..100
    calibrate_alphas(act, x, percentile=90)
    assert act.alpha * 3 == pytest.approx(90.0)  # 90th percentile of 1..100, L = 3


def test_calibration_runs_once_and_then_stays_fixed():
    act = QuantReLU(bits=2, ste="relu")
    calibrate_alphas(act, torch.rand(1000), percentile=99)
    alpha = act.alpha
    calibrate_alphas(act, 10 * torch.rand(1000), percentile=99)
    act(5 * torch.rand(100))
    assert act.alpha == alpha


def test_calibration_in_forward_order_sees_quantized_inputs():
    first, second = QuantReLU(bits=1, ste="relu"), QuantReLU(bits=1, ste="relu")
    net = torch.nn.Sequential(first, torch.nn.Linear(4, 4), second)
    x = torch.rand(64, 4)
    calibrate_alphas(net, x, percentile=100)
    assert first.alpha == pytest.approx(x.max().item())
    # the second quantizer saw Linear(first(x)), computed with the calibrated first alpha
    pre = net[1](first(x))
    assert second.alpha == pytest.approx(pre[pre > 0].max().item())


def test_uncalibrated_quantizer_refuses_to_run():
    with pytest.raises(RuntimeError, match="alpha"):
        QuantReLU(bits=2, ste="relu")(torch.randn(3))


def test_alpha_travels_in_state_dict():
    act = QuantReLU(bits=4, ste="relu", alpha=0.123)
    fresh = QuantReLU(bits=4, ste="relu")
    fresh.load_state_dict(act.state_dict())
    assert fresh.alpha == 0.123


def test_calibration_leaves_batch_norm_statistics_untouched():
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(4), QuantReLU(bits=2, ste="relu"))
    calibrate_alphas(net, 3 + torch.randn(64, 4), percentile=99)
    assert net[1].alpha is not None
    assert torch.equal(net[0].running_mean, torch.zeros(4)) and net[0].num_batches_tracked == 0
