"""`tailscope label-issues`: training rows whose label is probably wrong."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli._common import fail, json_default, json_safe, multilabel_refusal


def cmd_label_issues(args: argparse.Namespace) -> int:
    """Suspected label issues of a run's training split (computed once, then read back)."""
    from core.analysis import label_issue_counts, label_issue_table, read_label_issues
    from core.config import RunConfig
    from core.jobs import compute_run_label_issues
    from core.store import RunFileDamaged, RunNotFound, RunStore
    from core.train import prepare_run_data

    store = RunStore()
    try:
        record = store.get(args.run)
        if why := multilabel_refusal(record.config, "label-issues"):
            return fail(why)
        report = None if args.recompute else read_label_issues(store, args.run)
        if report is None:
            print(f"finding label issues of {record.name or args.run} ({args.folds or 'default'} folds)…", file=sys.stderr)
            report = compute_run_label_issues(store, args.run, folds=args.folds)
    except (RunNotFound, RunFileDamaged, ValueError) as exc:
        return fail(str(exc))
    try:  # each training row named as the pages name it: its ID column's value, file name or row
        splits = prepare_run_data(RunConfig.model_validate(record.config))
    except (OSError, ValueError) as exc:  # the data is gone or changed: the rows keep their numbers
        print(f"the training rows are listed by number only ({exc})", file=sys.stderr)
        splits = None
    names = (store.metrics(args.run).get("dataset") or {}).get("class_names")
    id_name = getattr(splits, "id_name", None) or "row"
    ids = getattr(splits, "ids_train", None)
    table = label_issue_table(report, names, ids=ids, id_name=id_name)
    has_ids = id_name in table.columns
    counts = label_issue_counts(report, names)
    payload = {"run": args.run, "settings": report.settings, "computed": report.computed,
               "rows": len(report.given), "suspected": report.num_flagged, "detection": report.detection(),
               "per_class": counts.to_dict(orient="records"), "issues": table.to_dict(orient="records")}
    if args.json:
        print(json.dumps(json_safe(payload), indent=1, allow_nan=False, default=json_default))
        return 0
    print(f"{record.name}: {report.num_flagged} of {len(report.given)} training rows suspected "
          f"({report.settings.get('model')}, {report.settings.get('folds')} folds, {report.settings.get('filter_by')})")
    detection = report.detection()
    if detection and detection["precision"] is not None and detection["recall"] is not None:
        print(f"  against the injected noise ({detection['noisy_rows']} wrong labels): precision "
              f"{detection['precision']:.3f}, recall {detection['recall']:.3f} (random flags: precision "
              f"{detection['base_rate']:.3f})")
    for row in counts.itertuples(index=False):
        print(f"    {row[1]:<16} rows {row.rows:>6}  suspected {row.suspected:>5}  ({row.share:.0%})")
    width = max([len(id_name)] + [len(str(v)) for v in table[id_name].head(args.top)]) if has_ids else 0
    if has_ids and not table.empty:
        print(f"  {'training row':>12}  {id_name:<{width}}  given / suggested / score")
    for row in table.head(args.top).to_dict(orient="records"):
        case = f"  {row[id_name]!s:<{width}}" if has_ids else ""
        print(f"  row {row['train_row']:>8}{case}  given {row['given']:<12} suggested {row['suggested']:<12} "
              f"score {row['score']:.3f}")
    return 0


def add_label_issues(sub) -> None:
    p = sub.add_parser("label-issues", help="training rows whose label is probably wrong (confident learning on "
                                            "out-of-fold predictions), computed once and kept with the run")
    p.add_argument("run")
    p.add_argument("--folds", type=int, default=None, help="folds of the training split (default: 5)")
    p.add_argument("--top", type=int, default=20, help="how many suspected rows to print, least likely label first")
    p.add_argument("--recompute", action="store_true", help="compute again even when saved")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_label_issues)

