"""Loaders for user data: tables (CSV/Parquet), ZIPs of class folders, and `.npz` arrays.

Every upload is treated as hostile: sizes are capped before parsing, ZIP members are
checked for traversal and decompression bombs, `.npz` files never unpickle, and every
rejection names the file, row or column and says what to do.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import IO
from functools import partial
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from core.data._columns import suggest_label
from core.data._dataset import PICTURE_IDS, Dataset, as_ids
from core.data._errors import DataError, check_labels, quoted, short_list
from core.data._label_variants import merge_label_variants
from core.data._tables import MAX_TABLE_FEATURES, TABLE_SUFFIXES, read_table, table_dataset

__all__ = [
    "DataError", "MAX_UPLOAD_BYTES", "load_table", "guess_label_column", "load_image_zip",
    "load_npz", "load_upload", "load_pictures", "load_npz_inputs", "check_upload_size",
]

MAX_UPLOAD_BYTES = 200 * 1024**2
MAX_UNPACKED_BYTES = 1024**3
MAX_MEMBERS = 100_000
MAX_COMPRESSION_RATIO = 200
MAX_IMAGE_PIXELS = 50_000_000  # one picture, from its header: a 50-megapixel camera's full frame
MAX_UPLOAD_PIXELS = 1_000_000_000  # all pictures of one upload together (about 3 GB decoded)
MAX_TABLE_COLUMNS_AFTER_ENCODING = MAX_TABLE_FEATURES
LABEL_NAMES = ("label", "labels", "target", "class", "y", "diagnosis", "outcome", "category")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
NPZ_NAMES = {  # our names, then MedMNIST's
    "x_train": ("x_train", "train_images"), "y_train": ("y_train", "train_labels"),
    "x_test": ("x_test", "test_images"), "y_test": ("y_test", "test_labels"),
}
F32_MAX = float(np.finfo(np.float32).max)


def _check_size(data: bytes, filename: str) -> None:
    """An empty file or one over MAX_UPLOAD_BYTES is refused before anything parses it."""
    if len(data) == 0:
        raise DataError(f"{filename}: the file is empty; choose a file with data in it.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{filename}: {len(data) / 1024**2:.0f} MB is over the "
                        f"{MAX_UPLOAD_BYTES // 1024**2} MB limit; upload a smaller sample.")


check_upload_size = _check_size


# --- tables ---------------------------------------------------------------------------

def guess_label_column(table: pd.DataFrame | Sequence[str]) -> str | None:
    """The likely label column of a table (see `suggest_label`); given only column names,
    a label-like name or None. Never a continuous column, never "the last one"."""
    if isinstance(table, pd.DataFrame):
        return suggest_label(table)[0]
    lowered = {str(c).strip().lower(): c for c in table}
    return next((lowered[name] for name in LABEL_NAMES if name in lowered), None)


def load_table(data: bytes, filename: str, label_column: str | None = None,
               roles: Mapping[str, str] | None = None, missing: str = "refuse", *,
               merge_labels: bool | None = None) -> Dataset:
    """A table with one label column. Numbers, categories (one-hot) and dates become
    features, free text is kept as text for the split's text encoder; ID-like and
    constant columns are left out unless `roles` says otherwise; gaps are refused, their
    rows dropped, or filled after the split."""
    _check_size(data, filename)
    return table_dataset(read_table(data, filename), label_column, roles, missing, merge_labels=merge_labels)


# --- archives -------------------------------------------------------------------------

def _safe_members(archive: zipfile.ZipFile, filename: str) -> list[zipfile.ZipInfo]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise DataError(f"{filename}: {len(members)} files is over the {MAX_MEMBERS} limit.")
    total = 0
    for m in members:
        path = PurePosixPath(m.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in m.filename or ":" in m.filename:
            raise DataError(f"{filename}: member {m.filename!r} has an unsafe path; "
                            "use plain relative folder names.")
        if m.compress_size and m.file_size / max(m.compress_size, 1) > MAX_COMPRESSION_RATIO:
            raise DataError(f"{filename}: member {m.filename!r} expands {m.file_size // max(m.compress_size, 1)}x; "
                            "refusing a possible decompression bomb.")
        total += m.file_size
    if total > MAX_UNPACKED_BYTES:
        raise DataError(f"{filename}: unpacks to {total / 1024**2:.0f} MB, over the "
                        f"{MAX_UNPACKED_BYTES // 1024**2} MB limit.")
    return members


def _open_zip(data: bytes, filename: str, what: str = "ZIP archive") -> zipfile.ZipFile:
    _check_size(data, filename)
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError):
        raise DataError(f"{filename}: not a readable {what}: it is damaged or incomplete; save or download it "
                        "again.") from None


def _image_classes(paths: list[PurePosixPath]) -> list[str]:
    """Each image's class: the first folder below the folders every image shares, so
    `pets/cat/1.png`, a class folder nested twice (`cat/cat/1.png`) and sub-folders inside a
    class (`cat/indoor/1.png`) all give "cat"."""
    folders = [p.parts[:-1] for p in paths]
    depth = 0
    while all(len(f) > depth + 1 for f in folders) and len({f[depth] for f in folders}) == 1:
        depth += 1
    return [f[depth] for f in folders]


def _is_picture(path: PurePosixPath) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not any(p.startswith((".", "__MACOSX")) for p in path.parts)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} megapixels" if pixels >= 10_000_000 else f"{pixels / 1e6:.2g} megapixels"


def _check_pixel_budget(pictures: Sequence[tuple[str, Callable[[], IO[bytes]]]], filename: str) -> None:
    """Refuse pictures that would take too long or too much memory to decode, from the size
    each one's header declares (PIL reads only the header until asked for the pixels): a
    PNG of one colour at 10,000 x 10,000 is a few kilobytes in a ZIP but 300 MB once
    decoded, which no compression-ratio check of the ZIP can see. A header that cannot be
    read is left to the decoder, which names the file as unreadable."""
    from PIL import Image

    total = 0
    for name, open_member in pictures:
        try:
            with warnings.catch_warnings(), open_member() as stream:
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, in words
                with Image.open(stream) as img:
                    width, height = img.size
        except Image.DecompressionBombError:  # PIL's own limit, twice ours: far over the budget
            width = height = None
        except Exception:  # not an image at all: reported with the others when decoding
            continue
        pixels = MAX_IMAGE_PIXELS + 1 if width is None else width * height
        if pixels > MAX_IMAGE_PIXELS:
            size = "" if width is None else f" is {width:,} x {height:,} pixels ({_megapixels(pixels)}),"
            raise DataError(f"{filename}: picture {quoted(name, 40)}{size} over the limit of "
                            f"{_megapixels(MAX_IMAGE_PIXELS)} per picture; make the pictures smaller (they are "
                            "shrunk to a few dozen pixels for training anyway) and upload them again.")
        total += pixels
        if total > MAX_UPLOAD_PIXELS:
            raise DataError(f"{filename}: the pictures add up to more than {_megapixels(MAX_UPLOAD_PIXELS)} "
                            f"(the limit for one upload) by {quoted(name, 40)}; make them smaller or upload "
                            "fewer at a time.")


_WIDE_GREY = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}


def _as_rgb(img):
    """The picture as 8-bit RGB, scaled by its real range: PIL's own conversion clips a 16-bit
    grey picture (mode I;16, or I as PNG gives it) at 255, so all but its darkest pixels
    would read as white. 16-bit values are divided by 65535; floating-point grey (mode F) is
    taken as 0..1. (16-bit colour arrives from PIL as 8-bit RGB already.)"""
    from PIL import Image

    top = _WIDE_GREY.get(img.mode)
    if top is None:
        return img.convert("RGB")
    values = np.asarray(img, dtype=np.float64)
    grey = np.clip(np.round(np.nan_to_num(values) / top * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").convert("RGB")


def _decode_pictures(pictures: Sequence[tuple[str, Callable[[], IO[bytes]]]], filename: str,
                     size: int) -> tuple[np.ndarray, set[str]]:
    """(pixels (N, size, size, 3) uint8, the modes seen) of named pictures, each turned
    upright as its EXIF orientation says (as every viewer shows it: a phone stores a portrait
    photo sideways with a note to turn it) and resized to size x size, after the pixel budget
    is checked from their headers; a DataError names the unreadable ones (a few, and how
    many more)."""
    from PIL import Image, ImageOps

    _check_pixel_budget(pictures, filename)
    pixels = np.empty((len(pictures), size, size, 3), dtype=np.uint8)
    modes, unreadable = set(), []
    # A second guard, never reached after the budget check. PIL's limit is process-wide and
    # PIL refuses a header outright beyond twice it: at our own limit, a later upload's budget
    # check could no longer read the size of a picture between 2x and 4x over, to name it.
    Image.MAX_IMAGE_PIXELS = 2 * MAX_IMAGE_PIXELS
    for i, (name, open_member) in enumerate(pictures):
        try:
            with open_member() as stream, Image.open(io.BytesIO(stream.read())) as img:
                img.draft("RGB", (size, size))  # JPEGs decode straight at a smaller scale
                modes.add(img.mode)
                ImageOps.exif_transpose(img, in_place=True)
                pixels[i] = np.asarray(_as_rgb(img).resize((size, size), Image.Resampling.BILINEAR))
        except Exception:  # PIL raises many kinds for a broken file; each becomes "not readable"
            unreadable.append(quoted(name, 40))
    if unreadable:
        one = len(unreadable) == 1
        what = "is not a readable image" if one else "are not readable images"
        raise DataError(f"{filename}: {short_list(unreadable)} {what}; remove or replace {'it' if one else 'them'}.")
    return pixels, modes


def _pixels_as_input(pixels: np.ndarray, grayscale: bool) -> np.ndarray:
    """(N, C, H, W) float32 in [0, 1]: one grey channel (the mean of R, G, B) or three."""
    if grayscale:  # straight from the bytes: no full-colour float copy of every image
        x = pixels.mean(axis=3, dtype=np.float32)[:, None]
    else:
        x = pixels.transpose(0, 3, 1, 2).astype(np.float32)
    x /= 255.0
    return np.ascontiguousarray(x)


def _all_grey(modes: set[str]) -> bool:
    return modes <= {"L", "1", "I", "I;16", "I;16L", "I;16B", "I;16N", "F", "LA"}


def load_image_zip(data: bytes, filename: str, size: int = 32, grayscale: bool | None = None, *,
                   merge_labels: bool | None = None) -> Dataset:
    """Images in one folder per class (`cat/001.png`), resized to size x size.

    Colour is kept unless every image is grey (or `grayscale` says otherwise). Unreadable
    images are named (a few, and how many more) so they can be removed.
    """
    archive = _open_zip(data, filename)
    members = []
    for m in _safe_members(archive, filename):
        path = PurePosixPath(m.filename)
        if not _is_picture(path):
            continue
        if len(path.parts) < 2:
            raise DataError(f"{filename}: image {quoted(m.filename, 40)} is not inside a class folder; "
                            "put each class's images in a folder named after the class.")
        members.append((path, m))
    if not members:
        raise DataError(f"{filename}: no images found; expected folders like cat/001.png, dog/002.png.")
    labels, variants = merge_label_variants(_image_classes([p for p, _ in members]), merge_labels, filename,
                                            "the class folders")
    pixels, modes = _decode_pictures([(m.filename, partial(archive.open, m)) for _, m in members], filename, size)
    y, class_names = check_labels(labels, filename, "the class folders")
    if grayscale is None:
        grayscale = _all_grey(modes)
    return Dataset(PurePosixPath(filename).stem, _pixels_as_input(pixels, grayscale), y, class_names, "image",
                   label_variants=variants, ids=as_ids(m.filename for _, m in members), id_name=PICTURE_IDS)


def load_pictures(data: bytes, filename: str, *, size: int, grayscale: bool) -> tuple[np.ndarray, list[str]]:
    """Unlabelled pictures as a model's input: a ZIP of pictures in any folders (checked as
    any upload is) or one picture file, each resized to size x size, grey or colour as
    the model was trained. Returns (x (N, C, size, size) in [0, 1], each picture's name)."""
    _check_size(data, filename)
    if PurePosixPath(filename).suffix.lower() != ".zip":
        if not _is_picture(PurePosixPath(PurePosixPath(filename).name)):
            raise DataError(f"{filename}: not a picture or a ZIP of pictures; upload .png, .jpg, ... or a .zip.")
        pixels, _ = _decode_pictures([(PurePosixPath(filename).name, partial(io.BytesIO, data))], filename, size)
        return _pixels_as_input(pixels, grayscale), [PurePosixPath(filename).name]
    archive = _open_zip(data, filename)
    members = [m for m in _safe_members(archive, filename) if _is_picture(PurePosixPath(m.filename))]
    if not members:
        raise DataError(f"{filename}: no pictures found in the ZIP (.png, .jpg, .bmp, .gif, .tif or .webp).")
    pixels, _ = _decode_pictures([(m.filename, partial(archive.open, m)) for m in members], filename, size)
    return _pixels_as_input(pixels, grayscale), [m.filename for m in members]


def _check_finite(x: np.ndarray, filename: str, key: str) -> None:
    """No NaN, no infinity and nothing beyond float32 (training would turn them into NaN losses)."""
    if not np.issubdtype(x.dtype, np.floating):
        if np.issubdtype(x.dtype, np.integer) and x.size and np.abs(x).max() > F32_MAX:
            raise DataError(f"{filename}: array {key!r} holds numbers beyond what training can hold; rescale them.")
        return
    flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    bad = ~np.isfinite(flat) | (np.abs(np.nan_to_num(flat)) > F32_MAX)
    if not bad.any():
        return
    if np.isnan(flat).all():
        raise DataError(f"{filename}: array {key!r} holds no numbers (every value is NaN); save the real data.")
    rows = np.flatnonzero(bad.any(axis=1))
    shown = short_list([str(int(r)) for r in rows], 3)
    raise DataError(f"{filename}: array {key!r} has {int(bad.sum()):,} values that are missing (NaN), infinite or "
                    f"beyond float32 range, in sample{'s' if len(rows) > 1 else ''} {shown} (counting from 0); "
                    "replace them or remove those samples.")


def _as_images(x: np.ndarray, filename: str, key: str) -> np.ndarray:
    if x.dtype == bool:
        x = x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        kind = "text" if x.dtype.kind in "US" else f"values of type {x.dtype.name}"
        raise DataError(f"{filename}: array {key!r} holds {kind}, not numbers; save numeric arrays.")
    if len(x) == 0:
        raise DataError(f"{filename}: array {key!r} is empty; save at least a few samples per class.")
    _check_finite(x, filename, key)
    x = x.astype(np.float32)
    if x.ndim == 3:  # (N, H, W) grey
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # NHWC -> NCHW
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim == 2:
        return x
    elif x.ndim != 4:
        raise DataError(f"{filename}: array {key!r} has shape {x.shape}; expected (N, H, W), "
                        "(N, H, W, C), (N, C, H, W) or (N, features).")
    if x.max(initial=0) > 1.5:
        x = x / 255.0
    return np.ascontiguousarray(x)


def _label_array(y: np.ndarray, filename: str, key: str) -> np.ndarray:
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        rows = np.flatnonzero(~np.isfinite(y))
        raise DataError(f"{filename}: {key!r} has {len(rows):,} missing or infinite labels (sample "
                        f"{short_list([str(int(r)) for r in rows])}, counting from 0); remove those samples.")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{filename}: {key!r} holds values of type {y.dtype.name}; save labels as integers or text.")
    return y


def _open_npz(data: bytes, filename: str):
    """The archive, checked as every ZIP is (paths, sizes) and read without pickles."""
    archive = _open_zip(data, filename, "'.npz' file")
    _safe_members(archive, filename)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:  # a broken archive shows up as any of several reader errors
        raise DataError(f"{filename}: not a readable '.npz' file: it is damaged or incomplete; save it again "
                        "with numpy.savez.") from None


def load_npz(data: bytes, filename: str, *, merge_labels: bool | None = None) -> Dataset:
    """`x_train, y_train[, x_test, y_test]` (MedMNIST's `train_images`... accepted)."""
    npz = _open_npz(data, filename)
    arrays = {}
    with npz:
        for ours, aliases in NPZ_NAMES.items():
            key = next((a for a in aliases if a in npz.files), None)
            if key is None:
                continue
            try:
                arrays[ours] = (key, npz[key])
            except ValueError as exc:
                if "pickle" in str(exc):  # object arrays need unpickling, which could run code: refused
                    raise DataError(f"{filename}: array {key!r} holds Python objects, which are not loaded for "
                                    "safety; save plain number arrays (numpy.savez with int or float arrays)."
                                    ) from None
                raise DataError(f"{filename}: array {key!r} is damaged or incomplete; save the file again.") from None
            except Exception:  # truncated or corrupt member
                raise DataError(f"{filename}: array {key!r} is damaged or incomplete; save the file again.") from None
        found = ", ".join(repr(f) for f in npz.files[:6]) or "none"
    for need in ("x_train", "y_train"):
        if need not in arrays:
            raise DataError(f"{filename}: no {' or '.join(NPZ_NAMES[need])} array; found {found}.")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{filename}: has only one of x_test / y_test; include both or neither.")
    x = _as_images(arrays["x_train"][1], filename, arrays["x_train"][0])
    y_raw = _label_array(arrays["y_train"][1], filename, arrays["y_train"][0])
    if len(y_raw) != len(x):
        raise DataError(f"{filename}: {len(x)} training inputs but {len(y_raw)} labels.")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _as_images(arrays["x_test"][1], filename, arrays["x_test"][0])
        y_test_raw = _label_array(arrays["y_test"][1], filename, arrays["y_test"][0])
        if len(y_test_raw) != len(x_test):
            raise DataError(f"{filename}: {len(x_test)} test inputs but {len(y_test_raw)} labels.")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{filename}: test inputs have shape {x_test.shape[1:]}, training "
                            f"inputs {x.shape[1:]}; they must match.")
        train_part = np.arange(len(y_raw) + len(y_test_raw)) < len(y_raw)
        pooled, variants = merge_label_variants(np.concatenate([y_raw, y_test_raw]), merge_labels, filename, "labels")
        both, class_names = check_labels(pooled, filename, "labels", count_of=train_part)
        y, y_test = both[: len(y_raw)], both[len(y_raw):]
    else:
        y_raw, variants = merge_label_variants(y_raw, merge_labels, filename, "labels")
        y, class_names = check_labels(y_raw, filename, "labels")
    modality = "image" if x.ndim == 4 else "tabular"
    return Dataset(PurePosixPath(filename).stem, x, y, class_names, modality, x_test=x_test, y_test=y_test,
                   label_variants=variants)


