"""Just enough PNG to read a browser's screenshot: 8-bit RGB or RGBA, not interlaced."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt


def read_png(data: bytes) -> npt.NDArray[np.uint8]:
    """The pixels as a (height, width, 3) array of RGB."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, header, compressed = 8, b"", bytearray()
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color}, interlace {interlace}")
    channels = 3 if color == 2 else 4
    stride = width * channels
    raw = zlib.decompress(bytes(compressed))
    rows = np.zeros((height, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).astype(np.int32)
        rows[y] = previous = _unfilter(kind, line, previous, channels)
    return rows.reshape(height, width, channels)[:, :, :3].astype(np.uint8)


def _unfilter(
    kind: int, line: npt.NDArray[np.int32], up: npt.NDArray[np.int32], bpp: int
) -> npt.NDArray[np.int32]:
    if kind == 0:
        return line
    if kind == 2:
        return (line + up) & 0xFF
    out: npt.NDArray[np.int32] = line.copy()
    for i in range(len(out)):  # Sub, Average and Paeth depend on the byte just decoded
        left = out[i - bpp] if i >= bpp else 0
        if kind == 1:
            out[i] = (out[i] + left) & 0xFF
        elif kind == 3:
            out[i] = (out[i] + (left + up[i]) // 2) & 0xFF
        elif kind == 4:
            corner = up[i - bpp] if i >= bpp else 0
            estimate = left + up[i] - corner
            pa, pb, pc = abs(estimate - left), abs(estimate - up[i]), abs(estimate - corner)
            best = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
            out[i] = (out[i] + best) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")
    return out
