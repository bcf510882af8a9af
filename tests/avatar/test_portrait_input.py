"""Portrait images of every kind: formats, bit depths, transparency, sizes, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.errors import ConfigurationError, InvalidInputError, LexperienceError
from lexperience.render.image import load_image

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def reference(astronaut: np.ndarray) -> PortraitAvatar:
    """The astronaut from a plain RGB array: where its mouth and eyes end up."""
    return PortraitAvatar(astronaut, seed=0)


def assert_same_face(avatar: PortraitAvatar, reference: PortraitAvatar, tol: float = 0.04) -> None:
    assert avatar.source == "photo"
    assert not avatar.fell_back
    a, b = avatar.layout, reference.layout
    limit = tol * avatar.size
    assert abs(a.mouth.cx - b.mouth.cx) < limit and abs(a.mouth.cy - b.mouth.cy) < limit
    for ea, eb in zip(a.eyes, b.eyes, strict=True):
        assert abs(ea.cx - eb.cx) < limit and abs(ea.cy - eb.cy) < limit
    assert avatar.preview().shape == (avatar.size, avatar.size, 3)


def no_face_image() -> np.ndarray:
    """A smooth gradient with blobs: plenty of texture, no face."""
    y, x = np.mgrid[0:400, 0:400].astype(np.float32)
    img = np.stack([x / 400 * 255, y / 400 * 255, (x + y) / 800 * 255], axis=2)
    rng = np.random.default_rng(0)
    for _ in range(12):
        cx, cy = rng.uniform(0, 400, 2).tolist()
        r = float(rng.uniform(10, 40))
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return img.astype(np.uint8)


def test_default_is_the_builtin_host() -> None:
    avatar = PortraitAvatar()
    assert avatar.source == "builtin"
    assert avatar.layout.found == {"face": True, "eyes": True, "mouth": True}
    assert avatar.preview().shape == (512, 512, 3)


def test_photo_path_finds_face_eyes_and_mouth(
    astronaut_png: Path, reference: PortraitAvatar
) -> None:
    avatar = PortraitAvatar(astronaut_png)
    assert avatar.layout.found == {"face": True, "eyes": True, "mouth": True}
    assert_same_face(avatar, reference, tol=0.01)
    left, right = avatar.layout.eyes
    assert left.cx < avatar.layout.mouth.cx < right.cx
    assert max(left.cy, right.cy) < avatar.layout.mouth.cy < avatar.layout.chin_y


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("PNG", "L"),  # grayscale
        ("JPEG", "CMYK"),  # CMYK JPEG (print workflows)
        ("PNG", "P"),  # palette
        ("BMP", "RGB"),
        ("WEBP", "RGB"),
        ("TIFF", "RGB"),
    ],
)
def test_image_formats(
    fmt: str,
    mode: str,
    astronaut: np.ndarray,
    encode: Callable[..., bytes],
    reference: PortraitAvatar,
    tmp_path: Path,
) -> None:
    path = tmp_path / f"portrait.{fmt.lower()}"
    path.write_bytes(encode(astronaut, fmt, mode))
    assert_same_face(PortraitAvatar(path), reference)


def test_exif_rotated_jpeg_is_turned_upright(
    astronaut: np.ndarray, encode: Callable[..., bytes], reference: PortraitAvatar
) -> None:
    stored = Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90)  # as a phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)
    image, _ = load_image(data)
    assert np.abs(image.astype(int) - astronaut.astype(int)).mean() < 5
    assert_same_face(PortraitAvatar(data), reference)


def test_16_bit_grayscale_png(
    astronaut: np.ndarray, reference: PortraitAvatar, tmp_path: Path
) -> None:
    gray = (astronaut.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    Image.fromarray(gray).save(path)  # mode I;16
    image, _ = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (512, 512, 3)
    assert abs(float(image.mean()) - float(gray.mean()) / 257) < 2
    assert_same_face(PortraitAvatar(path), reference)


def test_rgba_is_composited_on_the_background(
    astronaut: np.ndarray, encode: Callable[..., bytes], reference: PortraitAvatar
) -> None:
    alpha = np.full(astronaut.shape[:2], 255, np.uint8)
    alpha[:, :60] = 0  # a transparent strip on the left
    rgba = np.dstack([astronaut, alpha])
    data = encode(rgba, "PNG")
    image, name = load_image(data, background=(10, 200, 30))
    assert name == "<bytes>"
    assert tuple(image[100, 20]) == (10, 200, 30)
    assert tuple(image[100, 300]) == tuple(astronaut[100, 300])
    assert_same_face(PortraitAvatar(data), reference)


@pytest.mark.parametrize("kind", ["float", "uint16", "rgba", "gray"])
def test_numpy_arrays(kind: str, astronaut: np.ndarray, reference: PortraitAvatar) -> None:
    arrays = {
        "float": astronaut.astype(np.float32) / 255.0,
        "uint16": astronaut.astype(np.uint16) * 257,
        "rgba": np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)]),
        "gray": astronaut.mean(axis=2).astype(np.uint8),
    }
    assert_same_face(PortraitAvatar(arrays[kind]), reference)


def test_huge_image_is_downscaled_first(
    astronaut: np.ndarray, reference: PortraitAvatar, tmp_path: Path
) -> None:
    big = Image.fromarray(astronaut).resize((4096, 4096), Image.BILINEAR)
    path = tmp_path / "huge.jpg"
    big.save(path, quality=85)
    image, _ = load_image(path)
    assert max(image.shape[:2]) == 2048  # downscaled right after decoding
    avatar = PortraitAvatar(path)
    assert_same_face(avatar, reference, tol=0.05)


def test_no_face_raises_a_clear_error(tmp_path: Path, encode: Callable[..., bytes]) -> None:
    path = tmp_path / "landscape.png"
    path.write_bytes(encode(no_face_image(), "PNG"))
    with pytest.raises(InvalidInputError) as info:
        PortraitAvatar(path)
    message = str(info.value)
    assert "no face found" in message and str(path) in message
    assert "fallback_to_builtin=True" in message


def test_no_face_falls_back_to_the_host_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    avatar = PortraitAvatar(no_face_image(), fallback_to_builtin=True)
    assert avatar.source == "builtin" and avatar.fell_back
    assert avatar.fallback_reason is not None and "no face" in avatar.fallback_reason
    assert np.array_equal(avatar.preview(), PortraitAvatar().preview())
    assert any("built-in host" in r.getMessage() for r in caplog.records)


def test_tiny_image(astronaut: np.ndarray, encode: Callable[..., bytes], tmp_path: Path) -> None:
    path = tmp_path / "tiny.png"
    path.write_bytes(encode(Image.fromarray(astronaut).resize((40, 40)), "PNG"))
    with pytest.raises(InvalidInputError, match=r"only 40x40 pixels"):
        PortraitAvatar(path)
    avatar = PortraitAvatar(path, fallback_to_builtin=True)
    assert avatar.source == "builtin" and "40x40" in (avatar.fallback_reason or "")


def test_face_too_small(astronaut: np.ndarray) -> None:
    small = np.asarray(Image.fromarray(astronaut).resize((150, 150)))
    canvas = np.full((400, 400, 3), 236, np.uint8)
    canvas[100:250, 100:250] = small  # a 27-pixel face on a big canvas
    with pytest.raises(InvalidInputError, match=r"(only \d+ pixels wide|no face found)"):
        PortraitAvatar(canvas)


def test_non_image_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a picture\n" * 20)
    for fallback in (False, True):  # an unreadable file is an error even with the fallback
        with pytest.raises(InvalidInputError) as info:
            PortraitAvatar(path, fallback_to_builtin=fallback)
        assert str(path) in str(info.value)
        assert "cannot read" in str(info.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        PortraitAvatar(tmp_path / "nope.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        PortraitAvatar(empty)
    with pytest.raises(InvalidInputError, match="cannot read"):
        PortraitAvatar(b"\x89PNG\r\n\x1a\n garbage")


def test_bad_options() -> None:
    for kwargs in ({"fps": 0}, {"fps": 500}, {"size": 10}, {"size": 512.0}, {"batch_frames": 0}):
        with pytest.raises(ConfigurationError):
            PortraitAvatar(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(LexperienceError):
        PortraitAvatar(portrait=12345)  # type: ignore[arg-type]


def test_missing_opencv_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from lexperience.errors import MissingDependencyError
    from lexperience.render import image as image_module

    monkeypatch.setitem(sys.modules, "cv2", None)  # as if OpenCV were not installed
    monkeypatch.setattr(image_module, "_CV2", None)
    with pytest.raises(MissingDependencyError, match=r"lexperience\[portrait\]"):
        PortraitAvatar()


def test_the_same_portrait_is_analysed_once(astronaut: np.ndarray) -> None:
    photo = astronaut[:, ::-1].copy()  # a fresh portrait (mirrored), not in the cache yet
    first = PortraitAvatar(photo)
    second = PortraitAvatar(photo.copy(), fps=30)
    assert second._rig is first._rig  # detection, masks and warp fields are reused


def test_other_sizes(astronaut: np.ndarray) -> None:
    for size in (256, 720):
        avatar = PortraitAvatar(astronaut, size=size)
        assert avatar.preview().shape == (size, size, 3)
        assert 0.3 * size < avatar.layout.mouth.cy < 0.8 * size
        frames = avatar.idle_frames(0.2)
        assert frames[0].image.shape == (size, size, 3)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "PNG-alpha", "TIFF"])
def test_every_image_is_decoded_once(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from lexperience.render import image as image_module

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels)
    path = tmp_path / "p.img"
    if fmt == "PNG-alpha":
        Image.fromarray(np.dstack([pixels, np.full((80, 120), 255, np.uint8)])).save(path, "PNG")
    else:
        picture.save(path, fmt)
    cv2 = image_module.cv2_module()
    calls: list[int] = []
    real = cv2.imdecode

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(cv2, name)

        def imdecode(self, buf: np.ndarray, flags: int) -> np.ndarray:
            calls.append(flags)
            return real(buf, flags)

    monkeypatch.setattr(image_module, "_CV2", Counting())
    rgb, _ = load_image(path)
    assert len(calls) == 1 and rgb.shape == (80, 120, 3)


@pytest.mark.parametrize(("orientation", "expected"), [(1, (80, 120)), (3, (80, 120)),
                                                       (6, (120, 80)), (8, (120, 80))])  # fmt: skip
def test_tiff_orientation_is_applied(
    orientation: int, expected: tuple[int, int], tmp_path: Path
) -> None:
    from PIL import Image

    pixels = np.zeros((80, 120, 3), np.uint8)
    pixels[:10, :10] = 255  # a white corner, top left as stored
    path = tmp_path / "o.tiff"
    Image.fromarray(pixels).save(path, "TIFF", tiffinfo={274: orientation})
    rgb, _ = load_image(path)
    assert rgb.shape[:2] == expected
    corner = {1: (0, 0), 3: (-1, -1), 6: (0, -1), 8: (-1, 0)}[orientation]
    assert rgb[corner[0], corner[1]].mean() > 200  # the corner moved where the tag says
