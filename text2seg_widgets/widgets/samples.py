"""Images for the notebooks when the user gives none: the shared real samples, a downloaded sample
scene (checksum-verified, cached), or, offline, a clearly labelled generated scene.

Resolution order of :func:`demo_images`: the user's folder; the real tiles in the shared data
folder (``$TEXT2SEG_SHARED_DATA`` or ``../shared/data`` beside the checkout); the sample scene in
the cache; a download of the sample scene (only with ``allow_download``); a generated scene.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SampleSource", "SAMPLE_SCENE", "shared_data_dir", "sample_scene", "generated_scene",
           "demo_images", "IMAGE_SUFFIXES"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
GENERATED_NAME = "GENERATED_sample_scene_not_real_imagery.png"


@dataclass(frozen=True)
class SampleSource:
    """Where a sample file comes from and how it is checked."""

    name: str
    url: str
    sha256: str
    size: int


#: Berkeley campus aerial photo (opengeos/data, images/berkeley.jpg at commit 8893548f).
SAMPLE_SCENE = SampleSource(
    name="berkeley_campus.jpg",
    url="https://github.com/opengeos/data/raw/8893548f/images/berkeley.jpg",
    sha256="e5b4009a0114b12cc56e91830e82be0c72f4d7b6b0393765af0f01fef120bbb2",
    size=425469,
)


def shared_data_dir() -> Path | None:
    """The shared data folder, if there is one (env var first, then beside the checkout/cwd)."""
    candidates = []
    env = os.environ.get("TEXT2SEG_SHARED_DATA")
    if env:
        candidates.append(Path(env))
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
                   Path.cwd().parent.parent / "shared" / "data"]
    for c in candidates:
        if (c / "rs-samples").is_dir() or (c / "scenes").is_dir():
            return c.resolve()
    return None


def default_cache_dir() -> Path:
    """``$TEXT2SEG_CACHE/samples``, else ``~/.cache/text2seg-widgets/samples``."""
    env = os.environ.get("TEXT2SEG_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "text2seg-widgets"
    return base / "samples"


def sample_scene(cache_dir: str | Path | None = None, *, allow_download: bool = False,
                 source: SampleSource = SAMPLE_SCENE) -> Path | None:
    """The sample scene from the cache, else downloaded (``allow_download``) and verified; None
    when it is not cached and cannot be fetched (offline)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dest = cache / source.name
    if dest.is_file():
        return dest
    if not allow_download:
        return None
    from text2seg_widgets.models.download import download_url

    try:
        return download_url(source.url, dest, sha256=source.sha256, size=source.size, progress=False)
    except Exception as exc:  # offline, proxy, checksum: fall back to the generated scene
        log.warning("could not fetch the sample scene from %s (%s); using a generated scene", source.url, exc)
        return None


def generated_scene(folder: str | Path, size: tuple[int, int] = (640, 480), seed: int = 0) -> Path:
    """Write (once) a synthetic 'aerial' scene: roofs, roads, a pond on grass, with the words
    GENERATED SCENE on it so that nobody mistakes it for real imagery."""
    path = Path(folder) / GENERATED_NAME
    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.clip(rng.normal([92, 128, 70], 12, size=(h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, int(h * 0.45), w, int(h * 0.45) + 28], fill=(120, 120, 125))
    draw.rectangle([int(w * 0.6), 0, int(w * 0.6) + 24, h], fill=(125, 125, 128))
    draw.ellipse([40, 40, 200, 150], fill=(40, 70, 120))
    for _ in range(14):
        x, y = int(rng.integers(230, w - 60)), int(rng.integers(20, h - 60))
        if abs(y - h * 0.45) < 60 or abs(x - w * 0.6) < 60:
            continue
        color = (170, 60, 50) if rng.random() < 0.5 else (210, 210, 205)
        draw.rectangle([x, y, x + int(rng.integers(25, 50)), y + int(rng.integers(20, 40))], fill=color)
    draw.rectangle([0, h - 22, w, h], fill=(0, 0, 0))
    draw.text((8, h - 18), "GENERATED SCENE - not real imagery (offline fallback)", fill=(255, 255, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def demo_images(user_folder: str | Path | None = None, *, work_dir: str | Path = ".",
                limit: int = 3, allow_download: bool = False) -> tuple[list[Path], str]:
    """Images to annotate and a sentence saying where they come from (for the notebook)."""
    if user_folder:
        folder = Path(user_folder)
        found = _images_in(folder) if folder.is_dir() else []
        if found:
            return found[:limit] if limit else found, f"your images in {folder}"
        log.warning("no images in %s; using sample images", folder)
    shared = shared_data_dir()
    if shared is not None:
        picks: list[Path] = []
        for sub in ("potsdam", "loveda", "vaihingen", "epfl_roads"):
            d = shared / "rs-samples" / sub / "images"
            if d.is_dir():
                picks += _images_in(d)[:1]
        if picks:
            return picks[:limit], f"real sample tiles from {shared / 'rs-samples'}"
    scene = sample_scene(Path(work_dir) / ".samples", allow_download=allow_download)
    if scene is not None:
        return [scene], f"the sample scene {scene.name} (checksum-verified)"
    return [generated_scene(Path(work_dir))], "a GENERATED scene (offline, no sample data found): not real imagery"
