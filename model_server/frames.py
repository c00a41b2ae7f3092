"""Frame encoding: what one training step looked like, as one binary message.

Layout (all little-endian), documented for clients in docs/protocol.md:

    byte 0          format version (VERSION)
    bytes 1..4      uint32 n: length of the JSON header
    bytes 5..5+n    UTF-8 JSON header, padded with spaces to a multiple of 4 bytes
    then            the sections' bytes, each starting on a 4-byte boundary

header["sections"] lists each section as {name, enc, shape, offset, nbytes[, scale]}
with offset counted from the start of the payload (the byte after the header). Encodings:

    bits  bool array, np.packbits order (first element = most significant bit)
    u32   uint32 counts
    q8    int8; value = q * scale (scale = max |x| / 127)
    p8    uint8 probability; value = q / 255

The encoder only packs numpy arrays; it never sees a tensor.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np
import orjson

VERSION = 1
ENCODINGS = ("bits", "u32", "q8", "p8")


@dataclass
class Frame:
    """One step's frame before encoding: a JSON-able header and named numpy sections."""
    header: dict
    # name -> (enc, array), or (enc, shape, data, extra) for a section packed already
    sections: dict[str, tuple] = field(default_factory=dict)

    def add(self, name: str, enc: str, array: np.ndarray) -> None:
        assert enc in ENCODINGS, enc
        self.sections[name] = (enc, np.asarray(array))

    def add_packed(self, name: str, enc: str, shape: tuple, data: bytes, extra: dict | None = None) -> None:
        """A section packed already (pack_rows: many frames' sections in one numpy pass)."""
        assert enc in ENCODINGS, enc
        self.sections[name] = (enc, tuple(shape), data, extra or {})


def pack_rows(enc: str, a: np.ndarray) -> list[tuple[bytes, dict]]:
    """Row i of a (N, ...) as its own section's bytes (and scale), for N frames at once:
    the same bytes _pack gives each row alone."""
    n = len(a)
    if n == 0:
        return []
    flat = a.reshape(n, -1)
    if enc == "bits":
        packed = np.packbits(flat.astype(bool), axis=1)
        return [(row.tobytes(), {}) for row in packed]
    if enc == "u32":
        return [(row.tobytes(), {}) for row in np.clip(flat, 0, 2**32 - 1).astype("<u4")]
    if enc == "q8":
        f = _finite(flat.astype(np.float32), 0.0)
        # the scale as _pack reports it (a double); the division in float32, as _pack's
        scale = np.abs(f).max(axis=1).astype(np.float64) / 127 if f.shape[1] else np.zeros(n)
        safe = np.where(scale == 0, 1, scale).astype(np.float32)[:, None]
        q = np.where(scale[:, None] == 0, 0, np.round(f / safe)).astype(np.int8)
        return [(row.tobytes(), {"scale": float(sc)}) for row, sc in zip(q, scale)]
    q = np.round(_finite(np.clip(flat, 0, 1), 0.5) * 255).astype(np.uint8)
    return [(row.tobytes(), {}) for row in q]


def _pack(enc: str, a: np.ndarray) -> tuple[bytes, dict]:
    """One section's bytes in encoding enc, and what decoding needs besides (q8's scale)."""
    if enc == "bits":
        return np.packbits(a.astype(bool).reshape(-1)).tobytes(), {}
    if enc == "u32":
        return np.clip(a, 0, 2**32 - 1).astype("<u4").tobytes(), {}
    if enc == "q8":
        a = _finite(a.astype(np.float32), 0.0)
        scale = float(np.abs(a).max()) / 127 if a.size else 0.0
        q = np.zeros(a.shape, np.int8) if scale == 0 else np.round(a / scale).astype(np.int8)
        return q.tobytes(), {"scale": scale}
    q = np.round(_finite(np.clip(a, 0, 1), 0.5) * 255).astype(np.uint8)  # p8: NaN -> 0.5
    return q.tobytes(), {}


def _finite(a: np.ndarray, fill: float) -> np.ndarray:
    """a with NaN and infinities replaced by fill (np.nan_to_num copies every array;
    a frame packs a dozen arrays, nearly always all finite, so a check is cheaper)."""
    ok = np.isfinite(a)
    return a if ok.all() else np.where(ok, a, fill)


def encode(frame: Frame) -> bytes:
    """The frame as one binary message, laid out as above (sections in the order added)."""
    chunks, meta, offset = [], [], 0
    for name, section in frame.sections.items():
        if len(section) == 2:
            enc, array = section
            shape, (data, extra) = array.shape, _pack(enc, array)
        else:
            enc, shape, data, extra = section
        meta.append({"name": name, "enc": enc, "shape": list(shape), "offset": offset,
                     "nbytes": len(data), **extra})
        pad = -len(data) % 4
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad
    # orjson, not json: a header is written for every frame of every client, and orjson
    # writes it in a fraction of json.dumps' time (docs/benchmarks.md); the engine never
    # puts NaN or infinity in a header (they would become null)
    head = orjson.dumps({"v": VERSION, **frame.header, "sections": meta})
    head += b" " * (-(len(head) + 5) % 4)
    return struct.pack("<BI", VERSION, len(head)) + head + b"".join(chunks)


def decode(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The inverse of encode (values dequantized). Used by tests and Python clients."""
    version, n = struct.unpack_from("<BI", data, 0)
    if version != VERSION:
        raise ValueError(f"frame format version has to be {VERSION}, but got {version}")
    header = json.loads(data[5:5 + n])
    base, arrays = 5 + n, {}
    for s in header["sections"]:
        raw = data[base + s["offset"]: base + s["offset"] + s["nbytes"]]
        shape, size = tuple(s["shape"]), int(np.prod(s["shape"]))
        if s["enc"] == "bits":
            a = np.unpackbits(np.frombuffer(raw, np.uint8), count=size).astype(bool)
        elif s["enc"] == "u32":
            a = np.frombuffer(raw, "<u4").astype(np.int64)
        elif s["enc"] == "q8":
            a = np.frombuffer(raw, np.int8).astype(np.float32) * s["scale"]
        else:
            a = np.frombuffer(raw, np.uint8).astype(np.float32) / 255
        arrays[s["name"]] = a.reshape(shape)
    return header, arrays
