"""The counter the playground's dropout masks come from (model_server.masks): fixed bits,
Bernoulli(1 - p) rates, no pattern a student could see, numpy and torch alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binom, chisquare

from model_server import masks



def bits(seed: int, step: int, n: int) -> np.ndarray:
    per_step = masks.step_bits(np.array([masks.run_key(seed)], np.int64), np.array([step], np.int64))
    return masks.unit_bits(per_step, masks.places(n))[0]


def test_the_bits_are_fixed():
    """A run's masks are part of what the product promises (an exported script redraws
    them; the same config gives the same run): these values never change, on any CPU."""
    assert masks.run_key(0) == 1252960573
    assert bits(0, 1, 4).tolist() == [1787201738, 1926958788, 1976162332, 1658951492]
    assert bits(2**31 - 1, 150_000, 4).tolist() == [4197188201, 4205012858, 579423895, 2542058572]


def test_numpy_and_torch_give_the_same_bits():
    keys = np.array([masks.run_key(s) for s in (0, 1, 2**31 - 1)], np.int64)
    steps = np.array([1, 150_000, 2**31], np.int64)
    a = masks.unit_bits(masks.step_bits(keys, steps), masks.places(300))
    b = masks.unit_bits(masks.step_bits(torch.from_numpy(keys), torch.from_numpy(steps)),
                        torch.from_numpy(masks.places(300).astype(np.int64)))
    assert np.array_equal(a, b.numpy())
    assert a.min() >= 0 and a.max() <= masks.MASK32


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_each_unit_is_kept_with_probability_one_minus_p(p):
    n, steps = 160, 400
    kept = np.stack([masks.kept(7, t, np.full(n, masks.keep_threshold(p))) for t in range(1, steps + 1)])
    lo, hi = binom.ppf([1e-6, 1 - 1e-6], n * steps, 1 - p)
    assert lo <= kept.sum() <= hi


def test_p_zero_keeps_every_unit_and_p_one_none():
    assert masks.kept(3, 5, np.full(1000, masks.keep_threshold(0.0))).all()
    assert not masks.kept(3, 5, np.full(1000, masks.keep_threshold(1.0))).any()


def test_no_pattern_between_neighbours_steps_or_seeds():
    """Pairs of neighbouring units, of one unit at consecutive steps and of two seeds at
    one step: the top four bits of each pair fall evenly into the 256 cells."""
    all_bits = np.stack([bits(11, t, 160) for t in range(1, 3001)])  # (steps, units)
    other = np.stack([bits(12, t, 160) for t in range(1, 3001)])
    top, top2 = all_bits >> 28, other >> 28
    for pairs in (top[:, :-1] * 16 + top[:, 1:], top[:-1] * 16 + top[1:], top * 16 + top2):
        counts = np.bincount(pairs.reshape(-1), minlength=256)
        assert chisquare(counts).pvalue > 1e-6
