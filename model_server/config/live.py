"""Live changes a visitor sends while a run exists; each takes effect at the next step."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from .validation import MAX_LAYERS, Lr, Prob, Strict, in_range


class SetP(Strict):
    param: Literal["p"]
    layer: Annotated[int, in_range(0, MAX_LAYERS - 1, "layer")]
    value: Prob


class SetLr(Strict):
    param: Literal["lr"]
    value: Lr


class SetMode(Strict):
    param: Literal["mode"]
    # a new run starts in train mode (RunState); the schema's default says so to the page
    value: Annotated[Literal["train", "eval"], Field(json_schema_extra={"default": "train"})]


class SetSpeed(Strict):
    param: Literal["speed"]
    value: Annotated[float, in_range(1.0, 1_000_000.0, "speed (steps per second)")]


class SetWatch(Strict):
    """Which hidden neuron's output over the input plane frames should carry (both null:
    none, and the server stops computing it)."""
    param: Literal["watch"]
    layer: Annotated[int, in_range(0, MAX_LAYERS - 1, "layer")] | None = None
    index: Annotated[int, in_range(0, 63, "neuron")] | None = None

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.layer is None) != (self.index is None):
            raise PydanticCustomError(
                "pair", "layer and index have to be given together (or both null), but got "
                "layer={layer} and index={index}",
                {"layer": "null" if self.layer is None else self.layer,
                 "index": "null" if self.index is None else self.index, "allowed": "two ints, or both null"})
        return self


class SetView(Strict):
    """Which decision boundary frames carry: the eval-mode network's, or the thinned
    network's of the mask shown. Only the one on screen is computed."""
    param: Literal["view"]
    value: Annotated[Literal["eval", "thinned"], Field(json_schema_extra={"default": "eval"})]


# a change of a run's own settings, as a value (RunState.apply); speed is the server's pacing
RunChange = SetP | SetLr | SetMode | SetWatch | SetView


class LiveChange(Strict):
    change: Annotated[SetP | SetLr | SetMode | SetSpeed | SetWatch | SetView, Field(discriminator="param")]
