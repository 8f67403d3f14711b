"""Text: word counts (TF-IDF) against MiniLM sentence embeddings, and CE against balanced
softmax, the self-adjusting Dice loss and cRT, on two long-tailed text sets, 3 seeds.

Sets: the built-in synthetic clinic notes (8 diagnoses, 1,200 notes of the most common,
training split made long-tailed with ratio 30) and support messages this bench generates
(10 intents with shared words, written to a CSV and uploaded as a person would, the
training split made long-tailed with ratio 50). Every run: a linear model (softmax
regression) on the encoded text, 30 epochs of AdamW; cRT re-trains its classifier with
class-balanced sampling for 10 more.

Prints, per set, encoder and method: balanced accuracy and the F1 of the rarest training
class (mean and 95 % t-interval over seeds), and the paired difference to CE on the same
seeds and splits (t-interval; with 3 seeds no paired test reaches p < 0.05, so read the
interval: one that excludes 0 is a clear effect); then MiniLM minus word counts for each
method on the same seeds and splits. Then MiniLM's encoding speed on this
machine's CPU, texts per second, with an empty cache and with the cache filled.

With `--tuned`: on the synthetic notes only, MiniLM fine-tuned on each run's training labels
(`minilm_tuned`, its defaults: top 2 layers, 2 passes) against the frozen MiniLM, for CE and
balanced softmax, the paired difference over the same seeds and splits as the Compare page reads
it (the exact sign-flip test: interval, p, and the verdict after Holm's adjustment over the four
comparisons shown), and the median
seconds a run takes, frozen and tuned (CE's tuned runs tune; balanced softmax's read the same
seed's tuning back, as any run over the same texts and labels does); then the seconds one
tuning pass over 1,000 notes takes on this machine.
Usage: python bench/text_effect.py [--seeds 0 1 2] [--epochs 30] [--json] [--tuned]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SUPPORT_INTENTS = {
    "where is my order": ("parcel", "tracking", "not arrived", "delivery", "courier", "still waiting"),
    "refund": ("money back", "refund", "charged", "return", "reimburse", "payment"),
    "cancel order": ("cancel", "changed my mind", "stop the order", "do not send", "cancel it", "before shipping"),
    "change address": ("new address", "moved", "wrong address", "update address", "ship to", "street"),
    "password reset": ("password", "reset link", "forgot", "log in", "locked out", "email code"),
    "damaged item": ("broken", "cracked", "damaged", "arrived smashed", "scratches", "photo attached"),
    "invoice copy": ("invoice", "receipt", "vat", "pdf", "company name", "for my accounts"),
    "gift card": ("gift card", "voucher", "balance", "redeem", "code", "present"),
    "data deletion": ("delete my data", "privacy", "gdpr", "remove my account", "personal data", "erase"),
    "legal threat": ("lawyer", "court", "legal action", "solicitor", "sue", "formal complaint"),
}
SHARED = ("hello", "please", "order", "thanks", "asap", "account", "today", "urgent", "again", "help")


def support_csv(path: str, seed: int = 0, most_common: int = 1500, ratio: float = 10.0) -> str:
    """Support messages, one intent each, most common first (an exponential tail of `ratio`),
    each borrowing words of the next intent a third of the time; saved as CSV."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = list(SUPPORT_INTENTS)
    rows = []
    for i, intent in enumerate(names):
        n = max(int(most_common * ratio ** (-i / (len(names) - 1))), 10)
        own, other = SUPPORT_INTENTS[intent], SUPPORT_INTENTS[names[(i + 1) % len(names)]]
        for _ in range(n):
            words = [(other if rng.random() < 0.3 else own)[int(rng.integers(6))] for _ in range(int(rng.integers(2, 4)))]
            words += list(rng.choice(SHARED, size=int(rng.integers(2, 4)), replace=False))
            rng.shuffle(words)
            rows.append({"message": " ".join(words).capitalize() + rng.choice([".", "!", "?", " ..."]),
                         "intent": intent})
    pd.DataFrame(rows).sample(frac=1, random_state=seed).to_csv(path, index=False)
    return path


METHODS = {"CE": {}, "balanced softmax": {"loss": {"name": "balanced_softmax"}},
           "Dice": {"loss": {"name": "dice"}}, "cRT": {"stage2": {"name": "crt", "epochs": 10}}}


def sets(upload_source: str) -> dict[str, dict]:
    return {
        "synthetic notes": {"source": "synthetic_notes", "params": {"most_common": 1200, "ratio": 8, "num_classes": 8},
                            "imbalance": {"profile": "exp", "ratio": 30}},
        "support messages": {"source": upload_source, "label_column": "intent",
                             "imbalance": {"profile": "exp", "ratio": 50}},
    }


