"""Each STE's backward against its formula; monotonicity; registry and YAML agree."""

from pathlib import Path

import pytest
import torch

from qste.quant import QuantizedReLUFunction, QuantReLU, levels_for
from qste.ste import STES
from tests.formulas import hand_mu_prime

CONF_STE = Path(__file__).resolve().parents[1] / "conf" / "ste"


def inputs(alpha: float, levels: int) -> torch.Tensor:
    q = alpha * levels
    edges = torch.tensor([0.0, -0.0, alpha, q, -q, 2 * q, 1e6, -1e6, q + alpha, q - alpha])
    return torch.cat([edges, q * 3 * torch.randn(4000)])


@pytest.mark.parametrize("name", STES.names())
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_backward_matches_formula(name, bits):
    alpha, levels = 0.5, levels_for(bits)  # alpha = 1/2 makes q and the edges exact
    x = inputs(alpha, levels).requires_grad_()
    grad = torch.randn_like(x)
    y = QuantizedReLUFunction.apply(x, alpha, levels, STES.get(name))
    (got,) = torch.autograd.grad(y, x, grad)
    mu = torch.tensor([hand_mu_prime(name, v, alpha, levels) for v in x.detach().tolist()])
    torch.testing.assert_close(got, grad * mu, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", STES.names())
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_every_registered_ste_is_monotone(name, bits):
    """mu' >= 0 everywhere: the property the [LYX] theorem needs."""
    alpha, levels = 0.3, levels_for(bits)
    x = torch.cat([torch.linspace(-10 * alpha * levels, 10 * alpha * levels, 100_001), inputs(alpha, levels)])
    mu = STES.get(name)(torch.ones_like(x), x, alpha, levels)
    assert torch.isfinite(mu).all()
    assert (mu >= 0).all(), f"{name}: mu' < 0 at x = {x[mu < 0][:5].tolist()}"


def test_registry_and_yaml_files_agree():
    assert sorted(p.stem for p in CONF_STE.glob("*.yaml")) == STES.names()


def test_backward_through_module_uses_layer_settings():
    """Two layers with different settings do not share state."""
    a = QuantReLU(bits=1, ste="clipped_relu", alpha=1.0)
    b = QuantReLU(bits=4, ste="identity", alpha=0.1)
    x = torch.tensor([0.5, 1.5, 3.0], requires_grad=True)
    (ga,) = torch.autograd.grad(a(x).sum(), x)
    (gb,) = torch.autograd.grad(b(x).sum(), x)
    assert ga.tolist() == [1.0, 0.0, 0.0]  # q = 1
    assert gb.tolist() == [1.0, 1.0, 1.0]


def test_unknown_ste_lists_registered_ones():
    with pytest.raises(KeyError, match="clipped_relu"):
        STES.get("nope")
