"""`python -m core.jobs --home DIR`: the background worker the app starts."""

from __future__ import annotations

import argparse
import logging

from core.jobs._worker import worker_loop
from core.store import RunStore

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m core.jobs")
    parser.add_argument("--home", required=True)
    parser.add_argument("--idle-exit", type=float, default=600.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker_loop(RunStore(args.home), idle_exit_s=args.idle_exit)
