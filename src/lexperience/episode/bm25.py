"""Lexical ranking: words -> stems -> BM25 scores, on numpy alone.

Why our own and not ``bm25s``: the core depends on numpy and pydantic only, and an episode is
small (a 3-hour show is a few thousand passages, ~30,000 words), so the sparse-matrix machinery
``bm25s`` brings (scipy for indexing, PyStemmer for stems) buys nothing here: one query touches
a handful of posting lists and scores in well under a millisecond with plain numpy. What we
need and ``bm25s`` does not offer is the no-spoiler twist: every statistic (document count,
average length, document frequencies) is computed over the part of the episode heard so far,
as if the episode ended at the listener's position, so not even a score is shaped by text the
listener has not heard. :class:`BM25Index` does that per query from sorted posting lists.

Scoring is Okapi BM25 with Lucene's non-negative IDF, ``k1 = 1.2``, ``b = 0.75``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .stemmer import stem

__all__ = ["STOP_WORDS", "BM25Index", "terms", "tokenize"]

_STOP = """
a about above after again against all also am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do does doesn't
doing don't down during each else ever few for from further get gets got had hadn't has hasn't
have haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
i'd i'll i'm i've if in into is isn't it it's its itself just let's me more most much must my
myself no nor not now of off on once only or other ought our ours ourselves out over own same
shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs
them themselves then there there's these they they'd they'll they're they've this those though
through to too under until up upon us very was wasn't we we'd we'll we're we've were weren't what
what's when when's where where's which while who who's whom why why's will with won't would
wouldn't yeah yes yet you you'd you'll you're you've your yours yourself yourselves um uh oh okay
ok like really well right kind sort thing things lot
"""
#: Words too common to tell passages apart; left out of the index and of queries.
STOP_WORDS = frozenset(_STOP.split())

# Words a listener uses to point at the show itself ("what did the guest say about..."): they
# say nothing about *which* moment is meant, so they are dropped from questions.
_POINTERS = """
episode podcast show said say says saying tell told talk talked talking mention mentioned
mentions guest host speaker earlier before ago remind explain explained describe described
discuss discussed bit part minute minutes moment
"""
_QUERY_STOP = frozenset(_POINTERS.split())

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # letters and digits of any script


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text`` (letters, digits and in-word apostrophes)."""
    return _WORD.findall(text.lower().replace("’", "'"))


def terms(text: str, *, query: bool = False, language: str = "en") -> list[str]:
    """The stems of ``text``'s words that carry meaning (stop words removed). Stemming and stop
    words are English; for another ``language`` the lower-case words are used as they are."""
    words = tokenize(text)
    if language != "en":
        return words
    out = []
    for word in words:
        if word in STOP_WORDS or (query and word in _QUERY_STOP):
            continue
        if word.endswith("'s"):
            word = word[:-2]
        out.append(stem(word))
    return out


@dataclass(frozen=True)
class _Postings:
    docs: np.ndarray  # int32 document ids, ascending
    tf: np.ndarray  # float32 term frequency in each


class BM25Index:
    """BM25 over a fixed list of documents (each a list of terms), scored over any subset.

    Args:
        documents: the terms of each document.
        k1, b: the BM25 parameters.
    """

    def __init__(self, documents: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        self.size = len(documents)
        self.lengths = np.array([len(d) for d in documents], dtype=np.float32)
        lists: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(documents):
            for term, count in Counter(doc).items():
                ids, counts = lists.setdefault(term, ([], []))
                ids.append(i)
                counts.append(count)
        self._postings = {
            t: _Postings(np.array(ids, dtype=np.int32), np.array(c, dtype=np.float32))
            for t, (ids, c) in lists.items()
        }

    @property
    def vocabulary(self) -> int:
        return len(self._postings)

    def score(
        self,
        query: Sequence[str],
        mask: np.ndarray,
        extra: Sequence[Sequence[str]] = (),
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores of the documents selected by the boolean ``mask`` and of ``extra``
        documents (given by their terms), with every statistic taken over those alone.

        Returns ``(scores, extra_scores)``: an array of ``self.size`` (0 outside ``mask``) and
        one of ``len(extra)``.
        """
        scores = np.zeros(self.size, dtype=np.float32)
        extra_scores = np.zeros(len(extra), dtype=np.float32)
        unique = list(dict.fromkeys(query))
        n_docs = int(mask.sum()) + len(extra)
        if not unique or n_docs == 0:
            return scores, extra_scores
        extra_counts = [Counter(doc) for doc in extra]
        extra_lengths = np.array([len(doc) for doc in extra], dtype=np.float32)
        total = float(self.lengths[mask].sum()) + float(extra_lengths.sum())
        avg = max(total / n_docs, 1e-6)
        k1, b = self.k1, self.b
        for term in unique:
            postings = self._postings.get(term)
            if postings is not None:
                keep = mask[postings.docs]
                docs, tf = postings.docs[keep], postings.tf[keep]
            else:
                docs = np.zeros(0, dtype=np.int32)
                tf = np.zeros(0, dtype=np.float32)
            extra_tf = np.array([c[term] for c in extra_counts], dtype=np.float32)
            df = len(docs) + int(np.count_nonzero(extra_tf))
            if df == 0:
                continue
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            norm = k1 * (1.0 - b + b * self.lengths[docs] / avg)
            scores[docs] += idf * tf * (k1 + 1.0) / (tf + norm)
            if len(extra):
                norm_x = k1 * (1.0 - b + b * extra_lengths / avg)
                extra_scores += idf * extra_tf * (k1 + 1.0) / (extra_tf + norm_x)
        return scores, extra_scores