def load_npz_inputs(data: bytes, filename: str, key: str = "x") -> np.ndarray:
    """The unlabelled inputs of an `.npz` (array `key`), checked and shaped as `load_npz`
    shapes training inputs: images (N, C, H, W) in [0, 1] or table rows (N, features)."""
    npz = _open_npz(data, filename)
    with npz:
        if key not in npz.files:
            found = ", ".join(repr(f) for f in npz.files[:6]) or "none"
            raise DataError(f"{filename}: no {key!r} array with the new cases; found {found}.")
        try:
            x = npz[key]
        except ValueError as exc:
            if "pickle" in str(exc):
                raise DataError(f"{filename}: array {key!r} holds Python objects, which are not loaded for safety; "
                                "save plain number arrays.") from None
            raise DataError(f"{filename}: array {key!r} is damaged or incomplete; save the file again.") from None
        except Exception:  # truncated or corrupt member
            raise DataError(f"{filename}: array {key!r} is damaged or incomplete; save the file again.") from None
    return _as_images(x, filename, key)


def load_upload(data: bytes, filename: str, label_column: str | None = None,
                roles: Mapping[str, str] | None = None, missing: str = "refuse", *,
                merge_labels: bool | None = None) -> Dataset:
    """Dispatch on the file's suffix; `roles` and `missing` apply to tables, `merge_labels`
    to every kind (labels spelled several ways: see `merge_label_variants`)."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return load_table(data, filename, label_column, roles, missing, merge_labels=merge_labels)
    if suffix == ".zip":
        return load_image_zip(data, filename, merge_labels=merge_labels)
    if suffix == ".npz":
        return load_npz(data, filename, merge_labels=merge_labels)
    raise DataError(f"{filename}: unsupported file type {suffix or '(none)'!r}; upload .csv, .parquet, "
                    ".zip (one folder per class) or .npz.")
