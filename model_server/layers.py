"""Dropout layers that keep the mask PyTorch applied.

Each class subclasses its torch.nn counterpart and computes exactly what
aten's _dropout_impl computes (the same Bernoulli draw, the same arithmetic), so
given the same random state the output is bit-identical to torch's own module.
The only addition: the noise tensor of the last forward pass stays on the module
(no copy), and a running count of kept examples per neuron, so a frame can show the
mask that was really applied and how often each neuron was dropped since the last one.

    train mode, p < 1:  out = x * mask / (1 - p)         (mask ~ Bernoulli(1 - p))
    train mode, p = 1:  out = x * 0                       (zeros, never NaN)
    eval mode or p = 0: out = x
Dropout2d draws one mask entry per (example, channel) and zeroes whole feature maps.
AlphaDropout sets dropped units to SELU's negative saturation and applies an affine
correction a * (x * mask + alpha' * (1 - mask)) + b that keeps mean and variance.
"""
from __future__ import annotations

import math

import torch
from torch import nn

SELU_ALPHA_PRIME = 1.7580993408473766  # -lambda * alpha of SELU, as in aten


class RecordingDropoutMixin:
    feature = False  # one draw per channel instead of per element
    alpha = False    # AlphaDropout's affine form

    def _start_recording(self) -> None:
        self.generator: torch.Generator | None = None
        self.noise: torch.Tensor | None = None  # last step's scaled mask; None = nothing dropped
        self.input: torch.Tensor | None = None  # last step's input (before dropout)
        self.record = True                      # False: forward passes leave no trace
        self._kept: torch.Tensor | None = None   # running 0/1 mask sum, batch-shaped, in place
        self._carry: torch.Tensor | None = None  # per-neuron counts folded when the shape changed

    def _noise_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        if self.feature and x.dim() > 2:
            return (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
        return tuple(x.shape)

    def _scale(self, noise: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Turn a 0/1 noise tensor into the layer's output for x, in place, as aten does."""
        p = self.p
        if self.alpha:
            a = 1.0 / math.sqrt((SELU_ALPHA_PRIME**2 * p + 1) * (1 - p))
            b = noise.add(-1).mul_(SELU_ALPHA_PRIME * a).add_(SELU_ALPHA_PRIME * a * p)
            noise.mul_(a)
            return x * noise + b
        noise.div_(1 - p)
        return x * noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            noise, out = None, x
        elif self.p == 1:
            noise = torch.zeros(self._noise_shape(x), dtype=x.dtype, device=x.device)
            if self.record:
                self._count(noise)
            out = x * torch.zeros((), dtype=x.dtype, device=x.device)
        else:
            noise = self._buffer(x)
            noise.bernoulli_(1 - self.p, generator=self.generator)
            if self.record:
                self._count(noise)
            out = self._scale(noise, x)
        if self.record:
            # straight into __dict__: nn.Module.__setattr__'s checks for parameters,
            # buffers and submodules cost more than this per-step store needs
            self.__dict__.update(input=x, noise=noise)
        return out

    def _buffer(self, x: torch.Tensor) -> torch.Tensor:
        """The noise tensor, reused from step to step while its shape holds (fewer
        allocations; fixed addresses for CUDA graphs). The previous step's backward is
        done by then, so overwriting it is safe. (.to() and friends drop it: _apply.)"""
        buf = self.noise
        if self.feature:
            shape = self._noise_shape(x)
            if buf is None or not self.record or buf.shape != shape:
                return torch.empty(shape, dtype=x.dtype, device=x.device)
            return buf
        # like x, memory layout included: aten draws the mask in x's memory order
        # (a CPU conv output can be channels-last), and so must we to match it
        if buf is None or not self.record or buf.shape != x.shape or buf.stride() != x.stride():
            return torch.empty_like(x)
        return buf

    def _apply(self, fn, *args, **kwargs):
        self.__dict__.update(noise=None, input=None, _kept=None, _carry=None)
        return super()._apply(fn, *args, **kwargs)

    def _count(self, mask: torch.Tensor) -> None:
        """Add a 0/1 mask to the running per-element kept count (one in-place add)."""
        acc = self._kept
        if acc is None or acc.shape != mask.shape:
            self._fold()
            self._kept = mask.clone()
        else:
            acc.add_(mask)

    def _fold(self) -> None:
        if self._kept is not None:
            summed = self._kept.sum(0)
            self._carry = summed if self._carry is None else self._carry + summed
            self._kept = None

    def apply_mask(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The output for x if this layer had drawn `keep` (bool, one example's mask shape,
        broadcast over the batch): the forward pass of one fixed thinned network."""
        if self.p == 0:
            return x
        if self.p == 1:
            return x * torch.zeros((), dtype=x.dtype, device=x.device)
        noise = keep.to(x.dtype).expand(x.shape[0], *keep.shape).clone()
        return self._scale(noise, x)

    def last_mask(self, example: int) -> torch.Tensor | None:
        """Bool keep-mask of one example in the last forward pass (None: all kept)."""
        return None if self.noise is None else self.noise[example] != 0

    def take_kept(self) -> torch.Tensor | None:
        """Kept examples per neuron since the last call (None if no mask was drawn), and
        restart counting. The caller knows how many examples went through a mask."""
        if self._kept is None and self._carry is None:
            return None
        kept = self._carry if self._kept is None else self._kept.sum(0)
        if self._kept is not None and self._carry is not None:
            kept = kept + self._carry
        if self._kept is not None:
            self._kept.zero_()  # in place, so a captured CUDA graph keeps counting
        self._carry = None
        return kept


class RecordingDropout(RecordingDropoutMixin, nn.Dropout):
    """torch.nn.Dropout that keeps its mask. Input (N, *), output the same shape."""

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self._start_recording()


class RecordingDropout2d(RecordingDropoutMixin, nn.Dropout2d):
    """torch.nn.Dropout2d that keeps its mask: input (N, C, H, W), mask (N, C, 1, 1).
    On (N, F) input (an MLP layer) each neuron is its own channel: the same as Dropout."""

    feature = True

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self._start_recording()


class RecordingAlphaDropout(RecordingDropoutMixin, nn.AlphaDropout):
    """torch.nn.AlphaDropout that keeps its mask (meant for SELU networks)."""

    alpha = True

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self._start_recording()


KINDS = {"dropout": RecordingDropout, "dropout2d": RecordingDropout2d, "alpha": RecordingAlphaDropout}
