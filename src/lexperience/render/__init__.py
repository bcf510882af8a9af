"""The portrait avatar's drawing: the built-in host, face location, the rig and its animation.

Output code (the watermark, MP4 and segment writers) lives in :mod:`lexperience.output`.
"""
