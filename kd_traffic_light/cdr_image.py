"""Read serialized ``sensor_msgs/Image`` and ``CompressedImage`` (CDR bytes) without building the message.

The detector node subscribes with ``raw=True``: its callback reads only the fields in front of the pixels
(:func:`read_image`, :func:`read_compressed`) to validate and count a frame, and only the frame the worker takes
is decoded, as a numpy view of the bytes (no copy). Plain CDR, little or big endian; any other encapsulation
raises :class:`CdrError` and the node falls back to rclpy's deserialisation.

The wire layout: docs/runtime.md, "The detector node's hot path".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ENCAPSULATIONS = {b"\x00\x01": "<", b"\x00\x00": ">", b"\x00\x07": "<", b"\x00\x06": ">"}  # CDR, PLAIN_CDR2


class CdrError(ValueError):
    """The bytes are not a plain-CDR Image/CompressedImage this reader understands."""


@dataclass(frozen=True)
class Stamp:
    """``builtin_interfaces/Time`` fields."""

    sec: int
    nanosec: int


@dataclass(frozen=True)
class HeaderView:
    """``std_msgs/Header`` fields."""

    stamp: Stamp
    frame_id: str


@dataclass(frozen=True)
class ImageView:
    """The fields of a ``sensor_msgs/Image``; ``data`` is a zero-copy view of the serialized bytes."""

    header: HeaderView
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


@dataclass(frozen=True)
class CompressedView:
    """The fields of a ``sensor_msgs/CompressedImage``; ``data`` is a zero-copy view."""

    header: HeaderView
    format: str
    data: memoryview


class _Reader:
    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = memoryview(buf)
        if len(self.buf) < 4 or bytes(self.buf[:2]) not in ENCAPSULATIONS:
            raise CdrError(f"unknown CDR encapsulation {bytes(self.buf[:2]).hex() or '(empty)'}")
        self.order = ENCAPSULATIONS[bytes(self.buf[:2])]
        self.pos = 4

    def u32(self, signed: bool = False) -> int:
        self.pos += -(self.pos - 4) % 4
        end = self.pos + 4
        if end > len(self.buf):
            raise CdrError("message ends inside a 4-byte field")
        (value,) = struct.unpack_from(self.order + ("i" if signed else "I"), self.buf, self.pos)
        self.pos = end
        return value

    def u8(self) -> int:
        if self.pos >= len(self.buf):
            raise CdrError("message ends inside a 1-byte field")
        self.pos += 1
        return self.buf[self.pos - 1]

    def octets(self) -> memoryview:
        n = self.u32()
        if self.pos + n > len(self.buf):
            raise CdrError(f"sequence of {n} bytes overruns the message ({len(self.buf) - self.pos} left)")
        view = self.buf[self.pos:self.pos + n]
        self.pos += n
        return view

    def string(self) -> str:
        raw = self.octets()
        if len(raw) == 0:  # some writers send length 0 for ""
            return ""
        return bytes(raw[:-1]).decode("utf-8", errors="replace")

    def header(self) -> HeaderView:
        sec = self.u32(signed=True)
        nanosec = self.u32()
        return HeaderView(Stamp(sec, nanosec), self.string())


def read_image(buf: bytes | memoryview) -> ImageView:
    """Parse a serialized ``sensor_msgs/Image``; ``data`` stays a view of ``buf``."""
    r = _Reader(buf)
    header = r.header()
    height, width = r.u32(), r.u32()
    encoding = r.string()
    is_bigendian = r.u8()
    step = r.u32()
    return ImageView(header, height, width, encoding, is_bigendian, step, r.octets())


def read_compressed(buf: bytes | memoryview) -> CompressedView:
    """Parse a serialized ``sensor_msgs/CompressedImage``; ``data`` stays a view of ``buf``."""
    r = _Reader(buf)
    header = r.header()
    fmt = r.string()
    return CompressedView(header, fmt, r.octets())
