"""Constants shared by the cloud tests and their fixtures (a module of its own: several test
folders have a ``conftest`` module, so importing from ``conftest`` is ambiguous)."""

#: Frames of the test clip: frame i is a flat grey of value CLIP_BASE + CLIP_STEP * i.
CLIP_FRAMES = 50
CLIP_BASE = 20
CLIP_STEP = 4
CLIP_FPS = 25
