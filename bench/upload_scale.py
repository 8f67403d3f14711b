"""Uploads at scale: a 200,000-row x 60-column CSV and a ZIP of 20,000 small images, from the
bytes to splits that are ready to train, against plain `pandas.read_csv` of the same file.

The table has an ID column, 52 numeric columns (about 1 % of their cells empty), six
category columns (some empty), and a six-class label from 40 % down to 1 %. Each path runs
in a fresh process so its peak RSS is its own. Steps of the table path (the Data page's
work): store the upload, parse it once, profile the columns (roles, gaps, label guess),
build features with gaps filled, and split (fill from the training split, standardise).
Prints seconds, peak RSS and the ratio to pandas; asserts nothing.

    .venv/bin/python bench/upload_scale.py [--rows 200000] [--images 20000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["common", "frequent", "usual", "uncommon", "scarce", "rare"]
SHARES = [0.40, 0.25, 0.17, 0.10, 0.07, 0.01]


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """ID, 52 numbers with ~1 % gaps, 6 categories (some gaps), a label: 60 columns."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = rng.choice(len(CLASSES), size=rows, p=SHARES)
    cols: dict[str, object] = {"patient_id": [f"P{i:07d}" for i in range(rows)]}
    for j in range(52):
        v = rng.normal(100 + 5 * y * (j % 4), 20, size=rows).round(2)
        v[rng.random(rows) < 0.01] = np.nan
        cols[f"lab_{j:02d}"] = v
    for j in range(6):
        levels = np.array([f"level{k}" for k in range(3 + 2 * j)], dtype=object)
        v = levels[rng.integers(0, len(levels), size=rows)]
        v[rng.random(rows) < 0.005] = None
        cols[f"group_{j}"] = v
    cols["diagnosis"] = np.array(CLASSES, dtype=object)[y]
    pd.DataFrame(cols).to_csv(path, index=False)


def write_zip(path: Path, images: int, size: int = 28, seed: int = 0) -> None:
    """`images` small PNGs in 10 class folders, from 30 % of the images down to 2 %."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    shares = np.array([30, 20, 13, 10, 8, 6, 5, 4, 2, 2], dtype=float)
    y = rng.choice(10, size=images, p=shares / shares.sum())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i, cls in enumerate(y):
            pixels = (rng.random((size, size)) * 60 + cls * 19).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels, "L").save(buf, format="PNG")
            archive.writestr(f"scans/class_{cls}/{i:06d}.png", buf.getvalue())


# --- one measured path per process ---------------------------------------------------------

def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_pandas(path: Path) -> dict:
    import pandas as pd

    t = time.perf_counter()
    frame = pd.read_csv(path)
    return {"seconds": time.perf_counter() - t, "peak_mb": _peak_mb(), "shape": list(frame.shape)}


def stage_table(path: Path) -> dict:
    from core.config import DataConfig
    from core.data import profile_table, read_stored_table, save_upload, split_data
    from core.data._prepare import load_data

    steps = {}
    t0 = t = time.perf_counter()
    source = save_upload(path.read_bytes(), path.name)
    steps["store"], t = time.perf_counter() - t, time.perf_counter()
    raw = read_stored_table(source)
    steps["parse"], t = time.perf_counter() - t, time.perf_counter()
    profile = profile_table(raw.frame, raw.filename, first_row=raw.first_row, notes=raw.notes)
    preview = raw.frame.head(100)
    steps["profile+preview"], t = time.perf_counter() - t, time.perf_counter()
    config = DataConfig(source=source, label_column=profile.label, missing="fill")
    dataset = load_data(config, raw)
    steps["features"], t = time.perf_counter() - t, time.perf_counter()
    splits = split_data(dataset, config)
    steps["split"] = time.perf_counter() - t
    return {"seconds": time.perf_counter() - t0, "steps": steps, "peak_mb": _peak_mb(),
            "label": profile.label, "roles": {r: sum(c.role == r for c in profile.columns)
                                              for r in {c.role for c in profile.columns}},
            "gap_cells": profile.gap_cells, "features": dataset.x.shape[1], "train_rows": len(splits.y_train),
            "preview_rows": len(preview), "finite": bool(np.isfinite(splits.x_train).all())}


def stage_zip(path: Path) -> dict:
    from core.config import DataConfig
    from core.data import save_upload, split_data
    from core.data._prepare import load_data

    t = time.perf_counter()
    source = save_upload(path.read_bytes(), path.name)
    config = DataConfig(source=source)
    dataset = load_data(config)
    loaded = time.perf_counter() - t
    splits = split_data(dataset, config)
    return {"seconds": time.perf_counter() - t, "load_seconds": loaded, "peak_mb": _peak_mb(),
            "shape": list(dataset.x.shape), "classes": dataset.num_classes, "train_rows": len(splits.y_train)}


def _run(stage: str, path: Path, home: Path) -> dict:
    env = {**os.environ, "TAILSCOPE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, __file__, "--stage", stage, str(path)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--keep", default=None, help="write the generated files here instead of a temp folder")
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps({"pandas": stage_pandas, "table": stage_table, "zip": stage_zip}[args.stage](Path(args.path))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        table, archive = folder / "patients-200k.csv", folder / "scans-20k.zip"
        t = time.perf_counter()
        write_table(table, args.rows)
        write_zip(archive, args.images)
        print(f"generated {table.name} ({table.stat().st_size / 1e6:.0f} MB) and {archive.name} "
              f"({archive.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
        base = _run("pandas", table, Path(tmp) / "home-a")
        ours = _run("table", table, Path(tmp) / "home-b")
        print(f"\n{args.rows:,} x 60 CSV, {ours['gap_cells']:,} empty cells; label guessed: {ours['label']}; "
              f"roles {ours['roles']}; {ours['features']} features; {ours['train_rows']:,} training rows; "
              f"all finite: {ours['finite']}")
        print(f"  pandas.read_csv alone        {base['seconds']:6.2f} s   peak RSS {base['peak_mb']:6.0f} MB")
        print(f"  upload -> ready to train     {ours['seconds']:6.2f} s   peak RSS {ours['peak_mb']:6.0f} MB   "
              f"({ours['seconds'] / base['seconds']:.1f}x read_csv)")
        for step, seconds in ours["steps"].items():
            print(f"    {step:<26} {seconds:6.2f} s")
        images = _run("zip", archive, Path(tmp) / "home-c")
        print(f"\n{args.images:,} images in a ZIP -> {images['shape']} ({images['classes']} classes)")
        print(f"  upload -> ready to train     {images['seconds']:6.2f} s   peak RSS {images['peak_mb']:6.0f} MB   "
              f"(decoding {images['load_seconds']:.2f} s)")


if __name__ == "__main__":
    main()
