"""Dropout masks from a counter: each run's bits depend on its seed, its step and the
unit's place, never on who else trains beside it.

    key = run_key(seed)                                  # once per run
    bits = unit_bits(step_bits(keys, steps), places)     # (K, N) 32-bit values
    kept = bits < keep_threshold(p)                      # Bernoulli(1 - p), exactly
    z = normals(bits, unit_bits(per_step, places(N, N)))  # N(0, 1): Gaussian noise

A bucket draws every run's masks of a step at once, with a few dozen integer ops over a
(runs x units) tensor, where a generator per run took a call per run and layer (at a
hundred runs, a large part of the step and hundreds of hand-overs of the interpreter:
docs/benchmarks.md, round 7).

The bits: `place` numbers a step's noise units, layer after layer, each layer's in the
order torch.nn.Dropout would draw them: (example, unit) for an MLP, (example, channel)
for Dropout2d on a CNN, (example, channel, row, column) otherwise. A run's unit at step
t (counted from 1) gets

    mix2((mix3((key + t * STEP) mod 2^32) + place * PLACE) mod 2^32)

where mix3 and mix2 are three and two rounds of xor-shift and multiplication by an odd
constant below 2^31, then a last xor-shift (32-bit hashes of the family of Chris
Wellons' 'lowbias32'; with constants below 2^31 every product of 32-bit values fits in
int64, so no step overflows and the bits are the same on any CPU). The per-unit stage,
the one that costs, has two rounds: its inputs differ by multiples of PLACE from a
well-mixed start. The unit is kept when its bits are below round((1 - p) * 2^32): a
probability of exactly that count over 2^32. p = 0 keeps every unit, p = 1 none.
Where a step needs normal values (Gaussian multiplicative noise on a unit, noise added
to an input), each takes its unit's word and the word at the next free places (after
every dropout unit of the step) through Box-Muller.
"""
from __future__ import annotations

import math

import numpy as np
import torch

MASK32 = 0xFFFFFFFF
STEP = 0x5BD1E995 & 0x7FFFFFFF   # odd multipliers below 2^31
PLACE = 0x27D4EB2F
ROUNDS = ((16, 0x7FEB352D), (15, 0x2C1B3C6D), (16, 0x297A2D39))
FINAL_SHIFT = 15

# Every function takes numpy arrays or torch int64 tensors alike, with the same bits. A
# CPU bucket draws with numpy in uint32, whose arithmetic wraps modulo 2^32 by itself
# (in place, a few times cheaper than int64 with a mask after each product:
# docs/benchmarks.md, round 8); a GPU one draws with
# torch in int64 (torch has no uint32 product), masked back to 32 bits after each product.


def mix(x, rounds: int = 3):
    """A bijection of 32-bit values: a numpy array (as uint32) or an int64 tensor holding
    0..2^32-1."""
    if isinstance(x, np.ndarray):
        x = x.astype(np.uint32)  # a copy: the rounds below work in place
        for shift, mul in ROUNDS[:rounds]:
            x ^= x >> shift
            x *= np.uint32(mul)
        x ^= x >> FINAL_SHIFT
        return x
    for shift, mul in ROUNDS[:rounds]:
        x = x ^ (x >> shift)
        x = (x * mul) & MASK32
    return x ^ (x >> FINAL_SHIFT)


def run_key(seed: int) -> int:
    """A run's key, from its seed (the data seed: a run's draws follow its config)."""
    return int(mix(np.array([(seed * 0x9E3779B1 + 0x632BE5AB) & MASK32], np.int64))[0])


def step_bits(keys, steps):
    """(K,): each run's bits for its step (keys and steps (K,) int64; steps from 1)."""
    return mix((keys + (((steps & MASK32) * STEP) & MASK32)) & MASK32)


def places(n: int, start: int = 0) -> np.ndarray:
    """(n,) uint32: the places start..start+n-1 of a step's noise units, multiplied in."""
    return ((np.arange(start, start + n, dtype=np.int64) * PLACE) & MASK32).astype(np.uint32)


def unit_bits(per_step, place_terms):
    """(K, N): every unit's bits (per_step (K,) from step_bits, place_terms (N,) from
    places(); both numpy, or both int64 tensors)."""
    if isinstance(per_step, np.ndarray):
        return mix(per_step.astype(np.uint32)[:, None] + place_terms.astype(np.uint32)[None, :], rounds=2)
    return mix((per_step[:, None] + place_terms[None, :]) & MASK32, rounds=2)


def keep_threshold(p):
    """Bits below this are kept: round((1 - p) * 2^32), 2^32 for p = 0, 0 for p = 1
    (p a number or an array of them)."""
    return np.round((1.0 - np.asarray(p, np.float64)) * 2**32).astype(np.int64)


def normals(first, second):
    """Standard normal values from two words of bits each (Box-Muller): sqrt(-2 ln u1)
    cos(2 pi u2), u1 = (first + 1) / 2^32 in (0, 1], u2 = second / 2^32. Single precision,
    numpy arrays or int64 tensors alike: numpy's float32 log and cos are vectorised where
    its float64 ones are not, and the factors and inputs they make are float32 anyway."""
    if isinstance(first, np.ndarray):
        u1 = first.astype(np.float32)
        u1 += np.float32(1.0)
        u1 *= np.float32(2.0**-32)
        np.log(u1, out=u1)
        u1 *= np.float32(-2.0)
        np.sqrt(u1, out=u1)
        angle = second.astype(np.float32)
        angle *= np.float32(2 * np.pi * 2.0**-32)
        u1 *= np.cos(angle, out=angle)
        return u1
    u1 = (first.float() + 1.0) * 2.0**-32
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2 * math.pi * 2.0**-32) * second.float())


def kept(seed: int, step: int, thresholds: np.ndarray) -> np.ndarray:
    """One run's kept units at one step, (n,) bool, from each unit's threshold (n,)."""
    per_step = step_bits(np.array([run_key(seed)], np.int64), np.array([step], np.int64))
    return unit_bits(per_step, places(len(thresholds)))[0] < thresholds