def run_one(data: dict, encoder: str, method: dict, seed: int, epochs: int) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    from core.config import RunConfig
    from core.train import train_run

    tuning = {"seed": seed} if encoder == "minilm_tuned" else {}  # tuning is training: seeded like it
    raw = {"data": {**data, "seed": seed, "text_encoder": {"name": encoder, **tuning}}, "model": {"name": "linear"},
           "train": {"seed": seed, "epochs": epochs, "optimizer": "adamw", "lr": 0.05, "batch_size": 64,
                     "nc_every": 0}, **method}
    a = train_run(RunConfig.model_validate(raw)).artifacts
    pred, rare = a.logits.argmax(axis=1), int(np.argmin(a.class_counts))
    return {"balanced_accuracy": float(balanced_accuracy_score(a.labels, pred)),
            "rare_f1": float(f1_score(a.labels == rare, pred == rare, zero_division=0.0))}


def interval(values: list[float], bounds: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Mean and 95 % t-interval, cut at what the measure can take."""
    from core.analysis import t_interval

    out = t_interval(values, bounds=bounds)
    return {"mean": out["mean"], "low": out["ci"][0], "high": out["ci"][1]}


def _cell(row: dict, signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{row['mean']:{f}} [{row['low']:{f}}, {row['high']:{f}}]"


def encoding_speed(texts: list[str]) -> dict[str, float]:
    """MiniLM texts per second on the CPU: a fresh cache (model already loaded), then again."""
    from core.data import create_text_encoder
    from core.data._sentence_encoder import _load

    home = tempfile.mkdtemp()
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = home
    try:
        _load("cpu")
        speeds = {}
        for label in ("empty cache", "cache filled"):
            start = time.perf_counter()
            create_text_encoder("minilm").transform(texts)
            speeds[label] = len(texts) / (time.perf_counter() - start)
        return speeds
    finally:
        os.environ.pop("TAILSCOPE_HOME") if previous is None else os.environ.update(TAILSCOPE_HOME=previous)
        shutil.rmtree(home, ignore_errors=True)


def tuned_against_frozen(seeds: list[int], epochs: int) -> None:
    """Fine-tuned MiniLM minus frozen MiniLM on the synthetic notes, same seeds and splits."""
    data = sets("")["synthetic notes"]
    keys = ("balanced_accuracy", "rare_f1")
    print(f"{len(seeds)} seeds, {epochs} epochs, linear model, synthetic notes; frozen: mean [95 % t-interval]; "
          "tuned minus frozen: mean [interval of the exact sign-flip test at the family's level], p, "
          "Holm-adjusted p over the four comparisons and the verdict")
    print("| method | frozen balanced accuracy | tuned minus frozen: balanced accuracy | rare-class F1 |"
          " median seconds a run, frozen / tuned |")
    print("|---|---|---|---|---|")
    rows = []
    for m in ("CE", "balanced softmax"):
        scores, seconds = {}, {}
        for encoder in ("minilm", "minilm_tuned"):
            runs = []
            for seed in seeds:
                start = time.perf_counter()
                runs.append(run_one(data, encoder, METHODS[m], seed, epochs))
                seconds.setdefault(encoder, []).append(time.perf_counter() - start)
            scores[encoder] = runs
        rows.append((m, interval([r["balanced_accuracy"] for r in scores["minilm"]]),
                     {k: paired([t[k] - f[k] for t, f in zip(scores["minilm_tuned"], scores["minilm"])]) for k in keys},
                     f"{np.median(seconds['minilm']):.0f} / {np.median(seconds['minilm_tuned']):.0f}"))
    from core.analysis import adjust_family

    family = adjust_family([c for _, _, by_key, _ in rows for c in by_key.values()], "holm")  # all looked at at once
    for (m, frozen, by_key, seconds_text), words in zip(rows, np.array_split(np.array(family, dtype=object), len(rows))):
        cells = " | ".join(_verdict_cell(c) for c in words)
        print(f"| {m} | {_cell(frozen)} | {cells} | {seconds_text} |")
    print(f"Tuning speed on this machine ({torch_threads()} threads): {tuning_seconds():.0f} s per 1,000 notes and "
          "pass (the Data page quotes core.data.TUNING_SECONDS_PER_1000_CPU where there is no GPU)")


def paired(differences: list[float]):
    """The comparison as the workbench's Compare page makes it: the exact sign-flip test over
    the seeds (`core.analysis.sign_flip_test`), its words read by `decide`."""
    from core.analysis import decide, sign_flip_test

    return decide(sign_flip_test(differences, bounds=(-1.0, 1.0)), "balanced_accuracy", higher_is_better=True)


def _verdict_cell(c) -> str:
    low, high = c.ci
    holm = f", Holm {c.p_adjusted:.3f}" if c.p_adjusted is not None else ""
    return f"{c.difference:+.3f} [{low:+.3f}, {high:+.3f}], p = {c.p_value:.3f}{holm}: {c.status}"


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def tuning_seconds() -> float:
    """Seconds for one tuning pass over 1,000 synthetic notes (model loaded, nothing kept)."""
    from core.data import create_text_encoder, load_builtin
    from core.data._sentence_encoder import _load

    ds = load_builtin("synthetic_notes", {"most_common": 1200, "ratio": 8, "num_classes": 8})
    _load("cpu")
    encoder = create_text_encoder("minilm_tuned", {"epochs": 1})
    encoder.tuned_file = lambda *a: Path(tempfile.mkdtemp()) / "not-kept.safetensors"  # always tune
    start = time.perf_counter()
    encoder.fit(ds.texts[:1000, 0].tolist(), ds.y[:1000])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tuned", action="store_true", help="fine-tuned against frozen MiniLM (synthetic notes)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # tiny models: one thread is fastest, the more so on a shared machine
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    home = tempfile.mkdtemp(prefix="text-bench-")
    os.environ["TAILSCOPE_HOME"] = home
    if args.tuned:
        torch.set_num_threads(os.cpu_count() or 1)  # tuning a transformer: every core, as the worker does
        tuned_against_frozen(args.seeds, args.epochs)
        shutil.rmtree(home, ignore_errors=True)
        return
    from core.data import load_builtin, save_upload

    csv = support_csv(os.path.join(home, "support_messages.csv"))
    with open(csv, "rb") as f:
        source = save_upload(f.read(), "support_messages.csv")
    results: dict = {}
    encoders: dict = {}
    started = time.time()
    keys = ("balanced_accuracy", "rare_f1")
    for set_name, data in sets(source).items():
        scores = {}
        for encoder in ("tfidf", "minilm"):
            scores[encoder] = {m: [run_one(data, encoder, spec, s, args.epochs) for s in args.seeds]
                               for m, spec in METHODS.items()}
            for m, runs in scores[encoder].items():
                row = {k: interval([r[k] for r in runs]) for k in keys}
                for k in keys:
                    row[f"{k} vs CE"] = interval([r[k] - c[k] for r, c in zip(runs, scores[encoder]["CE"])], (-1, 1))
                results.setdefault(set_name, {}).setdefault(encoder, {})[m] = row
        for m in METHODS:  # the same method, seeds and splits: MiniLM minus word counts
            pairs = list(zip(scores["minilm"][m], scores["tfidf"][m]))
            encoders.setdefault(set_name, {})[m] = {k: interval([a[k] - b[k] for a, b in pairs], (-1, 1)) for k in keys}
    notes = load_builtin("synthetic_notes", {"most_common": 1200, "ratio": 8, "num_classes": 8}).texts[:, 0].tolist()
    speed = encoding_speed(notes[:1000])
    if args.json:
        print(json.dumps({"results": results, "minilm_minus_tfidf": encoders, "speed": speed,
                          "seconds": time.time() - started}, indent=2))
        return
    print(f"{len(args.seeds)} seeds, {args.epochs} epochs, linear model; mean [95 % t-interval]")
    print("| set | encoder | method | balanced accuracy | rare-class F1 | rare F1 minus CE |")
    print("|---|---|---|---|---|---|")
    for set_name, by_encoder in results.items():
        for encoder, by_method in by_encoder.items():
            for m, row in by_method.items():
                diff = "" if m == "CE" else _cell(row["rare_f1 vs CE"], signed=True)
                words = "TF-IDF" if encoder == "tfidf" else "MiniLM"
                print(f"| {set_name} | {words} | {m} | {_cell(row['balanced_accuracy'])} | {_cell(row['rare_f1'])} "
                      f"| {diff} |")
    print("\nMiniLM minus TF-IDF, same method, seeds and splits")
    print("| set | method | balanced accuracy | rare-class F1 |")
    print("|---|---|---|---|")
    for set_name, by_method in encoders.items():
        for m, row in by_method.items():
            print(f"| {set_name} | {m} | {_cell(row['balanced_accuracy'], True)} | {_cell(row['rare_f1'], True)} |")
    print(f"MiniLM encoding on this CPU, 1,000 notes: {speed['empty cache']:.0f} texts/s with an empty cache, "
          f"{speed['cache filled']:,.0f} texts/s from the cache; {time.time() - started:.0f} s in all")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
