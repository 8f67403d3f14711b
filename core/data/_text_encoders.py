"""Text encoders: a free-text column turned into numeric features, one registry like every
plug-in kind (`TEXT_ENCODERS`, config key `data.text_encoder`).

An encoder is fitted on the training split's texts only and then applied unchanged to
validation, test and new texts, as the table's scaling is, so nothing of the test texts
leaks into the features. Once texts are numbers every loss, sampler, two-stage fix,
resampler and statistic of the table path applies to them unchanged.

Each encoder also says where each of its features sits in a text (`placement`): a matrix
that shares a feature's attribution among the words it was read from, so a per-feature
attribution (exact for a linear model) becomes a per-word one that sums to the same total.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from core.registry import Params, Registry

__all__ = ["TEXT_ENCODERS", "TextEncoder", "WordPlacement", "create_text_encoder", "word_spans"]

TEXT_ENCODERS: Registry["TextEncoder"] = Registry("text_encoder")
_PIECE = re.compile(r"\S+")
MAX_PIECES = 1000  # words placed per text: a pasted book must not make a (features x words) matrix of gigabytes


def word_spans(text: str, limit: int = MAX_PIECES) -> list[tuple[int, int]]:
    """(start, stop) of each whitespace-separated piece of `text`, the first `limit` of them:
    the unit a word attribution is shown on ("fever," with its comma is one piece). A longer
    text's later words carry no colour; what they hold goes to the rest, so totals still add up."""
    spans = []
    for m in _PIECE.finditer(text):
        if len(spans) >= limit:
            break
        spans.append(m.span())
    return spans


@dataclass(frozen=True)
class WordPlacement:
    """Where an encoder's features sit in one text: `spans` are the text's pieces and
    `weights` (features x pieces) shares each feature over the pieces it was read from;
    a row sums to 1 for a feature found in the text and to 0 for one that is not."""

    spans: list[tuple[int, int]]
    weights: np.ndarray

    def words(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self.spans]

    def per_word(self, feature_attribution: np.ndarray) -> tuple[np.ndarray, float]:
        """(attribution of each piece, what no piece carries): the two add up to the sum of
        `feature_attribution` exactly (up to float rounding)."""
        a = np.asarray(feature_attribution, dtype=np.float64)
        words = a @ self.weights
        return words, float(a.sum() - words.sum())


class TextEncoder:
    """Fit on training texts (`fit`), then turn any texts into (n, features) float32 rows
    (`transform`). `frozen` encoders learn nothing from the data (a pretrained sentence
    model): each text's features depend on that text alone. `supervised` encoders also
    learn from the training texts' labels."""

    frozen = False
    supervised = False
    standardise = False  # scale the features by the training split's mean and spread

    def fit(self, texts: Sequence[str], labels: Sequence[int] | None = None, *, progress=None) -> TextEncoder:
        """Learn from the training `texts` (and, for a supervised encoder, their `labels`,
        class numbers from 0); `progress(done, total)` hears of a fit that takes a while."""
        texts = _checked(texts)
        if not len(texts):
            raise ValueError("a text encoder needs at least one training text")
        if self.supervised:
            if labels is None or len(labels) != len(texts):
                raise ValueError("this text encoder learns from the training labels: give one label per text")
            labels = np.asarray(labels, dtype=np.int64)
            if labels.min(initial=0) < 0:
                raise ValueError("this text encoder learns from labelled texts only; a text without a label "
                                 "(-1) cannot be given to it")
        self._fit(texts, labels, progress)
        return self

    def fit_work(self, n_texts: int) -> int:
        """How many texts' worth of work `fit` does, for a progress bar (0: instant)."""
        return 0

    def transform(self, texts: Sequence[str], progress=None) -> np.ndarray:
        """(n, features) float32; `progress(done, total)` is called while encoding."""
        out = np.asarray(self._transform(_checked(texts), progress), dtype=np.float32)
        return out.reshape(len(texts), -1)

    def feature_names(self) -> list[str]:
        raise NotImplementedError

    def placement(self, text: str) -> WordPlacement:
        """Each feature shared over the words of `text` it comes from (see `WordPlacement`)."""
        spans = word_spans(text)
        return WordPlacement(spans, np.zeros((len(self.feature_names()), len(spans))))

    def _fit(self, texts: list[str], labels, progress) -> None:
        pass

    def _transform(self, texts: list[str], progress) -> np.ndarray:
        raise NotImplementedError


def _checked(texts: Sequence[str]) -> list[str]:
    return ["" if t is None else str(t) for t in texts]


