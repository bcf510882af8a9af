"""Rendering helpers: the visible "AI-generated" mark and MP4 writing (PyAV, ``media`` extra)."""

from .segments import Segment, SegmentWriter
from .watermark import Watermark, draw_text

__all__ = ["Segment", "SegmentWriter", "Watermark", "draw_text"]
