"""Long chart titles broken into lines that fit a narrow chart, their markup still escaped."""

from core.viz._fit import wrap_title


def test_a_long_title_breaks_at_spaces_into_lines_no_longer_than_asked():
    text = "difference in Balanced accuracy against lesson: Accuracy hides the tail (tiny) · seed 1"
    wrapped = wrap_title(text, 30)
    lines = wrapped.split("<br>")
    assert len(lines) > 1 and all(len(line) <= 30 for line in lines)
    assert " ".join(lines) == text, "every word kept, in order"


def test_a_word_longer_than_a_line_keeps_its_own_line_and_markup_stays_text():
    wrapped = wrap_title("<b>bold</b> supercalifragilisticexpialidocious", 10)
    assert wrapped.split("<br>") == ["&lt;b&gt;bold&lt;/b&gt;", "supercalifragilisticexpialidocious"]
    assert wrap_title(None) is None and wrap_title("short") == "short"
