"""``text2seg-widgets segment``: pseudo-label one image or scene into a folder (the work is
:func:`text2seg_widgets.engines.scene.segment_scene`)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from text2seg_widgets.cli.common import fusion_options, priority_list
from text2seg_widgets.errors import Text2SegError

__all__ = ["COMMANDS", "segment", "parse_classes", "parse_models"]

log = logging.getLogger(__name__)


def parse_classes(value: str, background: bool):
    """``--classes`` is a comma list or the path of a class file."""
    from text2seg_widgets.pipeline import ClassSet

    return ClassSet.from_arg(value, background=background or None)


def parse_models(value: str) -> str | dict[str, str]:
    """``--models`` is a preset (tiny, offline, default) or ``role=spec,role=spec``."""
    if "=" not in value:
        return value
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    return {k.strip(): v.strip() for k, v in pairs}


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--classes", "classes_arg", required=True,
              help="Comma list ('building,road,water') or a class file ('building: building, roof').")
@click.option("--background/--no-background", default=True, show_default=True,
              help="Add a background class for the CLIP branches to prefer over weak matches.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--models", "models_arg", default="default", show_default=True,
              help="Preset (default, offline, tiny) or role=spec pairs, e.g. segmenter=litemedsam.")
@click.option("--branches", default="auto", show_default=True,
              help="Comma list of detector, heatmap, filter, concept; 'auto' = all that the models allow.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps.")
@click.option("--dtype", default="auto", show_default=True, help="auto (bf16/fp16 on CUDA only), float32.")
@click.option("--bands", default=None, help="Band preset (rgb, nir-r-g) or 1-based indices '4,3,2'.")
@click.option("--tile-size", default=1024, show_default=True, type=int)
@click.option("--overlap", default=128, show_default=True, type=int)
@click.option("--vectors", type=click.Choice(["gpkg", "geojson"]), default=None, help="Also write polygons.")
@click.option("--stretch", default=None,
              help="auto, percentile, minmax, none, or a stretch.json from an earlier run (same colours).")
@click.option("--stitch", type=click.Choice(["hard", "soft"]), default="hard", show_default=True,
              help="hard: keep each tile's centre; soft: blend per-class scores across overlaps.")
@click.option("--gsd", type=float, default=None, help="Resample tiles to this ground sampling distance.")
@click.option("--box-threshold", default=0.35, show_default=True, type=float)
@click.option("--text-threshold", default=0.25, show_default=True, type=float)
@click.option("--min-area", default=16, show_default=True, type=int, help="Smallest candidate in pixels.")
@fusion_options
def segment(image: Path, classes_arg: str, background: bool, out_dir: Path, models_arg: str, branches: str,
            device: str, dtype: str, bands: str | None, tile_size: int, overlap: int, vectors: str | None,
            stretch: str | None, stitch: str, gsd: float | None, box_threshold: float, text_threshold: float,
            min_area: int, overlap_rule: str, class_priority: str) -> None:
    """Propose masks for IMAGE (PNG, JPEG or a GeoTIFF of any size) and write them to --out:
    scene_candidates.json (candidates with COCO RLE masks in scene pixels), labels.png/labels.tif
    (class index), overlay.png (with legend), stretch.json and optional vectors."""
    from text2seg_widgets.engines.scene import cached_encoder, segment_scene
    from text2seg_widgets.models.factory import load_models
    from text2seg_widgets.pipeline import PipelineConfig, Text2SegPipeline

    try:
        if not image.is_file():
            raise click.ClickException(f"image {image} does not exist")
        classes = parse_classes(classes_arg, background)
        config = PipelineConfig(branches=branches, box_threshold=box_threshold,
                                text_threshold=text_threshold, min_area=min_area, overlap=overlap_rule,
                                class_priority=priority_list(class_priority))
        start = time.perf_counter()
        models = load_models(parse_models(models_arg), device=device, dtype=dtype)
        pipeline = Text2SegPipeline(models, classes, config)
        loaded = time.perf_counter()
        outputs = segment_scene(image, pipeline, out_dir, bands=bands, tile_size=tile_size, overlap=overlap,
                                vectors=vectors, stretch=stretch, stitch=stitch, gsd=gsd, min_area_px=min_area,
                                progress=sys.stderr.isatty(), device=device, dtype=dtype,
                                encoder=cached_encoder(models))
    except Text2SegError as exc:
        _fail(exc)
    done = time.perf_counter()
    summary = {"image": str(image), "out": str(out_dir), "branches": list(pipeline.branches),
               "models": models.names(), "load_seconds": round(loaded - start, 3),
               "segment_seconds": round(done - loaded, 3)}
    summary.update({k: v for k, v in vars(outputs).items() if isinstance(v, (int, float, str, Path))})
    click.echo(json.dumps(summary, indent=2, default=str))


COMMANDS = [segment]
