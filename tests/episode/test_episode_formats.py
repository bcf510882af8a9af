"""Reading and writing transcripts: WebVTT, SRT, JSON, [hh:mm:ss] text; malformed files."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from lexperience import Episode, InvalidInputError, Segment
from lexperience.episode import format_timestamp, parse_timestamp

VTT = """WEBVTT - Slow Signals 12

NOTE exported by a fictional editor

STYLE
::cue { color: white }

intro
00:00:01.000 --> 00:00:04.000 align:start position:10%
<v Theo Calloway>Welcome to <i>Slow Signals</i> &amp; friends.</v>

00:00:04.500 --> 00:00:09.000
<v.guest Tamsin Okoro>My first recorder cost forty euros
at a flea market in Lisbon.

00:09.000 --> 00:12.000
<v Theo Calloway>What did it cost?<v Tamsin Okoro>Forty euros.

00:00:12.000 --> 00:00:15.000
<00:00:12.000>Plain <00:00:12.500>words <00:00:13.500>with <00:00:14.000>timings
"""


def test_webvtt_voices_tags_settings_and_inline_times() -> None:
    ep = Episode.parse(VTT)
    texts = [(s.speaker, s.text) for s in ep.segments]
    assert texts == [
        ("Theo Calloway", "Welcome to Slow Signals & friends."),
        ("Tamsin Okoro", "My first recorder cost forty euros at a flea market in Lisbon."),
        ("Theo Calloway", "What did it cost?"),
        ("Tamsin Okoro", "Forty euros."),
        (None, "Plain words with timings"),
    ]
    a, b = ep.segments[2], ep.segments[3]
    # one cue, two voices: the time is shared out by characters, in order, without a gap
    assert a.start == 9.0 and b.end == 12.0 and a.end == pytest.approx(b.start)
    assert a.end - a.start > b.end - b.start  # "What did it cost?" is the longer text
    timed = ep.segments[4]
    assert [(w.text, w.start, w.end) for w in timed.words] == [
        ("Plain", 12.0, 12.5),
        ("words", 12.5, 13.5),
        ("with", 13.5, 14.0),
        ("timings", 14.0, 15.0),
    ]
    assert ep.speakers == ["Theo Calloway", "Tamsin Okoro"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("00:00:01.000 --> 00:00:02.000\nhi\n", "first line must be 'WEBVTT'"),
        ("WEBVTTX\n\n00:00:01.000 --> 00:00:02.000\nhi\n", "first line must be 'WEBVTT'"),
        ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi\n", "line 3: a cue must have a timing"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nhi\n", "line 3: expected a cue timing"),
        ("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhi\n", "line 3: the cue ends"),
        ("WEBVTT\n\n00:61:00.000 --> 00:62:00.000\nhi\n", "line 3: '00:61:00.000' is not a time"),
        ("WEBVTT\n\n", "holds no transcript segments"),
    ],
)
def test_malformed_webvtt_is_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Episode.parse(text, format="vtt", name="ep.vtt")


def test_srt_with_and_without_indices_and_speaker_labels() -> None:
    srt = (
        "1\n00:00:01,000 --> 00:00:03,500\nTheo Calloway: Hello and welcome.\n\n"
        "2\n00:00:04,000 --> 00:00:06,000\n<i>Music plays</i>\n\n"
        "00:00:06,000 --> 00:00:08,000\nTamsin Okoro: Thanks,\nTheo.\n"
    )
    ep = Episode.parse(srt)
    assert [(s.start, s.end, s.speaker, s.text) for s in ep.segments] == [
        (1.0, 3.5, "Theo Calloway", "Hello and welcome."),
        (4.0, 6.0, None, "Music plays"),
        (6.0, 8.0, "Tamsin Okoro", "Thanks, Theo."),
    ]
    plain = Episode.parse(srt, speaker_labels=False)
    assert plain.segments[0].speaker is None
    assert plain.segments[0].text == "Theo Calloway: Hello and welcome."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\nhello\n", "line 1: an SRT block must be"),
        ("1\n00:00:01,000 --> 00:00:0,000\nhi\n", "line 2: expected a cue timing"),
        ("1\n00:00:03,000 --> 00:00:01,000\nhi\n", "line 2: the cue ends"),
    ],
)
def test_malformed_srt_is_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Episode.parse(text, format="srt")


def test_json_list_and_saved_episode() -> None:
    data = [
        {"start": 5, "end": 7.5, "text": "second", "speaker": "B"},
        {"start": "00:00:01.5", "end": 3, "text": "first"},
        {"start": 8, "end": 9, "text": "   "},  # no text: dropped
    ]
    ep = Episode.parse(json.dumps(data))
    assert [(s.start, s.text, s.speaker) for s in ep.segments] == [
        (1.5, "first", None),
        (5.0, "second", "B"),
    ]
    saved = json.dumps({"title": "T", "host": "B", "segments": data[:2]})
    ep2 = Episode.parse(saved)
    assert ep2.title == "T" and ep2.host == "B" and len(ep2) == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"title": "x"}', "a 'segments' list"),
        ('"text"', "must be a list of segments"),
        ('[{"end": 2, "text": "x"}]', "segment 0: 'start' is missing"),
        ('[{"start": 3, "end": 2, "text": "x"}]', "segment 0: 'end' .* is before 'start'"),
        ('[{"start": -1, "end": 2, "text": "x"}]', "segment 0: 'start'"),
        ('[{"start": 1, "end": 2, "text": 5}]', "'text' must be a string"),
        ('[{"start": 1, "end": 2, "text": "x", "colour": 1}]', "unknown field.*colour"),
        ('{"segments": [{"start": 1, "end": 2, "text": "x"}], "color": 1}', "unknown episode"),
        ('{"segments": [{"start": 1, "end": 20, "text": "x"}], "duration": 5}', "past the"),
    ],
)
def test_malformed_json_is_refused(data: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Episode.parse(data, format="json")


def test_plain_text_with_stamps() -> None:
    text = (
        "Slow Signals, episode 12\n\n"
        "[00:00:01] Theo Calloway: Welcome back.\n"
        "[0:05] Tamsin Okoro: Thanks for having me.\n"
        "It is good to be here.\n"
        "[1:00:00] Theo Calloway: And that is the show.\n"
    )
    ep = Episode.parse(text)
    assert [(s.start, s.end, s.speaker) for s in ep.segments[:2]] == [
        (1.0, 5.0, "Theo Calloway"),
        (5.0, 3600.0, "Tamsin Okoro"),
    ]
    assert ep.segments[1].text == "Thanks for having me. It is good to be here."
    last = ep.segments[2]
    assert last.start == 3600.0 and last.end == pytest.approx(3600 + 5 / 2.5)
    with pytest.raises(InvalidInputError, match="no \\[hh:mm:ss\\] time stamps"):
        Episode.parse("just some words\nand more\n", format="text")


def test_unsorted_and_overlapping_segments_are_normalised() -> None:
    ep = Episode(
        segments=[
            Segment(start=10, end=12, text="c", speaker="A"),
            Segment(start=0, end=5, text="a", speaker="A"),
            Segment(start=4, end=8, text="b (cross-talk)", speaker="B"),
            Segment(start=20, end=21, text=" "),
        ]
    )
    assert [s.text for s in ep.segments] == ["a", "b (cross-talk)", "c"]
    assert ep.length == 12.0
    with pytest.raises(ValidationError, match="ends"):
        Segment(start=5, end=4, text="x")
    with pytest.raises(ValidationError):
        Segment(start=float("nan"), end=4, text="x")


def test_load_errors(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        Episode.load(tmp_path / "missing.vtt")
    bad = tmp_path / "latin1.srt"
    bad.write_bytes("1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        Episode.load(bad)
    with pytest.raises(InvalidInputError, match="unknown episode metadata"):
        Episode.parse(VTT, producer="x")


@pytest.mark.parametrize("suffix", [".json", ".vtt", ".srt"])
def test_save_and_load_round_trip(tmp_path, suffix: str) -> None:
    ep = Episode.parse(
        VTT,
        title="The Night Map",
        show="Slow Signals",
        host="Theo Calloway",
        guests=("Tamsin Okoro",),
    )
    path = ep.save(tmp_path / f"ep{suffix}")
    back = Episode.load(path)
    assert [(round(s.start, 3), s.speaker, s.text) for s in back.segments] == [
        (round(s.start, 3), s.speaker, s.text) for s in ep.segments
    ]
    if suffix == ".json":
        assert back == ep  # metadata and word timings too
        assert back.segments[4].words == ep.segments[4].words
    with pytest.raises(InvalidInputError, match="cannot save"):
        ep.save(tmp_path / "ep.txt")


def test_vtt_writer_escapes_markup(tmp_path) -> None:
    ep = Episode(segments=[Segment(start=0, end=1, text="a <b> & c", speaker="R&D")])
    back = Episode.load(ep.save(tmp_path / "x.vtt"))
    assert back.segments[0].text == "a <b> & c" and back.segments[0].speaker == "R&D"


def test_timestamps() -> None:
    assert parse_timestamp("12:34") == 754.0
    assert parse_timestamp("1:02:03.5") == 3723.5
    assert parse_timestamp("00:12:34,250") == 754.25
    assert parse_timestamp("754") == 754.0 and parse_timestamp(3.5) == 3.5
    for bad in ("12:61", "-3", "abc", "1:75:00", "inf", True):
        with pytest.raises(InvalidInputError):
            parse_timestamp(bad)  # type: ignore[arg-type]
    assert format_timestamp(754.9) == "12:34"  # floor: never a moment not yet reached
    assert format_timestamp(3723.5) == "1:02:03"
    assert format_timestamp(3723.5, precise=True) == "01:02:03.500"


def test_words_of_other_scripts_and_languages_are_searchable() -> None:
    from lexperience.episode import terms

    assert terms("Café Ölmühle — naïve", language="de") == ["café", "ölmühle", "naïve"]
    assert terms("the recordings were recorded") == ["record", "record"]
    ep = Episode(
        language="fr",
        segments=[
            Segment(start=0, end=3, text="Le vieux moulin chante la nuit", speaker="Theo Calloway"),
            Segment(start=4, end=8, text="La fonderie garde sa dernière cloche"),
        ],
    )
    assert [p.start for p in ep.search("Où est la dernière cloche ?", before=10, k=1)] == [4.0]
