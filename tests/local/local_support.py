"""Helpers of the offline-model tests: word error rate, word recall, worker-thread checks."""

from __future__ import annotations

import asyncio
import re
import threading
import time

_NUMBERS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip

_STOP = (
    "a an and are as at be been but by can could did do does for from had has have he her his how "
    "i if in into is it its it's just me my no not of on one or our so than that the their them "
    "then there these they this to too up us very was we were what when where which who why will "
    "with would you your yes also about more most some such only"
)
STOPWORDS = frozenset(_STOP.split())


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; digits and number words are made equal."""
    text = text.lower().replace("’", "'").replace("-", " ").replace("–", " ").replace("—", " ")
    out = re.findall(r"[a-z0-9']+", text)
    return [_NUMBERS.get(w, w).strip("'") for w in out if w.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by edit distance."""
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)


def content_words(text: str) -> list[str]:
    """Words that carry meaning (no stop words, at least three letters)."""
    return [w for w in words(text) if w not in STOPWORDS and len(w) >= 3]


def recall(expected: str, heard: str) -> float:
    """Share of ``expected``'s content words found in ``heard`` (1.0 when there are none)."""
    wanted = content_words(expected)
    if not wanted:
        return 1.0
    got = set(words(heard))
    # A tiny STT model often splits or joins compounds ("spacetime"/"space time"): allow prefixes.
    joined = "".join(words(heard))
    found = sum(1 for w in wanted if w in got or w in joined)
    return found / len(wanted)


def worker_threads() -> list[threading.Thread]:
    """The lexperience worker threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("lexperience-") and t.is_alive()]


async def workers_finished(timeout: float = 30.0) -> bool:
    """Wait until every worker thread has ended (a stopped worker finishes its current step:
    one token, one sentence); False if some still run after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while worker_threads():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
