"""`tailscope`: the command line over the same API the pages use.

This module is the wiring only: the parser lists every command in help order, each added by
the module of its group, and `main` runs the chosen one. The groups import nothing heavy at
the top, so `tailscope runs` starts without torch."""

from __future__ import annotations

import argparse

from core.cli import _explain, _label_issues, _lessons, _maintenance, _predict, _robustness, _runs, _sweeps, _train
from core.cli._common import fail

__all__ = ["build_parser", "main"]

_COMMANDS = (  # (adds one sub-command) in the order `tailscope --help` lists them
    _train.add_train, _runs.add_runs, _runs.add_compare, _runs.add_show,
    _sweeps.add_sweep, _sweeps.add_sweep_resume, _sweeps.add_sweep_show, _train.add_worker,
    _maintenance.add_methods, _explain.add_explain, _robustness.add_robustness, _maintenance.add_uploads,
    _predict.add_predict,
    _label_issues.add_label_issues, _lessons.add_lesson, _maintenance.add_app,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailscope", description="Explore what class imbalance does to a classifier.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import signal

    if hasattr(signal, "SIGPIPE"):  # `tailscope runs --json | head` ends quietly, as other Unix tools do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception:  # last resort: one line here, the traceback in a log file
        import traceback

        from core.paths import tailscope_home

        log = tailscope_home() / "cli-errors.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:
                out.write(traceback.format_exc() + "\n")
            where = f"; the details are in {log.name} in the data folder"
        except OSError:
            where = ""
        return fail(f"something went wrong that was not expected{where}. Please report it with the command you "
                "ran.", 1)
