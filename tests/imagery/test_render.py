"""Colourised labels, blended overlays, the legend, and the window-by-window preview."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from text2seg_widgets.errors import InputError
from text2seg_widgets.export.previews import (PreviewCanvas, blend_overlay, colorize, draw_legend,
                                             overlay_with_legend, preview_shape)

COLORS = [(255, 0, 0), (0, 0, 255)]


def test_colorize_and_blend_values():
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    np.testing.assert_array_equal(colorize(labels, COLORS),
                                  [[[0, 0, 0], [255, 0, 0]], [[0, 0, 255], [0, 0, 0]]])
    rgb = np.full((2, 2, 3), 100, np.uint8)
    out = blend_overlay(rgb, labels, COLORS, alpha=0.5)
    assert out[0, 0].tolist() == [100, 100, 100] and out[1, 1].tolist() == [100, 100, 100]
    assert out[0, 1].tolist() == [178, 50, 50] and out[1, 0].tolist() == [50, 50, 178]
    with pytest.raises(InputError, match="differ in size"):
        blend_overlay(rgb, labels[:1], COLORS)


def test_legend_draws_each_class_colour():
    img = draw_legend(Image.new("RGB", (200, 50), (10, 10, 10)), ["building", "water"], COLORS)
    assert img.size == (200, 50 + 12 + 32)
    arr = np.array(img)
    legend = arr[50:]
    assert (legend == [255, 0, 0]).all(axis=-1).sum() > 50    # a red swatch
    assert (legend == [0, 0, 255]).all(axis=-1).sum() > 50    # a blue swatch
    assert (legend == [0, 0, 0]).all(axis=-1).sum() > 30      # text and outlines
    full = overlay_with_legend(np.zeros((40, 300, 3), np.uint8), np.ones((40, 300), np.uint8), ["a"], [(9, 9, 9)])
    assert full.size == (300, 40 + 12 + 16)


@pytest.mark.parametrize("w, h, side, expected", [(1000, 500, 100, (50, 100)), (30, 20, 100, (20, 30)),
                                                  (1, 100000, 2048, (2048, 1))])
def test_preview_shape(w, h, side, expected):
    assert preview_shape(w, h, side) == expected


def test_preview_from_windows_equals_one_decimated_pick():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (333, 517)).astype(np.uint8)
    rgb = rng.integers(0, 255, (333, 517, 3)).astype(np.uint8)
    canvas = PreviewCanvas(517, 333, max_side=100)
    for r in range(0, 333, 70):
        for c in range(0, 517, 90):
            canvas.paste(c, r, rgb=rgb[r:r + 70, c:c + 90], labels=labels[r:r + 70, c:c + 90])
    rows = ((np.arange(canvas.height) + 0.5) * 333 / canvas.height).astype(int)
    cols = ((np.arange(canvas.width) + 0.5) * 517 / canvas.width).astype(int)
    np.testing.assert_array_equal(canvas.labels, labels[np.ix_(rows, cols)])
    np.testing.assert_array_equal(canvas.rgb, rgb[np.ix_(rows, cols)])
    assert canvas.labels.shape == (64, 100)
