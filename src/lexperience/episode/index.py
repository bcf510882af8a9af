"""Search over an episode up to a position: passages, lexical and optional semantic ranking.

The episode's segments are grouped into passages: consecutive segments of one speaker, up to
``passage_words`` words (a segment longer than that is a passage of its own). Passages are what
a search ranks and returns. Before ranking, every passage is checked against the position:
passages heard in full are ranked as they are; the few that straddle the position are cut
(segment by segment, see :mod:`lexperience.episode.segments`) and ranked on their cut text;
later ones do not take part at all. The BM25 statistics are computed over the heard part only.

With an :class:`Embedder` (``Episode.use_embeddings()``), passages are also ranked by the cosine
similarity of their embedding to the question's, and the two rankings are merged by reciprocal
rank fusion (RRF, ``1 / (60 + rank)`` summed over the rankings): robust to the two scores'
different scales, and a passage found by both ranks first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .bm25 import BM25Index, terms
from .segments import Passage, Segment

__all__ = ["Embedder", "EpisodeIndex", "RRF_K"]

log = logging.getLogger(__name__)

#: The constant of reciprocal rank fusion (the value of the original RRF paper).
RRF_K = 60
#: How many of each ranking's best take part in the fusion.
_FUSION_DEPTH = 50


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors whose dot product measures closeness in meaning."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A ``(len(texts), dim)`` float32 array of L2-normalised rows."""
        ...


@dataclass(frozen=True)
class _PassageSpan:
    first: int  # index of its first segment
    last: int  # index of its last segment (inclusive)
    start: float
    end: float  # the latest end of its segments
    speaker: str | None


def group_passages(segments: Sequence[Segment], passage_words: int) -> list[_PassageSpan]:
    """Consecutive segments of one speaker, up to ``passage_words`` words each."""
    spans: list[_PassageSpan] = []
    first = 0
    words = 0
    for i, seg in enumerate(segments):
        n = len(seg.text.split())
        if i > first and (seg.speaker != segments[first].speaker or words + n > passage_words):
            spans.append(_span(segments, first, i - 1))
            first, words = i, 0
        words += n
    if segments:
        spans.append(_span(segments, first, len(segments) - 1))
    return spans


def _span(segments: Sequence[Segment], first: int, last: int) -> _PassageSpan:
    part = segments[first : last + 1]
    return _PassageSpan(
        first, last, part[0].start, max(s.end for s in part), segments[first].speaker
    )


def _join(segments: Sequence[Segment]) -> str:
    return " ".join(s.text.strip() for s in segments if s.text.strip())


