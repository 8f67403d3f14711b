"""A built-in text set generated offline: short synthetic clinic notes with a long tail of
diagnoses whose words overlap, for demos and tests of the text path.

Nothing here is real patient data: every note is put together from word lists by a seeded
generator, and the set says so in its name. Each diagnosis has its own telling words, but
a note also borrows words of a neighbouring diagnosis and of a shared pool (fever, pain,
tired), so classes overlap as real notes do and the rare ones are hard.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from core.data._builtins import DATASETS
from core.data._dataset import Dataset, as_texts
from core.registry import Params, Seed

__all__ = ["synthetic_notes", "NOTE_CLASSES"]

# diagnosis -> its telling words, most common diagnosis first
NOTE_CLASSES: dict[str, tuple[str, ...]] = {
    "viral infection": ("runny nose", "sore throat", "sneezing", "mild cough", "body aches", "congestion"),
    "gastroenteritis": ("vomiting", "diarrhoea", "nausea", "stomach cramps", "loose stools", "dehydrated"),
    "asthma": ("wheeze", "short of breath", "inhaler", "tight chest", "night cough", "peak flow low"),
    "migraine": ("headache", "aura", "light sensitivity", "throbbing", "one-sided", "visual zigzags"),
    "urinary infection": ("burning urine", "frequency", "cloudy urine", "flank pain", "urgency", "dipstick positive"),
    "appendicitis": ("right lower quadrant", "rebound tenderness", "periumbilical", "guarding", "anorexia",
                     "pain migrated"),
    "pulmonary embolism": ("pleuritic", "calf swelling", "haemoptysis", "tachycardic", "recent flight",
                           "d-dimer raised"),
    "meningitis": ("neck stiffness", "photophobia", "petechial rash", "kernig sign", "confused", "bulging fontanelle"),
}
SHARED = ("fever", "pain", "tired", "poor sleep", "worse at night", "since yesterday", "no travel", "eating less")
OPENINGS = ("Patient reports", "Presents with", "Seen today for", "Complains of", "Mother says child has",
            "Walk-in with")
CLOSINGS = ("Advised fluids and rest.", "Review in two days.", "Safety-netting given.", "Bloods sent.",
            "Discussed with senior.", "Return if worse.")


class NotesParams(Params):
    num_classes: int = Field(6, ge=2, le=len(NOTE_CLASSES), title="Diagnoses",
                             description="How many diagnoses (classes) the notes are drawn from, most common first.")
    most_common: int = Field(600, ge=20, le=20_000, title="Notes of the most common diagnosis",
                             description="Notes written for the most common diagnosis.")
    ratio: float = Field(30.0, ge=1, le=1000, title="Most common : rarest",
                         description="How many times more notes the most common diagnosis has than the rarest; the "
                                     "others fall in between on an exponential curve.")
    overlap: float = Field(0.35, ge=0, le=0.9, title="Word overlap",
                           description="Share of a note's telling words taken from a neighbouring diagnosis "
                                       "instead of its own: higher makes the classes harder to tell apart.")
    seed: Seed = Field(0, title="Random seed", description="Seed that writes the notes.")


def _note(rng: np.random.Generator, own: tuple[str, ...], other: tuple[str, ...], overlap: float) -> str:
    words = []
    for _ in range(int(rng.integers(2, 4))):
        pool = other if rng.random() < overlap else own
        words.append(pool[int(rng.integers(len(pool)))])
    words += [SHARED[int(i)] for i in rng.choice(len(SHARED), size=int(rng.integers(1, 3)), replace=False)]
    rng.shuffle(words)
    days = int(rng.integers(1, 8))
    opening, closing = OPENINGS[int(rng.integers(len(OPENINGS)))], CLOSINGS[int(rng.integers(len(CLOSINGS)))]
    return f"{opening} {', '.join(words[:-1])} and {words[-1]} for {days} day{'s' if days > 1 else ''}. {closing}"


@DATASETS.register(
    "synthetic_notes", display="Synthetic clinic notes (generated text)", params=NotesParams, modality="tabular",
    description="Short made-up clinic notes, one diagnosis each, with a long tail of rare diagnoses and words shared "
                "between them; generated offline, no real patient.",
    text=True)
def synthetic_notes(num_classes: int, most_common: int, ratio: float, overlap: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    names = list(NOTE_CLASSES)[:num_classes]
    counts = np.maximum(np.floor(most_common * ratio ** (-np.arange(num_classes) / max(num_classes - 1, 1))), 8)
    notes, labels = [], []
    for c, (name, n) in enumerate(zip(names, counts.astype(int), strict=True)):
        neighbour = NOTE_CLASSES[names[(c + 1) % num_classes]]
        notes += [_note(rng, NOTE_CLASSES[name], neighbour, overlap) for _ in range(n)]
        labels += [c] * n
    order = rng.permutation(len(labels))
    texts = as_texts([[notes[i]] for i in order])
    return Dataset("synthetic_notes", np.zeros((len(order), 0), dtype=np.float32), np.asarray(labels)[order],
                   tuple(names), "tabular", (), texts=texts, text_names=("note",))
