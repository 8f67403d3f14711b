"""User text shown as text: one escape for Streamlit markdown, one for plotly labels.

Run names, class names, column and file names come from people and their files. Streamlit
renders markdown (with directives of its own) in nearly every element and plotly renders a
subset of HTML in every label, so such text is escaped wherever it meets either: a class
called `![x](http://host/x.png)` must read as those characters, not make each viewer's
browser fetch that host. Our own prose is never passed through these.
"""

from __future__ import annotations

import html
import math
import re

__all__ = ["WORD_JOINER", "interval_text", "md", "number", "plotly_text"]

WORD_JOINER = "\u2060"  # invisible, and no line break: splits a pattern without changing what a reader sees
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character; CommonMark escapes each
# Rewrites that run on the parsed text, after backslash escapes are resolved: emoji and
# `:material/...:` shortcodes and `:streamlit:` (a `:` before a word), bare URLs and
# e-mail addresses turned into links (`http:`, `@`, `www.`), `->` `<=` `--` turned into
# arrows and dashes. A word joiner inside each keeps them from matching.
_REWRITTEN = re.compile(r"(?<=[:@])(?=\S)|(?<=www)(?=\.)|(?<=[-<>~])(?=[-<>=])", re.IGNORECASE)


def md(text: object) -> str:
    """`text` as Streamlit markdown that shows exactly its characters, on one line.

    Backslash escapes stop markdown syntax (images, links, emphasis, headings, tables,
    `$math$`, `:red[...]` directives); newlines and runs of spaces become one space, since
    a line break could start a heading or a list and leading spaces a code block."""
    one_line = " ".join(str(text).split())
    return _PUNCTUATION.sub(r"\\\1", _REWRITTEN.sub(WORD_JOINER, one_line))


def plotly_text(text: object) -> str | None:
    """`text` for a plotly title, tick label, legend entry, annotation, text or hover
    template: plotly reads `<b>`, `<br>`, `<a href>` and `<span style>` as markup and
    `%{...}` in a template as a placeholder, and turns entities back into characters.
    None stays None (no title)."""
    return None if text is None else html.escape(str(text), quote=False).replace("%{", "&#37;{")


def number(value: float, digits: int = 3, signed: bool = False) -> str:
    """`value` with `digits` decimals, but never rounded to zero when it is not zero: an
    interval end of +0.0003 must not read "+0.000", or the interval would seem to touch 0
    while its words say "beyond noise"."""
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("+∞" if value > 0 else "−∞")
    sign = "+" if signed else ""
    if value != 0 and abs(value) < 0.5 * 10 ** -digits:
        return f"{value:{sign}.2g}"
    return f"{value:{sign}.{digits}f}"


def interval_text(estimate: float, ci, digits: int = 3, signed: bool = False) -> str:
    """"0.812 [0.781, 0.843]": the estimate and its interval (the ends, not ± half the
    width, since intervals kept inside a metric's range are not symmetric). The estimate
    alone where there is no interval."""
    low, high = ci if ci is not None else (None, None)
    head = number(estimate, digits, signed)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return head
    return f"{head} [{number(low, digits, signed)}, {number(high, digits, signed)}]"