class EpisodeIndex:
    """The search structures of one episode (built once; searching is thread-safe)."""

    def __init__(
        self, segments: Sequence[Segment], *, passage_words: int = 60, language: str = "en"
    ) -> None:
        self.segments = tuple(segments)
        self.language = language
        self.spans = group_passages(self.segments, passage_words)
        self.texts = [_join(self.segments[p.first : p.last + 1]) for p in self.spans]
        # A passage that answers a question is indexed with the question ("When is the city at
        # its quietest?" / "At ten past four..."), so a listener asking the same thing finds
        # the answer, not only the host's question. The question was said first, so this never
        # brings in later text.
        self.prompts = [""] * len(self.spans)
        for i in range(1, len(self.spans)):
            before, this = self.spans[i - 1], self.spans[i]
            if before.speaker != this.speaker and self.texts[i - 1].rstrip().endswith("?"):
                self.prompts[i] = self.texts[i - 1]
        self.bm25 = BM25Index([self._terms(i, t) for i, t in enumerate(self.texts)])
        self.starts = np.array([p.start for p in self.spans], dtype=np.float64)
        self.ends = np.array([p.end for p in self.spans], dtype=np.float64)
        self._embedder: Embedder | None = None
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    def _terms(self, i: int, text: str) -> list[str]:
        """What passage ``i`` is indexed by: its words, its speaker's name (one word: "what did
        Tamsin say about...") and the question it answers, if any."""
        lang = self.language
        return (
            terms(text, language=lang)
            + terms(self.spans[i].speaker or "", language=lang)
            + terms(self.prompts[i], language=lang)
        )

    def _with_prompt(self, i: int, text: str) -> str:
        return f"{self.prompts[i]} {text}" if self.prompts[i] else text

    # -- semantic ranking ---------------------------------------------------------------------
    def set_embedder(self, embedder: Embedder | None) -> None:
        """Rank by meaning as well as by words (``None`` switches back to words only)."""
        vectors = None
        if embedder is not None and self.texts:
            texts = [self._with_prompt(i, t) for i, t in enumerate(self.texts)]
            vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
            if vectors.shape[0] != len(self.texts):
                raise ValueError("the embedder returned a wrong number of vectors")
        with self._lock:
            self._embedder, self._vectors = embedder, vectors

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    # -- search -------------------------------------------------------------------------------
    def search(self, question: str, *, before: float, k: int) -> list[Passage]:
        heard = self.ends <= before
        straddling = np.flatnonzero((self.starts < before) & ~heard)
        cut_ids: list[int] = []
        cut_parts: list[list[Segment]] = []
        for p in straddling:
            span = self.spans[int(p)]
            parts = [
                c
                for s in self.segments[span.first : span.last + 1]
                if (c := s.cut(before)) is not None and c.text.strip()
            ]
            if parts:
                cut_ids.append(int(p))
                cut_parts.append(parts)
        cut_texts = [_join(parts) for parts in cut_parts]
        query = terms(question, query=True, language=self.language)
        extra = [self._terms(p, t) for t, p in zip(cut_texts, cut_ids, strict=True)]
        lexical, lexical_cut = self.bm25.score(query, heard, extra)
        # candidates: (score, passage id, is_cut, index into the cut lists)
        depth = max(_FUSION_DEPTH, k)
        ranked_lex = self._ranking(lexical, lexical_cut, heard, cut_ids, depth, positive=True)
        with self._lock:
            embedder, vectors = self._embedder, self._vectors
        if embedder is None or vectors is None:
            order = ranked_lex
            scores = {key: s for key, s in order}
        else:
            q = np.asarray(embedder.embed([question]), dtype=np.float32)[0]
            sims = vectors @ q
            sims_cut = (
                np.asarray(
                    embedder.embed(
                        [self._with_prompt(p, t) for t, p in zip(cut_texts, cut_ids, strict=True)]
                    ),
                    dtype=np.float32,
                )
                @ q
                if cut_texts
                else np.zeros(0, dtype=np.float32)
            )
            ranked_sem = self._ranking(sims, sims_cut, heard, cut_ids, depth, positive=False)
            scores = {}
            for ranking in (ranked_lex[:depth], ranked_sem[:depth]):
                for rank, (key, _) in enumerate(ranking):
                    scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
            order = sorted(scores.items(), key=lambda item: (-item[1], item[0][0]))
        out: list[Passage] = []
        for (pid, cut), _ in order[:k]:
            span = self.spans[pid]
            if cut >= 0:
                parts = cut_parts[cut]
                text, end, truncated = cut_texts[cut], max(s.end for s in parts), True
            else:
                text, end, truncated = self.texts[pid], span.end, False
            out.append(
                Passage(
                    start=span.start,
                    end=min(end, before),
                    speaker=span.speaker,
                    text=text,
                    score=float(scores[(pid, cut)]),
                    truncated=truncated,
                )
            )
        return out

    def _ranking(
        self,
        scores: np.ndarray,
        cut_scores: np.ndarray,
        heard: np.ndarray,
        cut_ids: list[int],
        depth: int,
        *,
        positive: bool,
    ) -> list[tuple[tuple[int, int], float]]:
        """Heard passages and cut passages by descending score; ``(passage, cut index)`` keys
        with cut index -1 for a whole passage. ``positive``: leave out scores of 0."""
        ids = np.flatnonzero(heard)
        values = scores[ids]
        if positive:
            keep = values > 0
            ids, values = ids[keep], values[keep]
        if depth < len(ids):
            top = np.argpartition(-values, depth - 1)[:depth]
            ids, values = ids[top], values[top]
        items: list[tuple[tuple[int, int], float]] = [
            ((int(i), -1), float(v)) for i, v in zip(ids, values, strict=True)
        ]
        for j, (pid, value) in enumerate(zip(cut_ids, cut_scores, strict=True)):
            if not positive or value > 0:
                items.append(((pid, j), float(value)))
        items.sort(key=lambda item: (-item[1], item[0][0]))
        return items
