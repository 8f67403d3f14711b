"""Uploads built to hurt: pictures whose header declares far more pixels than their bytes
suggest (a "pixel bomb"), and what happens to every refused file (it is not kept)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
import zlib

import pytest

from conftest import ROOT
from core.data import DataError, load_image_zip, load_pictures


def uniform_png(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A valid RGB PNG of one colour, written row by row so the test never holds its pixels:
    100 megapixels compress to about 300 KB. `rows`: only that many rows of pixel data, a
    header that promises more than the file holds (what a crafted bomb sends; a reader that
    checks the header never gets further)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(9), b"\x00" + b"\x00" * (3 * width)  # filter byte, then black pixels
    idat = b"".join(packer.compress(row) for _ in range(height if rows is None else rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def pixel_bomb_zip(count: int = 12, side: int = 10_000) -> bytes:
    """`count` stored (uncompressed) PNGs of side x side pixels in two class folders: the
    ZIP's own sizes and ratios look harmless."""
    png, buffer = uniform_png(side, side), io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"{'ab'[i % 2]}/{i:02d}.png", png)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return pixel_bomb_zip()


def test_the_bomb_is_a_valid_picture_of_what_it_declares():
    from PIL import Image

    with Image.open(io.BytesIO(uniform_png(300, 200))) as img:
        assert img.size == (300, 200) and img.convert("RGB").getpixel((299, 199)) == (0, 0, 0)


def test_a_pixel_bomb_zip_is_refused_by_name_before_decoding(bomb):
    assert len(bomb) < 5 * 1024**2
    with pytest.raises(DataError) as err:
        load_image_zip(bomb, "scans.zip")
    message = str(err.value)
    assert message.startswith("scans.zip: picture 'a/00.png' is 10,000 x 10,000 pixels (100 megapixels), over the "
                              "limit of 50 megapixels per picture"), message
    with pytest.raises(DataError, match="over the limit of 50 megapixels"):
        load_pictures(bomb, "new cases.zip", size=32, grayscale=False)


def test_a_single_oversized_picture_is_refused(bomb):
    with pytest.raises(DataError, match=r"^scan.png: picture 'scan.png' is 12,000 x 9,000 pixels"):
        load_pictures(uniform_png(12_000, 9_000, rows=1), "scan.png", size=32, grayscale=False)


def test_pictures_each_within_budget_are_refused_when_they_add_up(monkeypatch):
    monkeypatch.setattr("core.data._loaders.MAX_UPLOAD_PIXELS", 5 * 400 * 400)
    small = pixel_bomb_zip(count=8, side=400)
    with pytest.raises(DataError, match=r"^ok.zip: the pictures add up to more than 0.8 megapixels.*'b/05.png'"):
        load_image_zip(small, "ok.zip")
    monkeypatch.setattr("core.data._loaders.MAX_UPLOAD_PIXELS", 8 * 400 * 400)
    assert load_image_zip(small, "ok.zip").x.shape == (8, 3, 32, 32)


@pytest.mark.slow
def test_a_picture_far_beyond_pils_own_limit_is_refused_in_words():
    """PIL itself refuses a header over twice its limit while opening it: said as the budget."""
    with pytest.raises(DataError, match=r"^huge.png: picture 'huge.png' over the limit of 50 megapixels"):
        load_pictures(uniform_png(20_000, 20_000, rows=1), "huge.png", size=32, grayscale=False)


MEASURE = """
import json, sys, time
from core.data import DataError, load_image_zip
data = open(sys.argv[1], "rb").read()
def status_mb(field):  # VmRSS now, VmHWM the peak of this process (ru_maxrss would include the forked parent)
    line = next(x for x in open("/proc/self/status") if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024
before = status_mb("VmRSS")
start = time.perf_counter()
try:
    load_image_zip(data, "scans.zip")
    refused = None
except DataError as exc:
    refused = str(exc)
seconds = time.perf_counter() - start
print(json.dumps({"refused": refused, "seconds": seconds, "peak_over_start_mb": status_mb("VmHWM") - before}))
"""


def test_refusing_the_bomb_takes_little_memory(bomb, tmp_path):
    """In a fresh process: the peak resident memory while refusing stays far below one decoded
    picture (300 MB). The time is printed, not asserted (bench/pixel_bomb.py reports it)."""
    path = tmp_path / "scans.zip"
    path.write_bytes(bomb)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["refused"] and "over the limit" in result["refused"]
    assert result["peak_over_start_mb"] < 200, result
    assert "DecompressionBombWarning" not in out.stderr
    print(f"pixel bomb refused in {result['seconds']:.2f} s, peak +{result['peak_over_start_mb']:.0f} MB")


# --- EXIF orientation -------------------------------------------------------------------------

def _half_and_half(width: int, height: int):
    """Left half red, right half blue."""
    from PIL import Image

    img = Image.new("RGB", (width, height), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, width // 2, height))
    return img


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_pictures_are_turned_upright_as_their_exif_orientation_says(fmt):
    """A phone stores a portrait photo sideways, with orientation 6 ("turn 90 degrees
    clockwise to view"): loaded, it must match the upright picture a viewer shows."""
    from PIL import Image

    upright = _half_and_half(40, 64)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote: turned a quarter anticlockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer, plain = io.BytesIO(), io.BytesIO()
    stored.save(buffer, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    upright.save(plain, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    suffix = ".png" if fmt == "PNG" else ".jpg"
    turned, _ = load_pictures(buffer.getvalue(), "portrait" + suffix, size=16, grayscale=False)
    reference, _ = load_pictures(plain.getvalue(), "upright" + suffix, size=16, grayscale=False)
    assert abs(turned - reference).max() < 0.1
    red = turned[0, 0]  # (C, H, W): the red channel is high on the left half only
    assert red[:, :6].mean() > 0.9 and red[:, -6:].mean() < 0.1
