"""Retrieval over a synthetic 66-minute episode: facts are found, nothing later ever leaks."""

from __future__ import annotations

import bisect
import math
import random

import pytest

from lexperience import Episode, InvalidInputError, Passage, Segment
from lexperience._optional import is_installed
from lexperience.episode import CUT_MARGIN_SECONDS, terms
from lexperience.testing.episodes import FACTS, SyntheticEpisode, synthetic_episode


@pytest.fixture(scope="module")
def syn() -> SyntheticEpisode:
    return synthetic_episode()


@pytest.fixture(scope="module")
def syn_plain() -> SyntheticEpisode:
    return synthetic_episode(word_timings=False)


@pytest.fixture(scope="module")
def syn_hybrid() -> SyntheticEpisode:
    if not is_installed("wordllama"):
        pytest.skip('needs the semantic extra: pip install "lexperience[semantic]"')
    s = synthetic_episode()
    s.episode.use_embeddings()
    return s


def found(passages: list[Passage], seg: Segment) -> bool:
    return any(p.start <= seg.start + 1e-9 and seg.start < p.end for p in passages)


def questions(s: SyntheticEpisode, *, hard: bool) -> list[tuple[int, str, float]]:
    """(fact, question, position) for answerable questions: asked 30 s to 15 min after."""
    rng = random.Random(5)
    out = []
    for i, fact in enumerate(s.facts):
        seg = s.fact_segment(i)
        position = min(s.episode.length, seg.end + rng.uniform(30, 900))
        out.append((i, fact.question, position))
        if not fact.hard or hard:
            out.append((i, fact.paraphrase, position))
    return out


def test_the_synthetic_episode_is_what_the_tests_need(syn: SyntheticEpisode) -> None:
    ep = syn.episode
    assert ep.length >= 60 * 60 and len(ep.speakers) == 3 and len(ep.segments) > 400
    assert len(syn.facts) == len(FACTS) >= 30
    for i, fact in enumerate(syn.facts):
        assert syn.fact_segment(i).text == fact.text
        assert abs(syn.fact_segment(i).start - fact.minute * 60) < 15
        # "hard" is exactly "the paraphrase shares no content word with the fact"
        shared = set(terms(fact.paraphrase, query=True)) & set(terms(fact.text))
        assert bool(shared) != fact.hard, fact.paraphrase
        assert fact.paraphrase != fact.question


def test_lexical_ranking_finds_the_fact_in_the_top_5(syn: SyntheticEpisode) -> None:
    asked = questions(syn, hard=False)
    assert len(asked) >= 50
    hits = [found(syn.episode.search(q, before=t, k=5), syn.fact_segment(i)) for i, q, t in asked]
    assert sum(hits) / len(hits) >= 0.9, [
        q for (_, q, _), h in zip(asked, hits, strict=True) if not h
    ]
    direct = [h for (i, q, _), h in zip(asked, hits, strict=True) if q == syn.facts[i].question]
    assert all(direct)


def test_hybrid_ranking_finds_paraphrases_without_shared_words(
    syn_hybrid: SyntheticEpisode,
) -> None:
    asked = questions(syn_hybrid, hard=True)
    hits = [
        found(syn_hybrid.episode.search(q, before=t, k=5), syn_hybrid.fact_segment(i))
        for i, q, t in asked
    ]
    assert sum(hits) / len(hits) >= 0.9, [
        q for (_, q, _), h in zip(asked, hits, strict=True) if not h
    ]
    hard = [
        h
        for (i, q, _), h in zip(asked, hits, strict=True)
        if q == syn_hybrid.facts[i].paraphrase and syn_hybrid.facts[i].hard
    ]
    assert any(hard)  # words alone find none of these (the test above leaves them out)


class GroundTruth:
    """When each word of the episode was really spoken (word timings, or even by characters)."""

    def __init__(self, ep: Episode) -> None:
        ends: list[float] = []
        words: list[str] = []
        for seg in ep.segments:
            if seg.words:
                ends += [w.end for w in seg.words]
                words += [w.text for w in seg.words]
                continue
            text, position = seg.text, 0
            for word in text.split():
                position = text.index(word, position) + len(word)
                ends.append(seg.start + seg.duration * position / len(text))
                words.append(word)
        assert ends == sorted(ends)
        self.ends, self.words = ends, words

    def heard(self, before: float) -> str:
        return " ".join(self.words[: bisect.bisect_right(self.ends, before)])


def positions(s: SyntheticEpisode, i: int, rng: random.Random) -> list[float]:
    seg = s.fact_segment(i)
    d = seg.duration
    inside = [seg.start + d * f for f in (0.1, 0.25, 0.5, 0.75, 0.9)]
    return [
        max(0.0, seg.start - 1),
        seg.start,
        *inside,
        seg.end - 0.01,
        seg.end,
        seg.end + 0.3,
        rng.uniform(0, s.episode.length),
    ]


