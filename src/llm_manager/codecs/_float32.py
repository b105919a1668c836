"""Vectors as float32: the precision every embedding provider computes in, and the layout of the base64 encoding
(OpenAI's ``encoding_format: base64`` is the little-endian float32 bytes of the vector).

Everything decoded is rounded to float32 once, here, so a vector is the same whether it arrived as JSON numbers or
as base64, and survives a cache round trip or a re-encoding for the gateway's client bit for bit.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from array import array
from collections.abc import Sequence

__all__ = ["VectorError", "as_float32", "pack_base64", "unpack_base64"]

_SWAP = sys.byteorder != "little"


class VectorError(ValueError):
    """A vector on the wire is not a list of finite numbers or valid base64 float32 bytes."""


def as_float32(values: object) -> list[float]:
    """``values`` (a JSON array of numbers) rounded to float32; raises :class:`VectorError` otherwise."""
    if not isinstance(values, list) or not values:
        raise VectorError("a vector must be a non-empty array of numbers")
    try:
        # array('f') checks every item is a real number (bools are ints: rejected below) and rounds it in C.
        packed = array("f", values)
    except (TypeError, OverflowError) as exc:
        raise VectorError(f"a vector must hold only numbers: {exc}") from None
    out = packed.tolist()
    if any(isinstance(v, bool) for v in values) or not all(map(math.isfinite, out)):
        raise VectorError("a vector must hold only finite numbers")
    return out


def pack_base64(vector: Sequence[float]) -> str:
    """The base64 text of ``vector``'s little-endian float32 bytes."""
    packed = array("f", vector)
    if _SWAP:
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def unpack_base64(text: object) -> list[float]:
    """The vector encoded by :func:`pack_base64`; raises :class:`VectorError` on anything else."""
    if not isinstance(text, str) or not text:
        raise VectorError("a base64 vector must be a non-empty string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VectorError(f"not valid base64: {exc}") from None
    if len(raw) % 4:
        raise VectorError(f"{len(raw)} bytes is not a whole number of float32 values")
    packed = array("f")
    packed.frombytes(raw)
    if _SWAP:
        packed.byteswap()
    out = packed.tolist()
    if not all(map(math.isfinite, out)):
        raise VectorError("a vector must hold only finite numbers")
    return out
