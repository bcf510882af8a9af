"""Rendering helpers: the visible "AI-generated" mark and MP4 writing (PyAV, ``media`` extra)."""

from .watermark import Watermark, draw_text

__all__ = ["Watermark", "draw_text"]
