"""User text shown as text: one escape for Streamlit markdown, one for plotly labels.

Run names, class names, column and file names come from people and their files. Streamlit
renders markdown (with directives of its own) in nearly every element and plotly renders a
subset of HTML in every label, so such text is escaped wherever it meets either: a class
called `![x](http://host/x.png)` must read as those characters, not make each viewer's
browser fetch that host. Our own prose is never passed through these.
"""

from __future__ import annotations

import html
import re

__all__ = ["WORD_JOINER", "md", "plotly_text"]

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
