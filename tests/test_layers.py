"""model_server.layers: the recording dropout modules do exactly what torch.nn's do,
and the mask they keep is the one that was applied."""
import math
import warnings

import pytest
import torch
from scipy.stats import binom
from torch import nn

from model_server.layers import (KINDS, SELU_ALPHA_PRIME, RecordingAlphaDropout, RecordingDropout,
                                 RecordingDropout2d)

PAIRS = [(RecordingDropout, nn.Dropout, (7, 13)),
         (RecordingDropout, nn.Dropout, (3, 4, 5, 6)),
         (RecordingDropout2d, nn.Dropout2d, (5, 6, 4, 4)),
         (RecordingDropout2d, nn.Dropout2d, (5, 6)),  # an MLP layer: each neuron is a channel
         (RecordingAlphaDropout, nn.AlphaDropout, (7, 13))]
PS = [0.0, 0.1, 0.3, 0.5, 0.9, 1.0]


def assert_rate(kept: int, n: int, p: float) -> None:
    """kept out of n draws is inside the 99.9% binomial interval for keep probability 1-p."""
    lo, hi = binom.interval(0.999, n, 1 - p)
    assert lo <= kept <= hi, f"kept {kept} of {n} at p={p}: outside {lo}..{hi}"


def keep_mask(layer) -> torch.Tensor:
    """The applied keep-mask of the last forward, broadcastable to the output (all-true if none)."""
    return torch.ones((), dtype=torch.bool) if layer.noise is None else layer.noise != 0


# ---- identical to torch ----------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs, shape", PAIRS, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("p", PS)
def test_bit_identical_to_torch(ours, theirs, shape, p):
    x = torch.randn(shape)
    torch.manual_seed(1234)
    a = ours(p)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dropout2d warns about 2D input
        torch.manual_seed(1234)
        b = theirs(p)(x)
    assert torch.equal(a, b)
    # and both moved the default generator the same way
    torch.manual_seed(1234)
    ours(p)(x)
    after_ours = torch.rand(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(1234)
        theirs(p)(x)
    assert torch.equal(after_ours, torch.rand(4))


@pytest.mark.parametrize("ours, theirs, shape", PAIRS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_gradients_identical_to_torch(ours, theirs, shape):
    x = torch.randn(shape)
    grads = []
    for cls in (ours, theirs):
        xi = x.clone().requires_grad_()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(99)
            (cls(0.4)(xi) * torch.arange(xi.numel()).reshape(shape)).sum().backward()
        grads.append(xi.grad)
    assert torch.equal(*grads)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kinds_table_subclasses_torch(kind):
    layer = KINDS[kind](0.25)
    assert isinstance(layer, {"dropout": nn.Dropout, "dropout2d": nn.Dropout2d, "alpha": nn.AlphaDropout}[kind])
    assert layer.p == 0.25


# ---- the recorded mask is the applied mask -------------------------------------------------

@pytest.mark.parametrize("cls, shape", [(RecordingDropout, (64, 32)), (RecordingDropout, (4, 3, 5, 5)),
                                        (RecordingDropout2d, (8, 6, 5, 5)), (RecordingDropout2d, (64, 32))])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_output_is_input_times_mask_over_keep_prob(cls, shape, p):
    torch.manual_seed(0)
    x = torch.randn(shape)
    layer = cls(p)
    out = layer(x)
    mask = keep_mask(layer)
    assert layer.input is x
    assert torch.equal(out, x * (mask.to(x.dtype) / (1 - p)))
    torch.testing.assert_close(out, x * mask / (1 - p))
    assert torch.equal(out == 0, (~mask).expand_as(x))  # randn has no zeros
    # last_mask gives each example's mask, the same one
    for k in range(shape[0]):
        assert torch.equal(layer.last_mask(k), mask[k])


def test_noise_holds_the_scaled_mask():
    layer = RecordingDropout(0.25)
    layer(torch.randn(50, 40))
    values = layer.noise.unique()
    assert len(values) == 2 and values[0] == 0
    torch.testing.assert_close(values[1], torch.tensor(1 / 0.75))


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.7, 0.95])
@pytest.mark.parametrize("cls", [RecordingDropout, RecordingAlphaDropout])
def test_drop_rate_is_p(cls, p):
    torch.manual_seed(7)
    layer = cls(p)
    kept = n = 0
    for _ in range(20):
        layer(torch.randn(100, 50))
        kept += int(keep_mask(layer).sum())
        n += 100 * 50
    assert_rate(kept, n, p)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout2d_drop_rate_per_channel(p):
    torch.manual_seed(8)
    layer = RecordingDropout2d(p)
    kept = n = 0
    for _ in range(20):
        layer(torch.randn(100, 16, 3, 3))
        assert layer.noise.shape == (100, 16, 1, 1)
        kept += int(keep_mask(layer).sum())
        n += 100 * 16
    assert_rate(kept, n, p)


