"""How a bad value is refused: range checks that speak PyTorch's words, strict models, and
ConfigError, whose entries name the field, the allowed range and the value received:
"dropout probability has to be between 0 and 1, but got 1.5"."""
from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError, core_schema


def plain_number(v: float) -> str:
    """A bound as people write it: 2147483647, not 2.14748e+09; 1e-05 stays short."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


class in_range:  # noqa: N801 -- used like pydantic's validators: Annotated[int, in_range(...)]
    """Keeps lo <= v <= hi (NaN fails) and says so in PyTorch's words; the JSON Schema of
    the field carries the range as minimum and maximum (the page builds its form from it)."""

    def __init__(self, lo: float, hi: float, what: str):
        self.lo, self.hi, self.what = lo, hi, what

    def check(self, v):
        if not (self.lo <= v <= self.hi):
            raise PydanticCustomError(
                "out_of_range",
                "{what} has to be between {lo} and {hi}, but got {got}",
                {"what": self.what, "lo": plain_number(self.lo), "hi": plain_number(self.hi), "got": v},
            )
        return v

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        return {**handler(schema), "minimum": self.lo, "maximum": self.hi}


# the most layers the protocol can name (a live change's layer is 0..MAX_LAYERS - 1); a
# per-layer list longer than this is refused before its items are looked at (a 64 KB
# configure of 32,700 bad values made 32,700 errors to build: docs/limits.md)
MAX_LAYERS = 64

Prob = Annotated[float, in_range(0.0, 1.0, "dropout probability")]
Lr = Annotated[float, in_range(1e-5, 10.0, "learning rate")]


class Strict(BaseModel):
    """A payload with no unknown fields, no coercion (1 is not True) and no later change."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConfigError(ValueError):
    """Raised for any bad visitor input. .errors is a list of JSON-safe dicts with keys
    field, message, allowed, received."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


def safe_value(v: Any, limit: int = 80) -> Any:
    """A JSON-safe, bounded echo of what a visitor sent."""
    if isinstance(v, bool) or v is None or isinstance(v, int) and abs(v) < 2**53:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    text = repr(v) if not isinstance(v, str) else v
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def shown(v: Any) -> str:
    """A value as a message quotes it: strings in quotes, anything else as written."""
    return repr(safe_value(v)) if isinstance(v, str) else str(safe_value(v))


def error_entry(field: str, message: str, allowed: str, received: Any) -> dict:
    """One entry of ConfigError.errors."""
    return {"field": field, "message": message, "allowed": allowed, "received": safe_value(received)}


def from_pydantic(err: ValidationError, prefix: str = "") -> list[dict]:
    """pydantic's errors as ConfigError entries, each field named from `prefix` down."""
    out = []
    for e in err.errors(include_url=False):
        field = ".".join(str(x) for x in (prefix, *e["loc"]) if x != "")
        ctx = e.get("ctx") or {}
        allowed = _allowed(e["type"], ctx)
        # a check may name the one value at fault (x of a point, not the whole point)
        out.append(error_entry(field or prefix or "config", _message(e, field, allowed), allowed,
                               ctx.get("received", e.get("input"))))
    return out


def _allowed(kind: str, ctx: dict) -> str:
    """What a field allows, as the error entry says it, from a pydantic error's kind."""
    if kind == "out_of_range":
        return f"{ctx['lo']}..{ctx['hi']}"
    if "allowed" in ctx:  # our own cross-field checks say it themselves
        return ctx["allowed"]
    if kind == "literal_error":
        return ctx.get("expected", "").replace(" or ", ", ")
    if kind == "too_long":
        return f"at most {ctx['max_length']} items"
    if kind == "extra_forbidden":
        return "no such field"
    if kind == "missing":
        return "required"
    if kind in ("model_type", "dict_type"):  # a section that is not an object
        return "object"
    return kind.split("_")[0]  # e.g. int_type -> int, list_type -> list


def _message(e: dict, field: str, allowed: str) -> str:
    """A pydantic error's message, ending in the value received where pydantic's does not."""
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind in ("out_of_range", "missing") or "allowed" in ctx:
        return e["msg"]
    if kind == "literal_error":
        name = str(e["loc"][-1]) if e["loc"] else "value"
        return f"{name} has to be one of {allowed}, but got {safe_value(e.get('input'))!r}"
    if kind == "too_long":
        return f"{field} has to hold {allowed}, but got {ctx['actual_length']}"
    return f"{e['msg']}, but got {safe_value(e.get('input'))!r}"


def parse(model: type[Strict], raw: Any, field: str = "payload") -> Strict:
    """Validate one small payload (a live change, say) against its schema."""
    if not isinstance(raw, dict):
        raise ConfigError([error_entry(field, f"{field} has to be an object", "object", raw)])
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(from_pydantic(err)) from None
