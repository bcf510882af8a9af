"""Output: what a turn's frames and audio become outside the pipeline.

* :class:`Watermark`: the visible "AI-generated" mark the conversation stamps on every frame (a
  :class:`~lexperience.protocols.FrameFilter`).
* :class:`Mp4Writer` / :func:`write_mp4`: H.264 + AAC MP4 files with audio and video aligned from 0
  and the ``ai_generated`` metadata tag (PyAV, ``media`` extra).
* :class:`SegmentWriter`: one MP4 per reply sentence while the reply streams, for players that
  start early.
* :class:`VideoRecorder`: encodes a turn's audio and frames into one in-memory MP4 as they
  stream, in a worker thread, so a :class:`~lexperience.Reply` holds kilobytes of H.264 instead of
  hundreds of megabytes of raw frames.

The core calls these through small interfaces and never imports PyAV itself.
"""

from .mp4 import AI_GENERATED_TAG, Mp4Writer, write_mp4
from .segments import Segment, SegmentWriter
from .watermark import Watermark, draw_text

__all__ = [
    "AI_GENERATED_TAG",
    "Mp4Writer",
    "Segment",
    "SegmentWriter",
    "Watermark",
    "draw_text",
    "write_mp4",
]
