"""Draw the demo pass's images (icon, logo, strip at 1x/2x/3x) as small PNGs, stdlib only.

    python wallet_templates/make_demo_images.py [target dir]   (default: demo/apple beside this file)

Real programs replace them with their designer's files; this only keeps the demo self-made
and reproducible. Sizes follow Apple's store card guidance in points: icon 38x38, logo up
to 160x50, strip 375x123.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

BROWN = (60, 36, 21)
CREAM = (255, 248, 236)
CARAMEL = (226, 182, 120)
SAMPLES = 3  # supersampling per axis, for smooth edges


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGBA PNG from raw rows (each width*4 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def render(width: int, height: int, paint, samples: int = SAMPLES) -> bytes:
    """paint(x, y) -> (r, g, b, a) in unit coordinates; averaged over samples^2 points a pixel."""
    rows = []
    for py in range(height):
        row = bytearray()
        for px in range(width):
            total = [0, 0, 0, 0]
            for sy in range(samples):
                for sx in range(samples):
                    r, g, b, a = paint((px + (sx + 0.5) / samples) / width, (py + (sy + 0.5) / samples) / height)
                    total = [total[0] + r * a, total[1] + g * a, total[2] + b * a, total[3] + a]
            alpha = total[3] / samples**2
            row += bytes(round(c / total[3]) if total[3] else 0 for c in total[:3]) + bytes([round(alpha * 255)])
        rows.append(bytes(row))
    return png(width, height, rows)


def _cup(x: float, y: float, aspect: float = 1.0) -> tuple:
    """A cream cup with a caramel band on brown: the demo coffee shop's mark."""
    dx, dy = (x - 0.5) * aspect, y - 0.5
    d2 = dx * dx + dy * dy
    if d2 < 0.30**2:
        return (*CARAMEL, 1.0) if abs(dy) < 0.06 else (*CREAM, 1.0)
    return (*BROWN, 1.0)


def icon(x: float, y: float) -> tuple:
    return _cup(x, y)


def logo(x: float, y: float) -> tuple:
    # 50x50 mark on the left of a 160x50 area; the rest transparent (logoText sits there).
    if x * 160 > 50:
        return (0, 0, 0, 0.0)
    r, g, b, _ = _cup(x * 160 / 50, y)
    inside = ((x * 160 / 50 - 0.5) ** 2 + (y - 0.5) ** 2) < 0.46**2
    return (r, g, b, 1.0 if inside else 0.0)


def strip(x: float, y: float) -> tuple:
    t = x * 0.7 + y * 0.3
    base = tuple(round(BROWN[i] + (CARAMEL[i] - BROWN[i]) * t * 0.55) for i in range(3))
    return (*base, 1.0)


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name, size, paint in (("icon", (38, 38), icon), ("logo", (160, 50), logo), ("strip", (375, 123), strip)):
        for scale, suffix in ((1, ""), (2, "@2x"), (3, "@3x")):
            samples = 1 if name == "strip" else SAMPLES  # a gradient needs no smoothing
            (target / f"{name}{suffix}.png").write_bytes(render(size[0] * scale, size[1] * scale, paint, samples))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "demo" / "apple")
