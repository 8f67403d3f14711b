"""A pixel bomb through the image loader and `tailscope train`: 12 stored PNGs of one colour,
10,000 x 10,000 pixels each (about 3.5 MB in all), refused from their headers before any
decode, against the same ZIP with the header check turned off (what every upload cost
before it existed). Each path runs in a fresh process so its peak memory (VmHWM) is its
own. Prints seconds and peak MB; asserts nothing.

    .venv/bin/python bench/pixel_bomb.py [--count 12] [--side 10000] [--unchecked]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

LOAD = """
import json, sys, time
from core.data import DataError, load_image_zip
if sys.argv[2] == "unchecked":
    import core.data._loaders as loaders
    loaders._check_pixel_budget = lambda pictures, filename: None
    loaders.MAX_IMAGE_PIXELS = 10**9
data = open(sys.argv[1], "rb").read()
def mb(field):
    return int(next(x for x in open("/proc/self/status") if x.startswith(field + ":")).split()[1]) / 1024
before, start = mb("VmRSS"), time.perf_counter()
try:
    load_image_zip(data, "scans.zip")
    outcome = "loaded"
except DataError as exc:
    outcome = "refused: " + str(exc)[:90]
print(json.dumps({"seconds": time.perf_counter() - start, "peak_mb": mb("VmHWM") - before, "outcome": outcome}))
"""


def _loader(path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, str(path), mode], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode:
        raise SystemExit(out.stderr)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["warnings"] = out.stderr.count("DecompressionBombWarning")
    return result


def _train(path: Path, home: str) -> dict:
    """`tailscope train` on a config naming the ZIP: refused before queueing, the upload removed."""
    config = Path(home) / "bomb.yaml"
    config.write_text(f"data: {{source: {path}}}\nmodel: {{name: small_cnn}}\ntrain: {{epochs: 1}}\n")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "core.cli", "train", str(config), "--no-worker"], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "TAILSCOPE_HOME": home})
    uploads = Path(home) / "uploads"
    return {"seconds": time.perf_counter() - start, "exit": out.returncode,
            "kept_uploads": len(list(uploads.iterdir())) if uploads.is_dir() else 0,
            "message": out.stderr.strip().splitlines()[-1][:120] if out.stderr.strip() else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--side", type=int, default=10_000)
    parser.add_argument("--unchecked", action="store_true", help="also load it with the header check turned off")
    args = parser.parse_args()
    from test_hostile_uploads import pixel_bomb_zip

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scans.zip"
        path.write_bytes(pixel_bomb_zip(args.count, args.side))
        print(f"{args.count} PNGs of {args.side:,} x {args.side:,} pixels, ZIP {path.stat().st_size / 1024**2:.1f} MB")
        checked = _loader(path, "checked")
        print(f"loader, header check:   {checked['seconds']:6.2f} s  peak +{checked['peak_mb']:5.0f} MB  "
              f"{checked['warnings']} warnings  {checked['outcome']}")
        if args.unchecked:
            unchecked = _loader(path, "unchecked")
            print(f"loader, no check:       {unchecked['seconds']:6.2f} s  peak +{unchecked['peak_mb']:5.0f} MB  "
                  f"{unchecked['warnings']} warnings  {unchecked['outcome']}")
        home = Path(folder) / "home"
        home.mkdir()
        train = _train(path, str(home))
        print(f"tailscope train:        {train['seconds']:6.2f} s (process, imports included)  exit {train['exit']}  "
              f"uploads kept {train['kept_uploads']}  {train['message']}")


if __name__ == "__main__":
    main()