def test_dropout_rate_check_would_catch_keep_drop_swap():
    """The interval is tight enough to tell p from 1-p, or 0.3 from 0.32."""
    n = 100_000
    lo, hi = binom.interval(0.999, n, 0.7)
    assert not lo <= 0.3 * n <= hi and not lo <= 0.68 * n <= hi


def test_dropout2d_drops_whole_channels():
    torch.manual_seed(3)
    x = torch.randn(16, 8, 5, 7)
    out = RecordingDropout2d(0.5)(x)
    zero = out == 0
    per_channel = zero.flatten(2)
    assert torch.equal(per_channel.all(2), per_channel.any(2))  # all zero or none
    assert per_channel.all(2).any() and (~per_channel.any(2)).any()  # both happened


@pytest.mark.parametrize("cls", [RecordingDropout, RecordingDropout2d, RecordingAlphaDropout])
def test_eval_mode_is_identity(cls):
    layer = cls(0.5).eval()
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(layer(x), x)
    assert layer.noise is None and layer.last_mask(0) is None
    assert layer.take_kept() is None


@pytest.mark.parametrize("cls", [RecordingDropout, RecordingDropout2d, RecordingAlphaDropout])
def test_p_zero_is_identity(cls):
    x = torch.randn(4, 3, 2, 2)
    state = torch.get_rng_state()
    layer = cls(0.0)
    assert torch.equal(layer(x), x)
    assert torch.equal(state, torch.get_rng_state())  # no draw at all
    assert layer.noise is None


@pytest.mark.parametrize("cls", [RecordingDropout, RecordingDropout2d, RecordingAlphaDropout])
def test_p_one_gives_zeros_without_nan(cls):
    x = torch.randn(6, 4, 3, 3, requires_grad=True)
    layer = cls(1.0)
    out = layer(x)
    assert torch.equal(out, torch.zeros_like(out))
    assert not out.isnan().any()
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.equal(x.grad, torch.zeros_like(x))
    assert not layer.last_mask(0).any()


@pytest.mark.parametrize("cls, shape", [(RecordingDropout, (32, 20)), (RecordingDropout2d, (8, 6, 3, 3))])
@pytest.mark.parametrize("p", [0.2, 0.6])
def test_gradients_flow_only_through_kept_units(cls, shape, p):
    torch.manual_seed(5)
    layer = cls(p)
    for _ in range(3):  # the noise buffer is reused from step to step; each step stays right
        x = torch.randn(shape, requires_grad=True)
        layer(x).sum().backward()
        mask = keep_mask(layer).expand(shape)
        assert torch.equal(x.grad[~mask], torch.zeros(int((~mask).sum())))
        torch.testing.assert_close(x.grad[mask], torch.full((int(mask.sum()),), 1 / (1 - p)))
        assert (~mask).any() and mask.any()


def test_reused_noise_buffer_cannot_corrupt_a_pending_backward():
    """Two forward passes before one backward: autograd must refuse, not use the wrong mask."""
    layer = RecordingDropout(0.5)
    x = torch.randn(4, 5, requires_grad=True)
    out = layer(x) + layer(x)
    with pytest.raises(RuntimeError, match="inplace"):
        out.sum().backward()


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_alpha_dropout_affine_form(p):
    torch.manual_seed(11)
    x = torch.randn(200, 30)
    layer = RecordingAlphaDropout(p)
    out = layer(x)
    m = keep_mask(layer).float()
    a = 1 / math.sqrt((SELU_ALPHA_PRIME ** 2 * p + 1) * (1 - p))
    b = SELU_ALPHA_PRIME * a * p
    # dropped units sit at SELU's negative saturation -alpha', then the affine correction
    expected = a * (x * m + (-SELU_ALPHA_PRIME) * (1 - m)) + b
    torch.testing.assert_close(out, expected)
    # every dropped unit lands on the same value, a * alpha' * (p - 1)
    torch.testing.assert_close(out[m == 0], torch.full_like(out[m == 0], a * (p - 1) * SELU_ALPHA_PRIME))


