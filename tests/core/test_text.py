from __future__ import annotations

import pytest

from lexperience.text import SentenceSplitter, clean_for_speech, split_sentences


def stream(text: str, step: int = 1, **options: int) -> list[str]:
    splitter = SentenceSplitter(**options)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += splitter.push(text[i : i + step])
    return out + splitter.flush()


def test_basic_sentences() -> None:
    assert split_sentences("Hello there. How are you? I am fine!") == [
        "Hello there.",
        "How are you?",
        "I am fine!",
    ]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_streaming_matches_whole_text(step: int) -> None:
    text = "Dr. Smith paid $3.50 for it. Then, e.g. on Mondays, he rests! Really? Yes."
    assert stream(text, step, first_clause_words=0) == split_sentences(text)


def test_abbreviations_decimals_and_initials_do_not_split() -> None:
    text = "Mr. Jones met Dr. Who at 3.14 p.m. today. J. R. R. Tolkien wrote it."
    assert split_sentences(text) == ["Mr. Jones met Dr. Who at 3.14 p.m. today.",
                                     "J. R. R. Tolkien wrote it."]  # fmt: skip


def test_lowercase_after_period_does_not_split() -> None:
    assert split_sentences("It costs approx. five dollars. Fine.") == [
        "It costs approx. five dollars.",
        "Fine.",
    ]


def test_closing_quotes_stay_with_sentence() -> None:
    assert split_sentences('She said "stop." Then she left.') == [
        'She said "stop."',
        "Then she left.",
    ]


def test_waits_for_next_character_before_cutting() -> None:
    splitter = SentenceSplitter(first_clause_words=0)
    assert splitter.push("It was Dr. ") == []
    assert splitter.push("Smith. ") == []  # cannot know yet whether "Smith." ends it
    assert splitter.push("He") == ["It was Dr. Smith."]
    assert splitter.flush() == ["He"]


def test_short_sentences_are_joined() -> None:
    assert split_sentences("Oh. That is a big one.", min_chars=6) == ["Oh. That is a big one."]


def test_first_piece_may_end_at_a_clause() -> None:
    out = stream("Black holes are regions of space, where gravity is so strong that light "
                 "cannot escape, and they form from collapsed stars. They grow.")  # fmt: skip
    assert out[0] == "Black holes are regions of space,"
    assert out[1].startswith("where gravity")  # only the first piece is cut at a clause
    assert out[1].endswith("collapsed stars.")


def test_run_on_text_is_cut_at_max_chars() -> None:
    text = "word " * 100
    pieces = stream(text, 5, max_chars=60, first_clause_words=0)
    assert all(len(p) <= 60 for p in pieces)
    assert " ".join(pieces).split() == text.split()


def test_paragraph_break_ends_a_piece() -> None:
    assert split_sentences("First idea without stop\n\nSecond idea.") == [
        "First idea without stop",
        "Second idea.",
    ]


def test_clean_for_speech() -> None:
    assert clean_for_speech("**Bold** and `code` 🚀 see [docs](http://x.y)") == (
        "Bold and code see docs"
    )
    assert clean_for_speech("Visit https://example.com now") == "Visit a link now"
    assert clean_for_speech("# Title\n- item one\n- item two") == "Title item one item two"


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        SentenceSplitter(max_chars=5)
