"""What a text column looks like class by class: how long the texts are, how many
different words each class uses, and the words that tell a class from the others.

Words are read as the word-count encoder reads them (lower case, runs of two or more
letters or digits). A class's telling words are ranked by the log-odds ratio of a text
of that class containing the word against a text of any other class containing it, each
share smoothed by half a text (so a word seen once in a rare class does not top the list
by chance alone).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["text_statistics", "distinctive_words"]


def _counts(texts: Sequence[str]):
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(lowercase=True, binary=True)
    try:
        return vectorizer.fit_transform(list(texts)).tocsc(), vectorizer.get_feature_names_out()
    except ValueError:  # no word in any text
        return None, np.array([], dtype=str)


def text_statistics(texts: Sequence[str], y: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per class: texts, median words per text with the quartiles, and how many
    different words its texts use."""
    texts = [str(t) for t in texts]
    y = np.asarray(y)
    words = np.array([len(t.split()) for t in texts])
    matrix, _ = _counts(texts)
    rows = []
    for k, name in enumerate(class_names):
        mine = y == k
        lengths = words[mine] if mine.any() else np.zeros(1)
        vocabulary = 0 if matrix is None or not mine.any() else int((matrix[np.flatnonzero(mine)].sum(axis=0) > 0).sum())
        rows.append({"class": name, "texts": int(mine.sum()), "median words": float(np.median(lengths)),
                     "lower quartile": float(np.percentile(lengths, 25)),
                     "upper quartile": float(np.percentile(lengths, 75)), "different words": vocabulary})
    return pd.DataFrame(rows)


def distinctive_words(texts: Sequence[str], y: np.ndarray, class_names: Sequence[str], top: int = 8
                      ) -> dict[str, list[tuple[str, float]]]:
    """For each class, up to `top` (word, log-odds ratio) pairs, strongest first: words
    found in at least two of its texts (one for a class of fewer) more often than elsewhere."""
    y = np.asarray(y)
    matrix, vocabulary = _counts(texts)
    out: dict[str, list[tuple[str, float]]] = {}
    for k, name in enumerate(class_names):
        mine = y == k
        n_mine, n_rest = int(mine.sum()), int((~mine).sum())
        if matrix is None or n_mine == 0:
            out[name] = []
            continue
        in_mine = np.asarray(matrix[np.flatnonzero(mine)].sum(axis=0)).ravel()
        in_rest = np.asarray(matrix[np.flatnonzero(~mine)].sum(axis=0)).ravel()
        p_mine, p_rest = (in_mine + 0.5) / (n_mine + 1), (in_rest + 0.5) / (n_rest + 1)
        score = np.log(p_mine / (1 - p_mine)) - np.log(p_rest / (1 - p_rest))
        score[in_mine < min(2, n_mine)] = -np.inf
        order = [i for i in np.argsort(-score, kind="stable")[:top] if np.isfinite(score[i]) and score[i] > 0]
        out[name] = [(str(vocabulary[i]), float(score[i])) for i in order]
    return out
