"""A synthetic podcast episode with facts at known times, for testing retrieval and the
companion (``from lexperience.testing.episodes import synthetic_episode``).

The episode is a fictional talk show (host Theo Calloway, guests Tamsin Okoro and Pell Varga):
filler conversation built from a small, repetitive vocabulary (city, night, sound, street...,
so that common words are everywhere, as in real talk) with :data:`FACTS` placed at fixed
minutes. Each fact has a question in the transcript's words and a paraphrase in other words;
``hard`` paraphrases share no content word with the fact at all (only a ranker that knows
meaning can find them).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..episode import Episode, Segment
from ..transcript import Word

__all__ = ["FACTS", "Fact", "SyntheticEpisode", "synthetic_episode"]

HOST, GUEST, CALLER = "Theo Calloway", "Tamsin Okoro", "Pell Varga"


@dataclass(frozen=True)
class Fact:
    """A sentence placed at ``minute`` by ``speaker``, and two questions it answers."""

    minute: float
    speaker: str
    text: str
    question: str
    paraphrase: str
    hard: bool = False  # the paraphrase shares no content word with the text


_H, _G, _C = HOST, GUEST, CALLER
FACTS: tuple[Fact, ...] = (
    Fact(
        2.0,
        _G,
        "My first recorder was a battered cassette machine I bought for forty euros at a flea market in Lisbon.",
        "Where did Tamsin buy her first cassette recorder?",
        "How much did her first recording device cost?",
    ),
    Fact(
        3.2,
        _H,
        "Before the show I worked for six years as a lighting technician at the opera.",
        "How long did Theo work as a lighting technician?",
        "What did the host do at the opera house?",
    ),
    Fact(
        4.5,
        _G,
        "The Night Map holds two hundred and twelve recordings from nine neighbourhoods.",
        "How many recordings are in the Night Map?",
        "How big is the Night Map collection?",
    ),
    Fact(
        7.0,
        _G,
        "The city is quietest at ten past four on Tuesday mornings, when the night buses have stopped.",
        "When is the city at its quietest?",
        "At what hour does the town fall most silent?",
        hard=True,
    ),
    Fact(
        9.5,
        _G,
        "After heavy rain the storm drain on Harrow Street hums at fifty eight hertz.",
        "What frequency does the Harrow Street storm drain hum at?",
        "What pitch does the drain make when it rains?",
    ),
    Fact(
        10.8,
        _C,
        "The clock tower on Mercer Hill runs exactly ninety seconds slow.",
        "How slow is the Mercer Hill clock tower?",
        "Is the clock up on the hill accurate?",
    ),
    Fact(
        12.0,
        _G,
        "Blackbirds beside the ring road begin their dawn song forty minutes earlier than blackbirds in the park.",
        "How much earlier do ring road blackbirds start their dawn song?",
        "Do birds near busy roads wake up sooner?",
    ),
    Fact(
        14.5,
        _C,
        "The Quayside bakery switches on its ovens at three fifteen every morning.",
        "When does the Quayside bakery switch on its ovens?",
        "What time does the baking begin down at the quayside?",
    ),
    Fact(
        17.0,
        _H,
        "I grew up above a piano repair shop, so I learned to fall asleep to tuning forks.",
        "What shop did Theo grow up above?",
        "Where did the host live as a kid?",
        hard=True,
    ),
    Fact(
        19.5,
        _G,
        "The canal lock gates creak in the key of E flat.",
        "What key do the canal lock gates creak in?",
        "What musical note do the gates on the canal make?",
    ),
    Fact(
        22.0,
        _G,
        "My recorder froze solid at minus eleven degrees on the coldest night of the project.",
        "How cold was the coldest night of the project?",
        "What temperature made her equipment stop working?",
        hard=True,
    ),
    Fact(
        24.5,
        _C,
        "Our tram line carries thirty one thousand passengers on an ordinary weekday.",
        "How many passengers does the tram line carry on a weekday?",
        "How busy are the trams?",
    ),
    Fact(
        26.0,
        _G,
        "I wear wool gloves with the fingertips cut off so I can work the recorder controls.",
        "What gloves does Tamsin wear?",
        "How does she keep her hands warm while recording?",
    ),
    Fact(
        27.0,
        _G,
        "In my workshops the record for counting sound layers in one minute is fourteen.",
        "What is the workshop record for counting sound layers?",
        "What is the most layers anyone has picked out?",
    ),
    Fact(
        29.5,
        _H,
        "Our producer Juno keeps a jar of recorded thunder on her desk.",
        "What does the producer Juno keep on her desk?",
        "What odd object sits in Juno's workspace?",
    ),
    Fact(
        32.0,
        _G,
        "The old foundry's last bell was cast in nineteen sixty one and never rung in public.",
        "When was the foundry's last bell cast?",
        "How old is the bell at the foundry?",
    ),
    Fact(
        33.2,
        _C,
        "The cathedral organ has a pipe so low that you feel it rather than hear it, at sixteen hertz.",
        "How low is the cathedral organ's lowest pipe?",
        "Which instrument plays a note you can only feel?",
    ),
    Fact(
        34.5,
        _C,
        "The ferry horn was tuned a semitone lower when the harbour was rebuilt in two thousand and nine.",
        "When was the harbour rebuilt?",
        "Why does the ferry's horn sound deeper now?",
    ),
    Fact(
        37.0,
        _G,
        "A pigeon landing on the clapper rang the bell once, and I have eleven seconds of it.",
        "How many seconds of the bell did Tamsin capture?",
        "Which bird rang the bell?",
    ),
    Fact(
        39.5,
        _G,
        "I use two omnidirectional microphones spaced seventeen centimetres apart.",
        "How far apart are Tamsin's omnidirectional microphones?",
        "What is her stereo mic setup?",
        hard=True,
    ),
    Fact(
        42.0,
        _H,
        "The Slow Signals theme music was recorded on a toy glockenspiel in my kitchen.",
        "What was the Slow Signals theme music recorded on?",
        "How was the intro tune made?",
        hard=True,
    ),
    Fact(
        44.5,
        _C,
        "The night market on Vell Square closes at exactly two in the morning.",
        "When does the night market on Vell Square close?",
        "How late does the Vell Square market stay open?",
    ),
    Fact(
        45.8,
        _G,
        "Swifts over the old mill always scream in groups of exactly seven.",
        "How many swifts scream together over the old mill?",
        "In what numbers do the birds above the mill gather?",
    ),
    Fact(
        47.0,
        _G,
        "Foxes in the rail yard scream loudest in January, during their mating season.",
        "When do the rail yard foxes scream loudest?",
        "Which month are the foxes noisiest?",
    ),
    Fact(
        49.5,
        _G,
        "The hospital generators are tested every Thursday at noon, and the whole district hums.",
        "When are the hospital generators tested?",
        "Why does the district hum on Thursdays?",
    ),
    Fact(
        50.6,
        _H,
        "My favourite sound in the whole city is the rattle of the number nine bus over the cobbles.",
        "What is Theo's favourite sound in the city?",
        "Which vehicle noise does the host love most?",
        hard=True,
    ),
    Fact(
        52.0,
        _C,
        "My grandmother kept a diary of every church bell she heard for forty years.",
        "What did Pell's grandmother keep a diary of?",
        "What did his grandmother write down for four decades?",
    ),
    Fact(
        54.5,
        _G,
        "The tunnel under the river has an echo that lasts four point two seconds.",
        "How long does the echo in the river tunnel last?",
        "How long does sound keep bouncing around in that tunnel?",
    ),
    Fact(
        57.0,
        _H,
        "Next season we are recording an entire series from a lighthouse.",
        "Where will next season be recorded?",
        "What unusual location is planned for next season?",
    ),
    Fact(
        58.3,
        _C,
        "The bridge cables sing in a strong north wind, a chord of three notes.",
        "What do the bridge cables do in a north wind?",
        "Which structure makes music when the wind blows?",
    ),
    Fact(
        59.5,
        _G,
        "The recording I am proudest of is twenty minutes of snow falling on the botanical garden.",
        "Which recording is Tamsin proudest of?",
        "What is her favourite piece of work?",
        hard=True,
    ),
    Fact(
        62.0,
        _C,
        "The street sweepers on Orrin Avenue run at four thirty and sound like a slow waterfall.",
        "What do the Orrin Avenue street sweepers sound like?",
        "When do the sweepers clean Orrin Avenue?",
    ),
    Fact(
        63.5,
        _G,
        "My next project maps the sounds of underground car parks in twelve cities.",
        "What will Tamsin's next project map?",
        "What is she planning to explore after this?",
        hard=True,
    ),
)

_NOUNS = (
    "the city",
    "the traffic",
    "a quiet street",
    "the neighbours",
    "my old flat",
    "the morning",
    "a crowded station",
    "the local radio",
    "people on the train",
    "the weather",
    "a long walk",
    "the microphone",
    "a good story",
    "the audience",
    "our listeners",
    "the night shift",
    "the summer",
    "a small cafe",
    "the noise",
    "the silence",
    "the park",
    "the children",
    "the river",
    "an old friend",
    "the whole neighbourhood",
    "the last few years",
    "the sound",
    "that building",
    "the square",
    "a late bus",
    "the rain",
    "my notebook",
    "the first take",
)
_VERBS = (
    "changes everything",
    "feels different",
    "has its own rhythm",
    "keeps surprising me",
    "is never the same",
    "tells you a lot",
    "gets louder",
    "slows right down",
    "matters more than you think",
    "comes back every year",
    "sounds completely different",
    "makes me smile",
    "is hard to describe",
    "stays with you",
    "was a real shock",
    "takes a while to notice",
    "fills the whole room",
    "is worth waiting for",
)
_WHEN = (
    "after dark",
    "in the winter",
    "every single day",
    "if you pay attention",
    "at the weekend",
    "when it rains",
    "around midnight",
    "in the end",
    "most of the time",
    "for a while",
    "on a good night",
    "early on",
    "these days",
    "from the start",
    "now and then",
)
_OPEN = ("Honestly", "You know", "I mean", "To be fair", "Funny enough", "Mind you", "Look")
_TEMPLATES = (
    "I think {n} {v} {w}.",
    "{o}, {n} {v}.",
    "When you listen to {n}, you start to notice {n2} {w}.",
    "That reminds me of {n} {w}.",
    "For me {n} {v}, and {n2} {v2}.",
    "{o}, I never expected that {n} {v2} {w}.",
    "And {n}? It {v} {w}.",
)


@dataclass(frozen=True)
class SyntheticEpisode:
    """The episode, the facts it holds and the segment index of each fact."""

    episode: Episode
    facts: tuple[Fact, ...]
    fact_segments: tuple[int, ...]

    def fact_segment(self, i: int) -> Segment:
        return self.episode.segments[self.fact_segments[i]]


def _filler(rng: random.Random) -> str:
    n, n2 = rng.sample(_NOUNS, 2)
    v, v2 = rng.sample(_VERBS, 2)
    sentence = rng.choice(_TEMPLATES).format(
        n=n, n2=n2, v=v, v2=v2, w=rng.choice(_WHEN), o=rng.choice(_OPEN)
    )
    return sentence[0].upper() + sentence[1:]


def _timed(text: str, start: float, rng: random.Random) -> tuple[float, tuple[Word, ...]]:
    """A speaking time for ``text`` and word timings that are *not* even by characters."""
    words = text.split()
    weights = [(len(w) + 2) * rng.uniform(0.6, 1.4) for w in words]
    duration = len(words) / rng.uniform(2.3, 3.0)
    total = sum(weights)
    out, t = [], start
    for w, weight in zip(words, weights, strict=True):
        d = duration * weight / total
        out.append(Word(text=w, start=round(t, 3), end=round(t + d * 0.92, 3)))
        t += d
    return duration, tuple(out)


def synthetic_episode(
    *, minutes: float = 66.0, seed: int = 17, word_timings: bool = True
) -> SyntheticEpisode:
    """An episode of ``minutes`` with every :data:`FACTS` entry at its minute.

    ``word_timings`` gives every segment timed words (uneven, as real speech); without them a
    straddling segment is cut by the characters rule (see :mod:`lexperience.episode.segments`).
    """
    rng = random.Random(seed)
    facts = [f for f in FACTS if f.minute * 60 < minutes * 60 - 30]
    segments: list[Segment] = []
    fact_at: list[int] = []
    speakers = (HOST, GUEST, CALLER)
    t, turn, next_fact = 1.0, 0, 0
    while t < minutes * 60:
        if next_fact < len(facts) and t >= facts[next_fact].minute * 60:
            fact = facts[next_fact]
            speaker, text = fact.speaker, fact.text
            fact_at.append(len(segments))
            next_fact += 1
        else:
            if rng.random() < 0.35:
                turn += 1
            speaker = speakers[turn % 3] if rng.random() > 0.2 else HOST
            text = " ".join(_filler(rng) for _ in range(rng.choice((1, 1, 2))))
        duration, words = _timed(text, t, rng)
        segments.append(
            Segment(
                start=round(t, 3),
                end=round(t + duration, 3),
                text=text,
                speaker=speaker,
                words=words if word_timings else (),
            )
        )
        t += duration + rng.uniform(0.15, 0.9)
    episode = Episode(
        title="Listening After Dark",
        show="Slow Signals",
        host=HOST,
        guests=(GUEST, CALLER),
        duration=round(t, 3),
        segments=tuple(segments),
    )
    return SyntheticEpisode(episode, tuple(facts), tuple(fact_at))
