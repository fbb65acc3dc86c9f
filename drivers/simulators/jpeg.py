"""Small valid baseline JPEGs, generated without an image library: a grey pattern of 8×8 blocks.

Every block is flat (only its DC coefficient is coded), so a one-table
Huffman code is enough: twelve 4-bit codes for the DC size categories and a
1-bit end-of-block. ``seed`` shifts the pattern, so two snapshots differ.
"""

from __future__ import annotations

import struct


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(body) + 2) + body


class _Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing
                self.acc = self.n = 0

    def flush(self) -> bytes:
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with ones
        return bytes(self.out)


def jpeg(width: int = 64, height: int = 48, *, seed: int = 0) -> bytes:
    """A ``width`` × ``height`` greyscale JPEG (multiples of 8)."""
    if width % 8 or height % 8 or not 0 < width <= 4096 or not 0 < height <= 4096:
        raise ValueError("width and height must be multiples of 8, at most 4096")
    quant = _segment(0xDB, b"\x00" + bytes([1] * 64))
    frame = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    dc_counts = bytes([0, 0, 0, 12] + [0] * 12)
    ac_counts = bytes([1] + [0] * 15)
    tables = _segment(0xC4, b"\x00" + dc_counts + bytes(range(12)) + b"\x10" + ac_counts + b"\x00")
    scan = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    bits = _Bits()
    previous = 0
    for by in range(height // 8):
        for bx in range(width // 8):
            level = (bx * 17 + by * 29 + seed * 37) % 200 + 28
            dc = 8 * (level - 128)
            diff, previous = dc - previous, dc
            size = abs(diff).bit_length()
            bits.put(size, 4)
            if size:
                bits.put(diff if diff > 0 else diff + (1 << size) - 1, size)
            bits.put(0, 1)  # end of block
    return b"\xff\xd8" + quant + frame + tables + scan + bits.flush() + b"\xff\xd9"
