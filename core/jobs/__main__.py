"""`python -m core.jobs worker --home DIR`: the background worker the app starts;
`python -m core.jobs drive SWEEP --home DIR`: a sweep's driver, started in the background
by the app and by `tailscope sweep`. Jobs never climb back up into the command line."""

from __future__ import annotations

import argparse
import logging
import sys

from core.store import RunStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.jobs")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="train queued single runs until idle")
    worker.add_argument("--home", required=True)
    worker.add_argument("--idle-exit", type=float, default=600.0)
    drive = sub.add_parser("drive", help="train a sweep's queued runs through an executor")
    drive.add_argument("sweep")
    drive.add_argument("--home", required=True)
    drive.add_argument("--backend", default="local")
    drive.add_argument("--workers", type=int, default=None)
    drive.add_argument("--ray-address", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = RunStore(args.home)
    if args.command == "worker":
        from core.jobs._worker import worker_loop

        worker_loop(store, idle_exit_s=args.idle_exit)
        return 0
    from core.jobs._sweeps import drive_sweep

    return drive_sweep(store, args.sweep, args.backend, args.workers, args.ray_address)


if __name__ == "__main__":
    sys.exit(main())