def test_alpha_dropout_keeps_mean_and_variance():
    torch.manual_seed(12)
    x = torch.randn(2000, 500)
    out = RecordingAlphaDropout(0.3)(x)
    assert abs(out.mean().item()) < 0.01
    assert abs(out.var().item() - 1) < 0.01


def test_alpha_constant_matches_torch():
    # -lambda * alpha of SELU, as torch defines them
    lam, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    assert SELU_ALPHA_PRIME == pytest.approx(lam * alpha, rel=1e-12)


# ---- counts since the last call ------------------------------------------------------------

@pytest.mark.parametrize("cls, shapes", [
    (RecordingDropout, [(10, 7), (10, 7), (10, 7)]),
    (RecordingDropout, [(10, 7), (4, 7), (10, 7)]),   # batch size changes: counts are folded
    (RecordingDropout2d, [(6, 5, 3, 3), (6, 5, 3, 3)]),
    (RecordingAlphaDropout, [(10, 7), (10, 7)]),
])
def test_take_kept_counts_masks_since_last_call(cls, shapes):
    torch.manual_seed(21)
    layer = cls(0.4)
    assert layer.take_kept() is None  # nothing drawn yet
    for _round in range(2):
        total = None
        for shape in shapes:
            layer(torch.randn(shape))
            drawn = keep_mask(layer).float().sum(0)
            total = drawn if total is None else total + drawn
        kept = layer.take_kept()
        assert torch.equal(kept.reshape(total.shape), total)
    # a call with no draws in between counts nothing
    assert not layer.take_kept().any()


def test_take_kept_with_p_one_counts_zero_kept():
    layer = RecordingDropout(1.0)
    layer(torch.randn(5, 3))
    layer(torch.randn(5, 3))
    assert torch.equal(layer.take_kept(), torch.zeros(3))


def test_record_off_leaves_no_trace():
    torch.manual_seed(2)
    layer = RecordingDropout(0.5)
    x = torch.randn(10, 6)
    layer(x)
    noise, kept_before = layer.noise.clone(), layer._kept.clone()
    layer.record = False
    layer(torch.randn(10, 6))
    layer(torch.randn(3, 6))
    layer.record = True
    assert torch.equal(layer.noise, noise) and layer.input is x
    assert torch.equal(layer.take_kept(), kept_before.sum(0))


def test_apply_mask_is_one_thinned_network():
    torch.manual_seed(4)
    layer = RecordingDropout(0.5)
    x = torch.randn(9, 6)
    keep = torch.tensor([True, False, True, True, False, False])
    out = layer.apply_mask(x, keep)
    assert torch.equal(out, x * (keep.float() / 0.5))
    assert layer.noise is None  # no trace


# ---- generators ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [RecordingDropout, RecordingDropout2d, RecordingAlphaDropout])
def test_generator_makes_masks_reproducible(cls):
    x = torch.randn(32, 8, 2, 2)
    masks = []
    for _ in range(2):
        layer = cls(0.5)
        layer.generator = torch.Generator().manual_seed(42)
        torch.manual_seed(len(masks))  # the default generator differs; it must not matter
        state = torch.get_rng_state()
        masks.append([])
        for _ in range(3):
            layer(x)
            masks[-1].append(layer.noise.clone())
        assert torch.equal(state, torch.get_rng_state())  # the default generator was not used
    for a, b in zip(*masks):
        assert torch.equal(a, b)
    assert not torch.equal(masks[0][0], masks[0][1])  # new masks each step


def test_different_generator_seeds_give_different_masks():
    x = torch.randn(64, 32)
    out = []
    for seed in (1, 2):
        layer = RecordingDropout(0.5)
        layer.generator = torch.Generator().manual_seed(seed)
        layer(x)
        out.append(layer.noise.clone())
    assert not torch.equal(*out)


def test_dropout_matches_torch_on_channels_last_input():
    """aten draws the mask in the input's memory order; so does the recording layer."""
    x = torch.randn(4, 8, 8, 8).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(7)
    expected = torch.nn.Dropout(0.4)(x)
    torch.manual_seed(7)
    layer = RecordingDropout(0.4)
    assert torch.equal(layer(x), expected)
    assert torch.equal(layer.noise != 0, expected != 0)
