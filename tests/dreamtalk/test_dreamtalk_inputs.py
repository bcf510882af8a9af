"""The portrait crop (OpenCV instead of dlib), the style encoder's inputs, and dlib staying
optional."""

from __future__ import annotations

import numpy as np
import pytest

from lexperience._optional import is_installed
from lexperience.backends._dreamtalk_inputs import crop_box, crop_portrait, style_inputs
from lexperience.errors import InvalidInputError, MissingDependencyError
from lexperience.render.face import Box, find_face


def test_crop_box_lifts_widens_and_squares_the_face_box() -> None:
    # a 100 px face at (100, 100): 40% margin each side, centre lifted by 10 px
    assert crop_box(Box(100, 100, 100, 100), 1000, 1000) == (60, 50, 180)


def test_crop_box_shrinks_about_its_centre_at_the_image_edge() -> None:
    x, y, side = crop_box(Box(0, 0, 100, 100), 1000, 1000)
    assert (x, y, side) == (10, 0, 80)  # limited by the top edge (centre y = 40)
    x, y, side = crop_box(Box(880, 400, 100, 100), 1000, 1000)
    assert (x, side) == (860, 140)  # limited by the right edge (centre x = 930)


def test_the_crop_frames_the_face_like_dreamtalk(astronaut: np.ndarray) -> None:
    crop = crop_portrait(astronaut, name="astronaut", crop=True, detector="opencv")
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    face = find_face(crop)
    assert face is not None
    # DreamTalk's crop is 1.8 dlib face widths; a Haar box is about 1 / 0.866 of dlib's
    assert 256 / 1.8 / 0.866 * 0.8 < face.w < 256 / 1.8 / 0.866 * 1.2
    assert abs(face.cx - 128) < 20
    assert face.cy > 128  # the box was lifted: the face sits a little below the middle


def test_an_image_without_a_face_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="crop=False"):
        crop_portrait(
            np.full((400, 400, 3), 90, np.uint8), name="wall", crop=True, detector="opencv"
        )


def test_crop_false_only_resizes_a_square_crop(astronaut: np.ndarray) -> None:
    out = crop_portrait(astronaut, name="a", crop=False, detector="opencv")
    assert out.shape == (256, 256, 3)
    assert abs(out.astype(float).mean() - astronaut.astype(float).mean()) < 2.0


@pytest.mark.skipif(is_installed("dlib"), reason="checks the error when dlib is missing")
def test_dlib_is_optional(astronaut: np.ndarray) -> None:
    with pytest.raises(MissingDependencyError, match="dlib"):
        crop_portrait(astronaut, name="a", crop=True, detector="dlib")


def test_style_inputs_pad_mask_and_truncate() -> None:
    exp = np.ones((5, 64), np.float32)
    clip, mask = style_inputs(exp, 8)
    assert clip.shape == (8, 64) and clip[:5].sum() == 5 * 64 and clip[5:].sum() == 0
    assert mask.tolist() == [False] * 5 + [True] * 3
    long = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 64), np.float32)
    clip, mask = style_inputs(long, 8)
    assert (
        clip[:, 0].tolist() == list(range(8)) and not mask.any()
    )  # the first frames, as DreamTalk
