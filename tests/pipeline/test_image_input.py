import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.pipeline.image_input import as_rgb_uint8


def test_uint8_rgb_passes_through():
    img = np.arange(16 * 20 * 3, dtype=np.uint8).reshape(16, 20, 3)
    out = as_rgb_uint8(img)
    np.testing.assert_array_equal(out, img)


def test_grayscale_is_repeated():
    img = np.arange(10 * 12, dtype=np.uint8).reshape(10, 12)
    out = as_rgb_uint8(img)
    assert out.shape == (10, 12, 3)
    np.testing.assert_array_equal(out[..., 2], img)


def test_uint16_and_float_are_stretched_per_band():
    img = np.zeros((10, 10, 3), np.uint16)
    img[..., 0] = np.arange(100).reshape(10, 10) * 100  # 0 .. 9900
    img[..., 1] = 5000
    out = as_rgb_uint8(img)
    assert out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[9, 9, 0] == 255  # 2nd/98th percentiles -> 0/255
    assert (out[..., 1] == 0).all()  # constant band -> 0, no division by zero
    f = img.astype(np.float32) / 10000
    np.testing.assert_array_equal(as_rgb_uint8(f), out)


def test_nan_pixels_become_black_and_all_nan_is_refused():
    img = np.random.default_rng(1).random((12, 12, 3)).astype(np.float32)
    img[0, 0] = np.nan
    out = as_rgb_uint8(img)
    assert (out[0, 0] == 0).all()
    with pytest.raises(InputError, match="no finite pixel"):
        as_rgb_uint8(np.full((12, 12, 3), np.nan))


@pytest.mark.parametrize("img, message", [
    (np.zeros((1, 1, 3), np.uint8), "at least 8x8"),
    (np.zeros((32, 32, 4), np.uint8), "4 bands; choose 3"),
    (np.zeros((32, 32, 13), np.uint16), "13 bands"),
    (np.zeros((2, 32, 32, 3), np.uint8), "shape"),
    (np.zeros((32, 32, 3), bool), "not numeric"),
    ([[1, 2], [3, 4]], "numpy array"),
])
def test_refused_images(img, message):
    with pytest.raises(InputError, match=message):
        as_rgb_uint8(img)