class TfidfParams(Params):
    word_ngrams: int = Field(2, ge=1, le=3, title="Longest word sequence",
                             description="Words are counted alone (1) and in runs of up to this many in a row.")
    max_words: int = Field(2000, ge=10, le=20_000, title="Word features",
                           description="Most frequent words and word runs kept as features.")
    char_ngrams: bool = Field(True, title="Letter sequences",
                              description="Also count runs of 3 to 5 letters inside words, which catch spelling "
                                          "variants and word forms.")
    max_chars: int = Field(1000, ge=10, le=20_000, title="Letter-sequence features",
                           description="Most frequent letter runs kept as features.")
    min_df: int = Field(2, ge=1, le=100, title="Fewest texts per term",
                        description="A word or letter run found in fewer training texts than this is left out.")


@TEXT_ENCODERS.register(
    "tfidf", display="Word counts (TF-IDF)", params=TfidfParams,
    description="Counts of words, word pairs and letter runs, weighted by how rare they are across the training "
                "texts: fast, and every feature is a word you can read.",
    paper="Sparck Jones 1972, A statistical interpretation of term specificity (IDF); scikit-learn TfidfVectorizer",
    frozen=False, words=True, supervised=False)
class TfidfEncoder(TextEncoder):
    """scikit-learn's TfidfVectorizer on words (1..word_ngrams) and, optionally, on letter
    runs inside words (`char_wb`, 3..5), sub-linear counts, each part L2-normalised."""

    def __init__(self, *, word_ngrams: int, max_words: int, char_ngrams: bool, max_chars: int, min_df: int):
        from sklearn.feature_extraction.text import TfidfVectorizer

        common = dict(lowercase=True, sublinear_tf=True, dtype=np.float32)
        self.min_df = min_df
        self.parts = [("word", TfidfVectorizer(analyzer="word", ngram_range=(1, word_ngrams), max_features=max_words,
                                               **common))]
        if char_ngrams:
            self.parts.append(("letters", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5),
                                                          max_features=max_chars, **common)))

    def _fit(self, texts: list[str], labels, progress) -> None:
        for _, vectorizer in self.parts:
            # min_df above the number of texts would leave nothing: a tiny training split keeps every term
            vectorizer.set_params(min_df=min(self.min_df, len(texts)))
            try:
                vectorizer.fit(texts)
            except ValueError:  # no term at all (empty texts): an empty vocabulary, every row zeros
                vectorizer.vocabulary_ = {}
                vectorizer.set_params(vocabulary={})
        self._names = [f"{kind} “{term}”" for kind, v in self.parts for term in _terms(v)]

    def _transform(self, texts: list[str], progress) -> np.ndarray:
        blocks = [v.transform(texts).toarray() if _terms(v) else np.zeros((len(texts), 0), np.float32)
                  for _, v in self.parts]
        if progress is not None:
            progress(len(texts), len(texts))
        return np.hstack(blocks)

    def feature_names(self) -> list[str]:
        return list(self._names)

    def placement(self, text: str) -> WordPlacement:
        """A word run's feature shared equally among its occurrences in the text, and each
        occurrence equally among its words; a letter run's among its occurrences, each
        inside one word. Pieces are read as the vectorizer reads the text (lower case, its
        token pattern), piece by piece, so every found term has a place."""
        spans = word_spans(text)
        pieces = [text[a:b] for a, b in spans]
        weights = np.zeros((len(self._names), len(spans)))
        offset = 0
        for kind, vectorizer in self.parts:
            vocabulary = vectorizer.vocabulary_
            occurrences: dict[int, list[list[int]]] = {}
            for term, where in _occurrences(kind, vectorizer, pieces):
                if term in vocabulary:
                    occurrences.setdefault(vocabulary[term], []).append(where)
            for j, places in occurrences.items():
                for where in places:
                    for piece in where:
                        weights[offset + j, piece] += 1.0 / (len(places) * len(where))
            offset += len(vocabulary)
        return WordPlacement(spans, weights)


def _terms(vectorizer) -> list[str]:
    vocabulary = getattr(vectorizer, "vocabulary_", None) or {}
    return sorted(vocabulary, key=vocabulary.get)


def _occurrences(kind: str, vectorizer, pieces: list[str]):
    """(term, pieces it spans) for every term occurrence the vectorizer counts in the text."""
    if kind == "letters":
        analyse = vectorizer.build_analyzer()  # char_wb reads each whitespace-separated piece on its own
        for i, piece in enumerate(pieces):
            for term in analyse(piece):
                yield term, [i]
        return
    preprocess, tokenize = vectorizer.build_preprocessor(), vectorizer.build_tokenizer()
    tokens = [(token, i) for i, piece in enumerate(pieces) for token in tokenize(preprocess(piece))]
    low, high = vectorizer.ngram_range
    for n in range(low, high + 1):
        for start in range(len(tokens) - n + 1):
            run = tokens[start:start + n]
            yield " ".join(t for t, _ in run), [i for _, i in run]


def create_text_encoder(name: str = "tfidf", params: dict | None = None) -> TextEncoder:
    return TEXT_ENCODERS.create(name, params)
