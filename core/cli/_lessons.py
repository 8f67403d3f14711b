"""`tailscope lesson`: published claims about imbalance, tested on real runs."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from core.cli._common import fail, json_safe


def cmd_lesson(args: argparse.Namespace) -> int:
    """A published claim tested on real runs: list the lessons, run one (--prerun), show its verdict."""
    import time

    from core.jobs import LocalExecutor
    from core.lessons import create_lesson, lesson_json, lesson_state, lesson_verdict, list_lessons, run_lesson
    from core.registry import UnknownPluginError
    from core.store import RunStore

    store = RunStore()
    store.reap_dead()
    names = [args.name] if args.name else list_lessons()
    data = None
    if args.data_from:  # the data of a run on an upload (its label and stage order as that run read them)
        from core.store import RunNotFound

        if not args.name:
            return fail("--data-from needs a lesson NAME")
        try:
            data = store.get(args.data_from).config["data"]
        except RunNotFound as exc:
            return fail(str(exc))
    try:
        lessons = [create_lesson(name, args.size, data) for name in names]
    except UnknownPluginError as exc:
        return fail(str(exc))
    except ValueError as exc:
        return fail(f"{args.name} cannot use the data of run {args.data_from}: {exc}")
    if not args.name and not args.prerun:
        listing = [{**lesson_json(lesson), "state": lesson_state(store, lesson)} for lesson in lessons]
        if args.json:
            print(json.dumps(json_safe([{k: v for k, v in e.items() if k != "sweep"} for e in listing]), indent=1))
            return 0
        for e in listing:
            state = e["state"]
            print(f"{e['name']:<22} {state['status']:<9} {state['done']:>3}/{state['total']:<3} {e['display']}")
        print("`tailscope lesson NAME` shows one; `--prerun` trains it before class", file=sys.stderr)
        return 0
    payload, failed = [], 0
    for lesson in lessons:
        seconds = None
        if args.prerun:
            started = time.perf_counter()
            try:
                counts = run_lesson(store, lesson, LocalExecutor(args.workers),
                                    echo=lambda line: print(line, file=sys.stderr))
            except KeyboardInterrupt:
                return fail(f"stopped; `tailscope lesson {lesson.name} --prerun` resumes it", 130)
            except ValueError as exc:
                return fail(f"{lesson.name}: {exc}")
            seconds = time.perf_counter() - started
            failed += counts["failed"]
        state = lesson_state(store, lesson)
        verdict = lesson_verdict(store, lesson) if state["done"] else None
        payload.append({"lesson": {k: v for k, v in lesson_json(lesson).items() if k != "sweep"}, "state": state,
                        "seconds": seconds, "verdict": None if verdict is None else verdict.to_dict()})
        if not args.json:
            _print_lesson(lesson, state, verdict, seconds)
    if args.json:
        print(json.dumps(json_safe(payload if len(payload) > 1 else payload[0]), indent=1, allow_nan=False))
    return 1 if failed else 0


def _print_lesson(lesson, state: dict[str, Any], verdict, seconds: float | None) -> None:
    print(f"{lesson.display}  [{state['status']}, {state['done']}/{state['total']} runs]"
          + (f"  trained in {seconds:.0f} s" if seconds is not None else ""))
    print(f"  claim: {lesson.claim}")
    print(f"  paper: {lesson.paper}")
    print(f"  set-up: {lesson.setup}")
    if verdict is None:
        print(f"  not run yet: `tailscope lesson {lesson.name} --prerun` trains its {state['total']} runs")
    else:
        for finding in verdict.findings:
            p = f", p = {finding.p_value:.2g}" if math.isfinite(finding.p_value) else ""
            if finding.p_adjusted is not None and finding.comparison.adjustment:
                p += f", {finding.comparison.adjustment}: adjusted p = {finding.p_adjusted:.2g}"
            print(f"  {finding.label} ({finding.measure}): {finding.text}  (n {finding.n}{p})")
        print(f"  {verdict.caption}")
    for n, question in enumerate(lesson.questions, 1):
        print(f"  Q{n}. {question}")
    print(f"  on a GPU: {lesson.gpu_note}")


def add_lesson(sub) -> None:
    p = sub.add_parser("lesson", help="a published claim about imbalance, tested on real runs (no NAME: list them)")
    p.add_argument("name", nargs="?", help="the lesson (no name: list them; with --prerun: train them all)")
    p.add_argument("--prerun", action="store_true", help="train it now (resuming), so it opens at once in class")
    p.add_argument("--size", choices=("full", "tiny"), default="full",
                   help="full: the class-ready lesson (under a minute on two idle cores); tiny: 2 seeds, 2 epochs, "
                        "a first look")
    p.add_argument("--workers", type=int, default=None, help="processes for --prerun (default: one per core)")
    p.add_argument("--data-from", metavar="RUN", default=None,
                   help="run the lesson on the data of this run (an upload whose label is marked as ordered stages, "
                        "for rare_last_stage) instead of its built-in set")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lesson)

