"""Files that only OCR can read, built with the standard library: a scanned PDF (pages that
draw an image and no text) and a PNG."""

from __future__ import annotations

import struct
import zlib

from tests.fakes.documents import write_pdf


def make_scanned_pdf(pages: int, *, seed: int = 0) -> bytes:
    """A valid PDF of ``pages`` pages, each drawing one 16x16 grey image: no text layer."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    page_ids = [3 + 3 * i for i in range(pages)]
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    for number, page_id in enumerate(page_ids):
        pixels = bytes((seed + number * 37 + i) % 256 for i in range(16 * 16))
        image = (b"<< /Type /XObject /Subtype /Image /Width 16 /Height 16 /ColorSpace /DeviceGray"
                 b" /BitsPerComponent 8 /Length %d >>\nstream\n" % len(pixels) + pixels
                 + b"\nendstream")
        draw = b"q 500 0 0 700 56 46 cm /Im0 Do Q"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources "
                       f"<< /XObject << /Im0 {page_id + 1} 0 R >> >> /Contents {page_id + 2} 0 R >>"
                       .encode())
        objects.append(image)
        objects.append(b"<< /Length %d >>\nstream\n" % len(draw) + draw + b"\nendstream")
    return write_pdf(objects)


def make_png(width: int = 8, height: int = 8, *, seed: int = 0) -> bytes:
    """A valid greyscale PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + bytes((seed + x + y) % 256 for x in range(width))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))
