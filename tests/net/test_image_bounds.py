"""Every decoded image is bounded (sides, pixels, aspect) and normalised (mode, frame) before a model
sees it; refusals are ImageFetchError with a code the dialects map, never another exception."""

from __future__ import annotations

import io
import resource

import numpy as np
import pytest
from PIL import Image

from openmj.net import ImageFetchError, NetPolicy, decode_image, probe_image
from tests.images import bomb_png, png

POLICY = NetPolicy()


def thin_png(width: int, height: int) -> bytes:
    """A valid, tiny PNG of an extreme shape (661 bytes for 200000×1)."""
    return png(Image.new("L", (width, height), 128))


@pytest.mark.parametrize("size", [(200_000, 1), (20_000, 1), (1, 40_000), (17, 1), (5000, 100)])
def test_extreme_shapes_are_refused_by_their_header(size: tuple[int, int]) -> None:
    data = thin_png(*size)
    assert len(data) < 20_000  # cheap to send: the header, not the bytes, must stop it
    for check in (probe_image, decode_image):
        with pytest.raises(ImageFetchError) as err:
            check(data, POLICY)  # type: ignore[operator]
        assert err.value.code == "bad_dimensions" and err.value.kind == "too_large"
        assert f"{size[0]}x{size[1]}" in err.value.message


def test_sides_over_the_limit_are_refused_even_when_the_shape_is_fine() -> None:
    with pytest.raises(ImageFetchError) as err:
        probe_image(thin_png(16_385, 2_000), POLICY)
    assert err.value.code == "bad_dimensions" and "16384" in err.value.message


def test_decompression_bomb_is_refused_before_decoding() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageFetchError) as err:
        decode_image(bomb_png(60_000, 60_000), POLICY)
    assert err.value.code == "too_many_pixels"
    # 3.6 gigapixels were never allocated (the peak RSS grew by far less than one such plane)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB


@pytest.mark.parametrize("size", [(1792, 112), (112, 1792), (4, 64), (1, 1), (16_384, 1024)])
def test_shapes_within_the_limits_decode(size: tuple[int, int]) -> None:
    im = decode_image(thin_png(*size), POLICY)
    assert im.size == size and im.mode == "RGB"


def _save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_cmyk_jpeg_becomes_rgb() -> None:
    out = decode_image(_save(Image.new("CMYK", (32, 24), (0, 255, 255, 0)), "JPEG"), POLICY)
    assert out.mode == "RGB" and out.size == (32, 24)
    r, g, b = out.getpixel((16, 12))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta and yellow full: red


def test_sixteen_bit_png_keeps_its_levels() -> None:
    ramp = (np.arange(64 * 8, dtype=np.uint16).reshape(8, 64) * 128).astype(np.uint16)
    out = decode_image(_save(Image.fromarray(ramp), "PNG"), POLICY)
    arr = np.asarray(out)
    assert out.mode == "RGB"
    # Pillow's plain conversion clips 16-bit samples at 255 (a white picture); ours scales them
    assert arr[0, 0, 0] == 0 and 120 < arr[-1, -1, 0] < 255 and len(np.unique(arr[..., 0])) > 100


def test_palette_with_transparency_becomes_rgba() -> None:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 5, 10))
    out = decode_image(_save(im, "PNG", transparency=0), POLICY)
    assert out.mode == "RGBA"
    assert out.getpixel((1, 1)) == (0, 255, 0, 255) and out.getpixel((8, 1))[3] == 0  # type: ignore[index]


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = decode_image(data, POLICY)
    r, g, b = out.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50


def test_truncated_file_is_a_clean_refusal() -> None:
    data = png(Image.effect_noise((256, 256), 64))
    with pytest.raises(ImageFetchError) as err:
        decode_image(data[: len(data) // 2], POLICY)
    assert err.value.code == "unsupported_format"


def test_text_and_empty_bytes_are_refused() -> None:
    for data in (b"", b"hello", b"\x89PNG\r\n\x1a\n" + b"\0" * 40):
        with pytest.raises(ImageFetchError) as err:
            probe_image(data, POLICY)
        assert err.value.code == "unsupported_format"
