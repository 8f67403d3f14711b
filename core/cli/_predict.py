"""`tailscope predict`: score unlabelled new cases and estimate their class mix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli._common import fail, json_safe


def _predict_multilabel(args: argparse.Namespace, filename: str, data: bytes) -> int:
    """Per finding: each case's probability and decision at the run's tuned threshold."""
    from core.predict import predict_multilabel_cases
    from core.store import RunStore

    cases = predict_multilabel_cases(RunStore(), args.run, filename, data)
    if args.out:
        try:
            Path(args.out).write_bytes(cases.to_csv())
        except OSError as exc:
            return fail(f"{args.out}: cannot be written ({exc.strerror or exc}).")
    findings = [{"label": name, "threshold": float(t), "predicted_present": int(cases.decisions[:, j].sum()),
                 "mean_probability": float(cases.probs[:, j].mean())}
                for j, (name, t) in enumerate(zip(cases.label_names, cases.thresholds))]
    if args.json:
        rows = [{"case": case, "probabilities": dict(zip(cases.label_names, map(float, p))),
                 "decisions": dict(zip(cases.label_names, map(int, d)))}
                for case, p, d in zip(cases.frame[cases.id_name], cases.probs, cases.decisions)]
        print(json.dumps(json_safe({"run": args.run, "file": filename, "cases": len(rows), "multilabel": True,
                                    "decision": "per-finding thresholds tuned on the run's validation cases",
                                    "findings": findings, "predictions": rows, "warnings": cases.warnings,
                                    "csv": args.out}), indent=1, allow_nan=False))
        return 0
    print(f"{len(cases.frame):,} new cases from {filename}; each finding decided at the run's own threshold "
          "(tuned on its validation cases)")
    width = max([len("finding"), *(len(n) for n in cases.label_names)])
    print(f"  {'finding':<{width}}  {'threshold':>9}  {'present':>7}  {'mean p':>6}")
    for row in findings:
        print(f"  {row['label']:<{width}}  {row['threshold']:>9.3f}  {row['predicted_present']:>7}  "
              f"{row['mean_probability']:>6.3f}")
    for warning in cases.warnings:
        print(f"  note: {warning}")
    if args.out:
        print(f"predictions written to {args.out}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core.config import is_multilabel_data
    from core.data import DataError
    from core.store import RunFileDamaged, RunNotFound, RunStore

    data_path = Path(args.file)
    try:
        data = data_path.read_bytes()
    except OSError as exc:
        return fail(f"{args.file}: cannot be read ({exc.strerror or exc}).")
    from core.predict import predict_new_cases

    try:
        if is_multilabel_data(RunStore().get(args.run).config.get("data") or {}):
            return _predict_multilabel(args, data_path.name, data)
        cases = predict_new_cases(RunStore(), args.run, data_path.name, data)
    except (DataError, RunNotFound, RunFileDamaged, FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    if args.out:
        try:
            Path(args.out).write_bytes(cases.to_csv())
        except OSError as exc:
            return fail(f"{args.out}: cannot be written ({exc.strerror or exc}).")
    from core.analysis import ESTIMATOR_LABELS, ESTIMATORS

    table = cases.prior_table()
    first, second = cases.estimator, cases.second_estimator
    if args.json:
        payload = {
            "run": args.run, "file": data_path.name, "cases": len(cases.frame), "temperature": cases.temperature,
            "calibration": {"method": "bias-corrected temperature scaling", "temperature": cases.temperature,
                            "bias": [float(v) for v in cases.bias], "cases": cases.reference_cases,
                            "splits": cases.reference_splits},
            "estimator": {"name": first, "label": ESTIMATOR_LABELS[first], "description": ESTIMATORS[first]},
            "second_estimator": {"name": second, "label": ESTIMATOR_LABELS[second],
                                 "description": ESTIMATORS[second]},
            "confidence": cases.prior.get("confidence"), "operating_point": cases.operating_point or None,
            "classes": table.to_dict(orient="records"), "warnings": cases.warnings, "csv": args.out,
        }
        print(json.dumps(json_safe(payload), indent=1, allow_nan=False))
        return 0
    level = cases.prior.get("confidence", 0.95)
    print(f"{len(cases.frame):,} new cases from {data_path.name}; probabilities calibrated on the run's "
          f"{cases.reference_cases:,} {cases.reference_splits} cases (bias-corrected temperature scaling, "
          f"temperature {cases.temperature:.3g})")
    print(f"class mix estimated by {ESTIMATORS[first]}; {ESTIMATOR_LABELS[second]} beside it as a check")
    width = max([len("class"), *(len(c) for c in table["class"])])
    interval_head = f"{level:.0%} interval"
    print(f"  {'class':<{width}}  {'trained':>7}  {'estimated prior':>15}  {interval_head:>17}"
          f"  {ESTIMATOR_LABELS[second]:>8}  {'predicted':>9}  {'at prior':>8}")
    for row in table.to_dict(orient="records"):
        interval = f"[{row['low']:.3f}, {row['high']:.3f}]"
        print(f"  {row['class']:<{width}}  {row['training prior']:>7.3f}  {row['estimated prior']:>15.3f}  "
              f"{interval:>17}  {row['second estimate']:>8.3f}  {row['predicted']:>9}  "
              f"{row['predicted at estimated prior']:>8}")
    for row in table.to_dict(orient="records"):
        if row["note"]:
            print(f"  note: {row['class']}: {row['note']}")
    for warning in cases.warnings:
        print(f"  note: {warning}")
    if args.out:
        print(f"predictions written to {args.out}")
    return 0


def add_predict(sub) -> None:
    p = sub.add_parser("predict", help="score unlabelled new cases with a run: predictions, calibrated "
                                       "probabilities and the batch's class prior (EM after bias-corrected "
                                       "temperature scaling, BBSE beside it)")
    p.add_argument("run")
    p.add_argument("file", help="a table with the run's feature columns, pictures (.zip or one), or .npz with 'x'")
    p.add_argument("--out", default=None, help="write every case's predictions and probabilities to this CSV")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

