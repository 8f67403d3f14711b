"""Housekeeping: what is registered, stored uploads, and opening the app."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def cmd_methods(args: argparse.Namespace) -> int:
    from core.registry import listing as all_methods

    listing = all_methods()
    if args.json:
        print(json.dumps(listing, indent=1, default=str))
        return 0
    for kind, entries in listing.items():
        print(f"\n{kind}")
        for e in entries:
            params = ", ".join(f"{p['name']}={p['default']}" for p in e["params"])
            print(f"  {e['name']:<20} {e['description']}" + (f"  [{params}]" if params else ""))
            if e["paper"]:
                print(f"  {'':<20} {e['paper']}")
    return 0


def cmd_uploads(args: argparse.Namespace) -> int:
    from core.data import list_uploads, remove_upload, sources_of
    from core.store import RunStore, read_json

    store = RunStore()
    users: dict[str, list[str]] = {}
    for record in store.list_runs():
        for source in sources_of(record.config):
            users.setdefault(source, []).append(record.id)
    try:  # the Data page's saved choice counts as a user: removing it would break the page
        chosen = read_json(store.home / "ui" / "data_config.json").get("source")
    except (ValueError, OSError, AttributeError):
        chosen = None
    uploads = [{"source": u.source, "file": u.name, "bytes": u.size, "stored": u.modified,
                "runs": users.get(u.source, []), "data_page_choice": u.source == chosen} for u in list_uploads()]
    unused = [u for u in uploads if not u["runs"] and not u["data_page_choice"]]
    removed = [u["source"] for u in unused if remove_upload(u["source"])] if args.remove_unused else []
    if args.json:
        print(json.dumps({"uploads": uploads, "removed": removed}, indent=1))
        return 0
    if not uploads:
        print("no stored uploads")
        return 0
    print(f"{'stored file':<44} {'size':>9}  used by")
    for u in uploads:
        used = (", ".join(u["runs"][:3]) + (f" +{len(u['runs']) - 3} more" if len(u["runs"]) > 3 else "")
                if u["runs"] else "the Data page's choice" if u["data_page_choice"] else "nothing")
        gone = "  (removed)" if u["source"] in removed else ""
        print(f"{u['source'].removeprefix('upload:')[:44]:<44} {u['bytes'] / 1024**2:7.2f}MB  {used}{gone}")
    if args.remove_unused:
        print(f"removed {len(removed)} unused upload(s), {sum(u['bytes'] for u in unused) / 1024**2:.2f} MB",
              file=sys.stderr)
    elif unused:
        print(f"{len(unused)} upload(s) no run uses: `tailscope uploads --remove-unused` deletes them",
              file=sys.stderr)
    return 0


def cmd_app(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2]  # core/cli/ -> the repository root
    cmd = [sys.executable, "-m", "streamlit", "run", str(root / "app" / "main.py"),
           "--server.address", args.address, "--server.port", str(args.port)]
    return subprocess.call(cmd, cwd=root)


def add_methods(sub) -> None:
    p = sub.add_parser("methods", help="every registered dataset, model, loss, sampler, resampler, stage-2 and post-hoc method")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_methods)



def add_uploads(sub) -> None:
    p = sub.add_parser("uploads", help="stored uploads and the runs that use them (--remove-unused deletes the rest)")
    p.add_argument("--remove-unused", action="store_true", help="delete uploads that no run and no saved choice uses")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_uploads)



def add_app(sub) -> None:
    p = sub.add_parser("app", help="open the workbench in a browser")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(func=cmd_app)

