"""Which words of a note pushed a model towards the true class and towards the class it
chose instead.

For a linear model on word counts the answer is exact: the gap between two classes'
scores is sum_j (w_true,j - w_chosen,j) x_j + (b_true - b_chosen), so each feature's term
is its share, and the encoder's placement (`WordPlacement`) hands every term to the words
it was counted from. Words, the table's other columns and the bias then add up to the
score gap to the last digit. For any other network a per-feature attribution (integrated
gradients from captum, say) goes through the same placement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WordAttribution", "linear_word_attribution", "words_from_features", "case_word_attributions"]


@dataclass(frozen=True)
class WordAttribution:
    """One text's words with their pull towards `target` and towards `other` (score units),
    and what is not on any word: the table's other features, the bias, features of the
    text found on no word. `towards_target - towards_other` summed over words plus the
    rest is the score gap `gap`."""

    words: list[str]
    spans: list[tuple[int, int]]
    towards_target: np.ndarray
    towards_other: np.ndarray
    rest_target: float
    rest_other: float
    gap: float  # score of target minus score of other, as the model gave them

    @property
    def difference(self) -> np.ndarray:
        """Each word's push towards the target rather than the other class."""
        return self.towards_target - self.towards_other

    def explained(self) -> float:
        """Words plus the rest: equals `gap` (the check a test makes)."""
        return float(self.difference.sum() + self.rest_target - self.rest_other)


def words_from_features(placement, text: str, target_features: np.ndarray, other_features: np.ndarray,
                        target_rest: float, other_rest: float, gap: float) -> WordAttribution:
    """Per-feature attributions of one text block (towards each class) placed on its words;
    what no word carries joins the rest."""
    towards_target, unplaced_target = placement.per_word(target_features)
    towards_other, unplaced_other = placement.per_word(other_features)
    return WordAttribution(placement.words(text), list(placement.spans), towards_target, towards_other,
                           target_rest + unplaced_target, other_rest + unplaced_other, gap)


def linear_word_attribution(weight: np.ndarray, bias: np.ndarray, features: np.ndarray, block: tuple[int, int],
                            placement, text: str, target: int, other: int) -> WordAttribution:
    """Exact word contributions of a linear model's scores (`weight` (K, d), `bias` (K,))
    on one case's `features` (d,), whose text features are `block` = (start, stop)."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    x = np.asarray(features, dtype=np.float64).reshape(-1)
    start, stop = block
    terms = w[[target, other]] * x  # (2, d): each feature's share of each score
    inside = np.zeros(x.shape[0], dtype=bool)
    inside[start:stop] = True
    rest = terms[:, ~inside].sum(axis=1) + b[[target, other]]
    gap = float((w[target] - w[other]) @ x + b[target] - b[other])
    return words_from_features(placement, text, terms[0, start:stop], terms[1, start:stop], float(rest[0]),
                               float(rest[1]), gap)


def case_word_attributions(splits, artifacts, row: int, target: int, other: int, *, exact: bool,
                           maps: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[str, WordAttribution]]:
    """(column, words) for each free-text column of test case `row` (a row of `artifacts`):
    exact shares of a linear model's score gap when `exact`, else `maps` (per-feature
    attributions towards `target` and `other`, from any attribution method) placed on the
    words, the other features' attributions making up the rest."""
    blocks = [b for b in (splits.columns or ()) if b.role == "text"]
    case = int(artifacts.test_index[row])
    gap = float(artifacts.logits[row, target] - artifacts.logits[row, other])
    out = []
    for t, (block, encoder) in enumerate(zip(blocks, splits.text_encoders, strict=True)):
        text = str(splits.texts_test[case, t])
        placement = encoder.placement(text)
        if exact:
            words = linear_word_attribution(artifacts.head_weight, artifacts.head_bias, artifacts.features[row],
                                            (block.start, block.stop), placement, text, target, other)
        elif maps is not None:
            towards, away = (np.asarray(m, dtype=np.float64).reshape(-1) for m in maps)
            inside = slice(block.start, block.stop)
            words = words_from_features(placement, text, towards[inside], away[inside],
                                        float(towards.sum() - towards[inside].sum()),
                                        float(away.sum() - away[inside].sum()), gap)
        else:
            raise ValueError("word attributions need a linear model or per-feature maps")
        out.append((block.name, words))
    return out
