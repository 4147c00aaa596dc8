"""Autograd with the STE backward gives exactly the coarse gradients of DESIGN.md §1."""

import pytest
import torch
import torch.nn.functional as F

from qste.models import TwoLayerNet
from qste.quant import QuantReLU, levels_for
from qste.ste import STES
from tests.formulas import hand_mu_prime, hand_sigma


def mu_prime(name, z, alpha, levels):
    return torch.tensor([hand_mu_prime(name, v, alpha, levels) for v in z.flatten().tolist()]).reshape(z.shape)


@pytest.mark.parametrize("ste", STES.names())
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_two_layer_first_layer_gradient(ste, bits):
    """dl/dW = ((V^T dl/df) ⊙ mu'(Wx + c)) x^T, summed over the batch; dl/dc likewise."""
    n, d, m, k, alpha = 32, 6, 12, 3, 0.25
    net = TwoLayerNet(d, k, QuantReLU(bits, ste, alpha=alpha), hidden=m)
    x, y = torch.randn(n, d), torch.randint(k, (n,))
    F.cross_entropy(net(x), y).backward()

    W, c = net.hidden.weight.detach().double(), net.hidden.bias.detach().double()
    V, d_out = net.output.weight.detach().double(), net.output.bias.detach().double()
    xd = x.double()
    pre = xd @ W.T + c
    act = torch.tensor([hand_sigma(v, alpha, bits) for v in pre.flatten().tolist()], dtype=torch.float64)
    f = act.reshape(pre.shape) @ V.T + d_out
    dl_df = (torch.softmax(f, dim=1) - F.one_hot(y, k).double()) / n  # mean cross-entropy
    back = (dl_df @ V) * mu_prime(ste, pre.float(), alpha, levels_for(bits)).double()
    torch.testing.assert_close(net.hidden.weight.grad.double(), back.T @ xd, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(net.hidden.bias.grad.double(), back.sum(0), rtol=1e-4, atol=1e-6)
    # the output layer sees the quantized activation as its input
    torch.testing.assert_close(net.output.weight.grad.double(), dl_df.T @ act.reshape(pre.shape), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("ste", ["relu", "clipped_relu", "identity"])
def test_y19_single_neuron_coarse_gradient(ste):
    """[Y19]: y = v^T sigma(Z w), squared loss -> g = Z^T (mu'(Zw) ⊙ v)(v^T sigma(Zw) - y*)."""
    alpha, bits = 0.5, 2
    Z, v, y_star = torch.randn(20, 5), torch.randn(20), torch.tensor(1.7)
    w = torch.randn(5, requires_grad=True)
    act = QuantReLU(bits, ste, alpha=alpha)
    loss = 0.5 * (v @ act(Z @ w) - y_star) ** 2
    loss.backward()
    zw = (Z @ w).detach()
    residual = v @ act(zw) - y_star
    g = Z.T @ (mu_prime(ste, zw, alpha, levels_for(bits)) * v) * residual
    torch.testing.assert_close(w.grad, g, rtol=1e-5, atol=1e-6)


def test_frozen_output_gets_no_gradient_and_blocks_structure():
    net = TwoLayerNet(4, 3, QuantReLU(2, "relu", alpha=0.5), hidden=6, output_init="blocks", freeze_output=True)
    assert torch.equal(
        net.output.weight, torch.tensor([[1.0, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]])
    )
    assert torch.equal(net.output.bias, torch.zeros(3))
    F.cross_entropy(net(torch.randn(8, 4)), torch.randint(3, (8,))).backward()
    assert net.output.weight.grad is None and net.hidden.weight.grad is not None


def test_exact_ste_gives_zero_first_layer_gradient():
    net = TwoLayerNet(4, 3, QuantReLU(2, "exact", alpha=0.5), hidden=6)
    F.cross_entropy(net(torch.randn(8, 4)), torch.randint(3, (8,))).backward()
    assert torch.count_nonzero(net.hidden.weight.grad) == 0
    assert torch.count_nonzero(net.output.weight.grad) > 0
