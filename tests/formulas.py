"""DESIGN.md §1 written out element by element: the independent expectations of the tests."""

import math


def hand_sigma(x: float, alpha: float, bits: int) -> float:
    """0 for x <= 0, else alpha * min(ceil(x/alpha), L), L = 2^b - 1."""
    levels = 2**bits - 1
    return 0.0 if x <= 0 else alpha * min(math.ceil(x / alpha), levels)


def hand_mu_prime(name: str, x: float, alpha: float, levels: int) -> float:
    """The STE table: mu'(x) for each named STE, q = alpha * L."""
    q = alpha * levels
    if name == "identity":
        return 1.0
    if name == "relu":
        return float(x > 0)
    if name == "clipped_relu":
        return float(0 < x < q)
    if name == "log_tailed_relu":
        return float(0 < x <= q) if x <= q else 1.0 / ((x - q) / alpha + 1.0)
    if name == "exact":
        return 0.0
    raise AssertionError(f"no hand formula for STE {name!r}: add one here")
