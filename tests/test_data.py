"""Synthetic Gaussian clusters: determinism, shapes, geometry."""

import itertools

import pytest
import torch

from qste.data import gaussian_clusters

ORTHOGONAL = dict(
    layout="orthogonal", n_classes=4, clusters_per_class=4, dim=20, subspace_dim=3,
    radius=5.0, std=0.5, min_gap=0.0, n_train=600, n_test=200,
)
RANDOM = dict(ORTHOGONAL, layout="random", clusters_per_class=3, min_gap=2.0)


@pytest.mark.parametrize("params", [ORTHOGONAL, RANDOM], ids=["orthogonal", "random"])
def test_deterministic_in_seed(params):
    a, b, c = (gaussian_clusters(**params, seed=s) for s in (3, 3, 4))
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.train_x, c.train_x)


@pytest.mark.parametrize("params", [ORTHOGONAL, RANDOM], ids=["orthogonal", "random"])
def test_shapes_and_labels(params):
    s = gaussian_clusters(**params, seed=0)
    assert s.train_x.shape == (600, 20) and s.test_x.shape == (200, 20)
    assert s.train_x.dtype == torch.float32 and s.train_y.dtype == torch.long
    assert s.n_classes == 4 and s.in_features == 20
    assert set(s.train_y.tolist()) == {0, 1, 2, 3}


def test_orthogonal_classes_lie_in_mutually_orthogonal_subspaces():
    s = gaussian_clusters(**ORTHOGONAL, seed=1)
    x, y = s.train_x.double(), s.train_y
    for k, l in itertools.permutations(range(4), 2):
        cross = x[y == k] @ x[y == l].T  # every cross-class inner product vanishes
        assert cross.abs().max() < 1e-4 * x.norm(dim=1).max() ** 2
    for k in range(4):
        # each class spans exactly subspace_dim dimensions
        sv = torch.linalg.svdvals(x[y == k])
        assert (sv > 1e-3 * sv[0]).sum() == ORTHOGONAL["subspace_dim"]


def test_orthogonal_classes_have_antipodal_clusters_and_zero_mean():
    s = gaussian_clusters(**dict(ORTHOGONAL, n_train=20_000, std=0.1), seed=2)
    for k in range(4):
        xk = s.train_x[s.train_y == k]
        assert xk.mean(0).norm() < 0.2  # mean zero: not linearly separable from the others
        assert xk.norm(dim=1).mean() == pytest.approx(5.0, rel=0.05)  # at the radius


def test_random_layout_centres_are_apart_and_labels_round_robin():
    params = dict(RANDOM, std=0.0)
    s = gaussian_clusters(**params, seed=5)
    centres, idx = torch.unique(s.train_x, dim=0, return_inverse=True)
    assert len(centres) == 12  # K * C distinct centres
    assert torch.allclose(centres.norm(dim=1), torch.full((12,), 5.0))
    gaps = torch.cdist(centres, centres) + 1e9 * torch.eye(12)
    assert gaps.min() >= 2.0 - 1e-5
    labels = torch.zeros(12, dtype=torch.long).scatter_(0, idx, s.train_y)
    assert torch.bincount(labels).tolist() == [3, 3, 3, 3]  # C centres per class


def test_impossible_gap_is_a_clear_error():
    with pytest.raises(ValueError, match="min_gap"):
        gaussian_clusters(**dict(RANDOM, min_gap=100.0), seed=0)
