"""Where the notebooks' images come from: user folder, shared data, verified download, generated."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from text2seg_widgets.widgets import samples
from text2seg_widgets.widgets.samples import SampleSource, demo_images, generated_scene, sample_scene


def test_user_folder_comes_first(tmp_path: Path, rs_samples: Path) -> None:
    src = sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]
    shutil.copy(src, tmp_path / "a.png")
    images, where = demo_images(tmp_path, work_dir=tmp_path)
    assert images == [tmp_path / "a.png"] and "your images" in where


def test_shared_real_tiles_next(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEXT2SEG_SHARED_DATA", str(shared_data))
    images, where = demo_images(None, work_dir=tmp_path)
    assert len(images) == 3 and all(p.is_file() and shared_data in p.parents for p in images)
    assert "real sample tiles" in where


def test_sample_scene_download_is_checksum_verified(tmp_path: Path, shared_data: Path) -> None:
    real = shared_data / "scenes" / "berkeley_campus.jpg"
    digest = hashlib.sha256(real.read_bytes()).hexdigest()
    assert digest == samples.SAMPLE_SCENE.sha256 and real.stat().st_size == samples.SAMPLE_SCENE.size
    good = SampleSource("scene.jpg", real.as_uri(), digest, real.stat().st_size)
    assert sample_scene(tmp_path / "c1") is None  # not cached and no download allowed
    got = sample_scene(tmp_path / "c1", allow_download=True, source=good)
    assert got is not None and got.read_bytes() == real.read_bytes()
    bad = SampleSource("scene.jpg", real.as_uri(), "0" * 64, real.stat().st_size)
    assert sample_scene(tmp_path / "c2", allow_download=True, source=bad) is None  # mismatch: refused
    assert not (tmp_path / "c2" / "scene.jpg").exists()


def test_offline_without_data_uses_a_labelled_generated_scene(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(samples, "shared_data_dir", lambda: None)
    images, where = demo_images(None, work_dir=tmp_path)
    assert "GENERATED" in where and images[0].name.startswith("GENERATED")
    rgb = np.asarray(Image.open(images[0]))
    assert rgb.shape == (480, 640, 3) and rgb[-10:, :, :].mean() < 60  # the black caption band
    assert generated_scene(tmp_path) == images[0]  # written once