def check_no_leaks(s: SyntheticEpisode) -> int:
    truth = GroundTruth(s.episode)
    others = [set(terms(seg.text)) for j, seg in enumerate(s.episode.segments)]
    rng = random.Random(11)
    searches = 0
    for i, fact in enumerate(s.facts):
        seg_index = s.fact_segments[i]
        seg = s.fact_segment(i)
        # words of the fact that are said nowhere else in the episode
        own = set(terms(fact.text)) - set().union(
            *(o for j, o in enumerate(others) if j != seg_index)
        )
        assert own, fact.text
        for before in positions(s, i, rng):
            heard = truth.heard(before)
            for question in (fact.question, fact.paraphrase):
                searches += 1
                for p in s.episode.search(question, before=before, k=5):
                    assert p.start < before and p.end <= before + 1e-9, (before, p)
                    assert p.text in heard, (before, p.text)  # every word said by `before`
                    if seg.start >= before:  # the fact lies ahead: none of its words
                        assert not own & set(terms(p.text)), (before, p.text)
    return searches


def test_no_passage_holds_anything_said_after_the_position(syn: SyntheticEpisode) -> None:
    assert check_no_leaks(syn) >= 500


def test_no_leaks_without_word_timings(syn_plain: SyntheticEpisode) -> None:
    assert check_no_leaks(syn_plain) >= 500


def test_no_leaks_with_the_hybrid_ranker(syn_hybrid: SyntheticEpisode) -> None:
    assert check_no_leaks(syn_hybrid) >= 500


def test_scores_come_only_from_the_heard_part(syn: SyntheticEpisode) -> None:
    """At a pause between segments, searching the whole episode gives exactly what searching
    an episode that ends there gives: later text does not even shape the scores."""
    ep = syn.episode
    rng = random.Random(2)
    for _ in range(12):
        k = rng.randrange(20, len(ep.segments) - 20)
        before = (ep.segments[k].end + ep.segments[k + 1].start) / 2
        short = ep.with_segments(ep.heard(before))
        assert short.segments == ep.segments[: k + 1]
        for fact in rng.sample(syn.facts, 4):
            full = ep.search(fact.question, before=before, k=5)
            cut = short.search(fact.question, before=before, k=5)
            assert [(p.start, p.text) for p in full] == [(p.start, p.text) for p in cut]
            assert [p.score for p in full] == pytest.approx([p.score for p in cut], rel=1e-5)


def test_results_are_ranked_and_a_straddling_passage_is_cut(syn: SyntheticEpisode) -> None:
    ep = syn.episode
    seg = syn.fact_segment(4)  # the storm drain
    question = "What frequency does the Harrow Street storm drain hum at?"
    whole = ep.search(question, before=seg.end + 60, k=5)
    assert [p.score for p in whole] == sorted((p.score for p in whole), reverse=True)
    assert whole[0].start <= seg.start and "fifty eight hertz" in whole[0].text
    middle = seg.words[len(seg.words) // 2]
    cut = ep.search(question, before=middle.end, k=5)
    top = next(p for p in cut if p.start <= seg.start < p.end + 1e-9)
    assert top.truncated and top.end <= middle.end and top.text.endswith(middle.text)
    assert "hertz" not in top.text


def test_search_arguments_are_checked(syn: SyntheticEpisode) -> None:
    ep = syn.episode
    for bad in (-1.0, math.nan, math.inf, "12:00", None, True):
        with pytest.raises(InvalidInputError, match="position"):
            ep.search("storm drain", before=bad)  # type: ignore[arg-type]
    for k in (0, -2, 1.5, True):
        with pytest.raises(InvalidInputError, match="k must be"):
            ep.search("storm drain", before=600, k=k)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="string"):
        ep.search(42, before=600)  # type: ignore[arg-type]
    assert ep.search("   ", before=600) == [] and ep.search("storm drain", before=0) == []
    assert ep.search("what did they say?", before=600) == []  # no word that carries meaning
    end = ep.search("storm drain", before=ep.length)
    assert ep.search("storm drain", before=ep.length + 1e6) == end and end
    assert len(ep.search("the city at night", before=ep.length, k=12)) == 12


def test_an_empty_episode_finds_nothing() -> None:
    empty = Episode(title="Not recorded yet")
    assert empty.length == 0 and empty.search("anything", before=10) == []
    assert empty.heard(10) == []


def test_a_straddling_segment_without_word_timings_is_cut_early() -> None:
    seg = Segment(start=10.0, end=20.0, text="aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj")
    # by characters, "eeee" ends at 10 + 10 * 24/49 = 14.9 s
    assert seg.cut(14.9 + CUT_MARGIN_SECONDS + 0.01).text.endswith("eeee")  # type: ignore[union-attr]
    assert seg.cut(14.9 + CUT_MARGIN_SECONDS - 0.01).text.endswith("dddd")  # type: ignore[union-attr]
    head = seg.cut(14.0)
    assert head is not None and head.end <= 14.0 - CUT_MARGIN_SECONDS and head.start == 10.0
    assert seg.cut(10.2) is None and seg.cut(10.0) is None and seg.cut(25) is seg
    timed = Segment(
        start=0,
        end=3,
        text="one two three",
        words=(_w("one", 0, 0.8), _w("two", 1.0, 1.9), _w("three", 2.0, 3.0)),
    )
    assert timed.cut(1.89).text == "one"  # type: ignore[union-attr]
    assert timed.cut(1.9).text == "one two"  # type: ignore[union-attr]
    assert timed.cut(0.5) is None


def _w(text: str, start: float, end: float):  # type: ignore[no-untyped-def]
    from lexperience import Word

    return Word(text=text, start=start, end=end)
