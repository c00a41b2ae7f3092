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

VERSION = 1
ENCODINGS = ("bits", "u32", "q8", "p8")


@dataclass
class Frame:
    header: dict
    sections: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # name -> (enc, array)

    def add(self, name: str, enc: str, array: np.ndarray) -> None:
        assert enc in ENCODINGS, enc
        self.sections[name] = (enc, np.asarray(array))


def _pack(enc: str, a: np.ndarray) -> tuple[bytes, dict]:
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
    """a with NaN and infinities replaced by fill (np.nan_to_num costs ~15 us a call;
    a frame packs a dozen arrays, nearly always all finite)."""
    ok = np.isfinite(a)
    return a if ok.all() else np.where(ok, a, fill)


def encode(frame: Frame) -> bytes:
    chunks, meta, offset = [], [], 0
    for name, (enc, array) in frame.sections.items():
        data, extra = _pack(enc, array)
        meta.append({"name": name, "enc": enc, "shape": list(array.shape), "offset": offset,
                     "nbytes": len(data), **extra})
        pad = -len(data) % 4
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad
    head = json.dumps({"v": VERSION, **frame.header, "sections": meta}, separators=(",", ":"),
                      allow_nan=False).encode()
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
