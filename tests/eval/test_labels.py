"""Label loaders on every real sample, palettes, mapping files, and unknown codes/colours."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.labels import (LabelMapping, available_presets, find_label_files, load_label,
                                          load_mapping, read_raster)

ISPRS = ["impervious_surface", "building", "low_vegetation", "tree", "car", "clutter"]
LOVEDA = ["background", "building", "road", "water", "barren", "forest", "agriculture"]
ISPRS_COLOURS = [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)]


def _counts(a: np.ndarray) -> dict[int, int]:
    u, c = np.unique(a, return_counts=True)
    return dict(zip(u.tolist(), c.tolist()))


def test_presets_are_shipped_and_parse():
    assert set(available_presets()) >= {"loveda", "potsdam", "vaihingen", "epfl_roads", "isprs_rgb", "deepglobe"}
    assert load_mapping("loveda").classes == LOVEDA
    assert load_mapping("potsdam").classes == ISPRS == load_mapping("isprs_rgb").classes
    assert load_mapping("epfl_roads").encoding == "binary"
    assert load_mapping("loveda").class_index("River") == 3
    assert load_mapping("potsdam").class_index("Low vegetation") == 2
    assert load_mapping("potsdam").class_index("helicopter") is None


# LoveDA raw codes 1..7 become 0..6; 0 (no-data) would become 255. Counts per class, from the
# README's class shares (agri 47.5 %, forest 30.4 %, background 12 %, water 8.8 %, road/building < 1 %).
LOVEDA_EXPECTED = {
    "0": {0: 142441, 1: 14427, 2: 19208, 3: 3888, 6: 868612},
    "1": {0: 226400, 1: 3503, 2: 2485, 3: 244616, 5: 43126, 6: 528446},
    "2": {0: 8244, 3: 29109, 5: 914057, 6: 97166},
}


def test_loveda_samples_decode_to_the_documented_classes(rs_samples):
    files = find_label_files(rs_samples / "loveda" / "labels")
    assert sorted(files) == ["0", "1", "2"]
    total = {}
    for stem, path in files.items():
        label = load_label(path, "loveda")
        assert label.shape == (1024, 1024) and label.dtype == np.uint8
        assert _counts(label) == LOVEDA_EXPECTED[stem]
        for k, v in _counts(label).items():
            total[k] = total.get(k, 0) + v
    shares = {LOVEDA[k]: v / (3 * 1024 * 1024) for k, v in total.items()}
    assert shares["agriculture"] == pytest.approx(0.475, abs=0.001)
    assert shares["forest"] == pytest.approx(0.304, abs=0.001)
    assert shares["water"] == pytest.approx(0.088, abs=0.001)


@pytest.mark.parametrize("dataset, stem, expected", [
    ("potsdam", "2_10_0_0_512_512", {0: 100557, 1: 64023, 2: 34357, 3: 30670, 4: 7841, 255: 24696}),
    ("vaihingen", "area1_0_0_512_512", {0: 135362, 1: 79847, 2: 16532, 3: 4908, 4: 4212, 255: 21283}),
])
def test_isprs_index_crops_decode_to_the_documented_classes(rs_samples, dataset, stem, expected):
    files = find_label_files(rs_samples / dataset / "labels")
    assert list(files) == [stem]
    label = load_label(files[stem], dataset)
    assert label.shape == (512, 512)
    assert _counts(label) == expected  # impervious..car present, no clutter, boundary 0 -> ignore


def test_epfl_roads_binarise_at_127(rs_samples):
    files = find_label_files(rs_samples / "epfl_roads" / "labels")
    assert len(files) == 100
    shares = []
    for path in files.values():
        label = load_label(path, "epfl_roads")
        raw = read_raster(path)
        assert label.shape == (400, 400) and set(np.unique(label).tolist()) == {0, 1}
        assert np.array_equal(label == 1, raw > 127)
        shares.append(label.mean())
    # README: road covers 20 % of pixels on average, 0.5 %-44 % per tile
    assert np.mean(shares) == pytest.approx(0.20, abs=0.02)
    assert 0.004 <= min(shares) and max(shares) <= 0.45


def _isprs_colour_label(index_label: np.ndarray) -> np.ndarray:
    rgb = np.zeros(index_label.shape + (3,), np.uint8)  # ignore stays black
    for i, colour in enumerate(ISPRS_COLOURS):
        rgb[index_label == i] = colour
    return rgb


def test_isprs_palette_round_trip_on_the_real_potsdam_crop(rs_samples, tmp_path):
    index_label = load_label(rs_samples / "potsdam/labels/2_10_0_0_512_512.png", "potsdam")
    path = tmp_path / "potsdam_rgb.png"
    Image.fromarray(_isprs_colour_label(index_label)).save(path)
    assert np.array_equal(load_label(path, "isprs_rgb"), index_label)


def test_unknown_palette_colours_are_reported_not_mapped(tmp_path):
    label = np.full((10, 10), 1, np.uint8)
    label[0, :7] = 4
    rgb = _isprs_colour_label(label)
    rgb[5, :3] = (12, 34, 56)
    rgb[9, :] = (200, 0, 0)
    path = tmp_path / "odd.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(InputError) as err:
        load_label(path, "isprs_rgb")
    message = str(err.value)
    assert "(200, 0, 0) 10 px, (12, 34, 56) 3 px" in message and "odd.png" in message
    assert "unknown='ignore'" in message
    decoded = load_label(path, "isprs_rgb", unknown="ignore")
    assert _counts(decoded) == {1: 80, 4: 7, 255: 13}


def test_unknown_index_codes_are_reported(tmp_path):
    raw = np.full((4, 4), 1, np.uint8)
    raw[0, 0] = 9
    raw[1, :2] = 0
    path = tmp_path / "l.png"
    Image.fromarray(raw).save(path)
    with pytest.raises(InputError, match=r"codes that mapping 'loveda' does not name: 9 \(1 px\)"):
        load_label(path, "loveda")
    assert _counts(load_label(path, "loveda", unknown="ignore")) == {0: 13, 255: 3}


def test_deepglobe_palette_and_palette_mode_png(tmp_path):
    colours = [(0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
    index = np.array([[0, 1, 2, 3], [4, 5, 6, 6]], np.uint8)  # 6 = black "unknown"
    img = Image.fromarray(index, mode="P")
    img.putpalette([c for col in colours for c in col] + [0, 0, 0])
    path = tmp_path / "dg.png"
    img.save(path)
    assert load_label(path, "deepglobe").tolist() == [[0, 1, 2, 3], [4, 5, 255, 255]]
    with pytest.raises(InputError, match="expects RGB colours"):
        load_mapping("deepglobe").decode(index)


def test_geotiff_label(rs_samples, tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    raw = read_raster(rs_samples / "loveda/labels/2.png")
    path = tmp_path / "2.tif"
    with rasterio.open(path, "w", driver="GTiff", width=1024, height=1024, count=1, dtype="uint8",
                       crs="EPSG:32650", transform=from_origin(500000, 3000000, 0.3, 0.3)) as dst:
        dst.write(raw, 1)
    assert _counts(load_label(path, "loveda")) == LOVEDA_EXPECTED["2"]


def test_mapping_files_yaml_and_json(tmp_path):
    spec = {"name": "mine", "encoding": "index", "classes": ["land", "water"],
            "values": {"0": "ignore", "10": "land", "20": "Water"}, "background": "land",
            "aliases": {"water": ["river", "Lake"]}}
    (tmp_path / "m.json").write_text(json.dumps(spec))
    (tmp_path / "m.yaml").write_text("encoding: index\nclasses: [land, water]\nvalues: {0: ignore, 10: land, 20: water}\n")
    for name in ("m.json", "m.yaml"):
        mapping = load_mapping(tmp_path / name)
        assert mapping.decode(np.array([[0, 10, 20]])).tolist() == [[255, 0, 1]]
    mapping = load_mapping(tmp_path / "m.json")
    assert mapping.background_index == 0 and mapping.class_index("lake") == 1
    identity = LabelMapping.identity(["x", "y"])
    assert identity.decode(np.array([[0, 1, 255]])).tolist() == [[0, 1, 255]]


@pytest.mark.parametrize("spec, message", [
    ({"encoding": "index", "classes": []}, "no 'classes'"),
    ({"encoding": "index", "classes": ["a"]}, "needs 'values'"),
    ({"encoding": "index", "classes": ["a"], "values": {1: "b"}}, "'b' is not one of the classes"),
    ({"encoding": "rle", "classes": ["a"]}, "index, palette or binary"),
    ({"encoding": "binary", "classes": ["a"]}, "exactly 2 classes"),
    ({"encoding": "palette", "classes": ["a"], "colors": {"a": [1, 2]}}, r"must be \[r, g, b\]"),
    ({"encoding": "palette", "classes": ["a", "b"], "colors": {"a": [1, 2, 3], "b": [1, 2, 3]}}, "two classes"),
    ({"encoding": "index", "classes": ["a", "A"], "values": {1: "a"}}, "unique"),
])
def test_bad_mappings(spec, message):
    with pytest.raises(InputError, match=message):
        load_mapping(spec)


def test_bad_paths_and_shapes(tmp_path):
    with pytest.raises(InputError, match="neither a preset"):
        load_mapping("no-such-mapping")
    with pytest.raises(InputError, match="no label files"):
        find_label_files(tmp_path)
    with pytest.raises(InputError, match="colour image but the mapping uses the 'index' encoding"):
        load_mapping("loveda").decode(np.dstack([np.zeros((2, 2)), np.ones((2, 2)), np.ones((2, 2))]))
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "a.tif").write_bytes(b"")
    with pytest.raises(InputError, match="share the stem 'a'"):
        find_label_files(tmp_path)
