"""``text2seg-widgets embed PROJECT``: fill the persistent embedding cache for a project's images.

Each image is read exactly as the Annotator shows it (``Scene.pixels`` of its file and window, the
one reader of project pixels), so the Annotator's first click on it later loads the embedding from disk instead of encoding.
Resumable: images whose embedding the cache holds (checked, not just found) are skipped. Images are
claimed per process, so two ``embed`` runs on one project at once share the work. ``--engine ray`` spreads the
encoding over a Ray actor pool (one replica per GPU when there are GPUs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from text2seg_widgets.cli.common import PROJECT_LOCATION
from text2seg_widgets.cli.segment import parse_models
from text2seg_widgets.errors import InputError, Text2SegError

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["COMMANDS", "embed", "segmenter_spec"]

#: which weight spec is the segmenter of each preset (see models.factory)
_PRESET_SEGMENTER = {"default": "sam-vit-b", "offline": "litemedsam", "tiny": "tiny"}


def segmenter_spec(models_arg: str) -> dict[str, str]:
    """``{"segmenter": spec}`` from ``--models``: a preset, a weight spec name, or role=spec pairs."""
    parsed = parse_models(models_arg)
    if isinstance(parsed, dict):
        if "segmenter" not in parsed:
            raise click.BadParameter("give the segmenter, e.g. --models segmenter=sam-vit-b", param_hint="--models")
        return {"segmenter": parsed["segmenter"]}
    return {"segmenter": _PRESET_SEGMENTER.get(parsed, parsed)}


def _items(project: "Project", ids: list[int], failed: dict[Any, str], claim: Callable[[int], bool],
           elsewhere: list[int]) -> Iterator[Any]:
    """The project's images as :class:`EmbedItem` (pixels as the Annotator reads them); an image
    another ``embed`` holds (``claim`` says no) is passed over into ``elsewhere``."""
    import numpy as np

    from text2seg_widgets.engines.batching import EmbedItem
    from text2seg_widgets.imagery.scene import check_whole_image, open_scene

    for image_id in ids:
        if not claim(image_id):
            elsewhere.append(image_id)
            continue
        rec = project.image(image_id)
        try:
            check_whole_image(rec.width, rec.height, f"image {image_id} ({rec.path}) cannot be embedded whole",
                              "Add the scene as tiles instead: `text2seg-widgets project add-images PROJECT "
                              "FILE --tile 2048`, then embed those")
            with open_scene(rec.path) as scene:
                rgb = np.ascontiguousarray(scene.pixels(rec.window)[0])
        except (OSError, Text2SegError) as exc:
            failed[image_id] = f"cannot read {rec.path}: {exc}"
            continue
        yield EmbedItem(image_id, rgb, source=str(rec.path), window=rec.window)


def _run(proj: "Project", ids: list[int], failed: dict[Any, str], elsewhere: list[int], claim: tuple[str, str],
         cache: Any, spec: dict[str, str], engine: str, options: dict[str, Any], *, batch: int,
         progress: Any, verify: bool) -> Any:
    """Encode the images this process claims (locally or on Ray); returns the embed report."""
    from text2seg_widgets.engines.batching import RayEmbedder, embed_items

    holder, kind = claim
    items = _items(proj, ids, failed, lambda i: proj.claims.take(i, kind, holder), elsewhere)
    if engine == "ray":
        return RayEmbedder(spec, **options).run(items, cache, batch=batch, progress=progress, verify=verify)
    from text2seg_widgets.models.factory import load_models

    segmenter = load_models(spec, device=options["device"], dtype=options["dtype"]).segmenter
    if segmenter is None:
        raise InputError(f"the models {spec} hold no segmenter to embed with")
    return embed_items(segmenter, items, cache, batch=batch, progress=progress, verify=verify)


@click.command("embed")
@click.argument("project", type=PROJECT_LOCATION)
@click.option("--models", "models_arg", default="default", show_default=True,
              help="Preset (default: sam-vit-b, offline: litemedsam, tiny), a weight spec, or segmenter=SPEC.")
@click.option("--images", "image_keys", multiple=True, help="Only these images (id, file name or stem); repeatable.")
@click.option("--device", default="auto", show_default=True, help="auto (GPU when there is one), cpu, cuda, mps.")
@click.option("--dtype", default="auto", show_default=True, help="auto (bf16/fp16 on CUDA only), float32.")
@click.option("--batch", default=1, show_default=True, type=int, help="Images per encoder pass (4-8 on a GPU).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=None, help="Ray: actors (model replicas); default one per GPU.")
@click.option("--ray-address", default=None, help="Ray: cluster address host:port (default: a local Ray).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder (default $TEXT2SEG_EMBED_CACHE or <text2seg cache>/embeddings).")
@click.option("--cache-gb", type=float, default=None,
              help="Cache size limit in GB (default $TEXT2SEG_EMBED_CACHE_GB or 4).")
@click.option("--verify", is_flag=True,
              help="Re-read every cached entry in full (tensor checksum), not only its header; "
                   "damaged entries are dropped and re-encoded.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
def embed(project: str | Path, models_arg: str, image_keys: tuple[str, ...], device: str, dtype: str, batch: int,
          engine: str, workers: int | None, ray_address: str | None, cache_dir: Path | None,
          cache_gb: float | None, verify: bool, progress: bool) -> None:
    """Pre-compute the segmenter's image embeddings of every image of PROJECT into the persistent
    cache, so the Annotator's first click on each image is instant. Run it again after an
    interruption: it skips what the cache holds. Prints a JSON summary."""
    from tqdm import tqdm

    from text2seg_widgets.models.embedding_cache import EmbeddingCache
    from text2seg_widgets.store import Project
    from text2seg_widgets.store.claims import new_holder

    if engine == "local" and (workers is not None or ray_address is not None):
        raise click.UsageError("--workers and --ray-address need --engine ray")
    if batch < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch")
    spec = segmenter_spec(models_arg)
    if cache_gb is None and EmbeddingCache.from_env() is None:
        raise click.ClickException("the embedding cache is turned off (TEXT2SEG_EMBED_CACHE_GB=0); set that "
                                   "variable to a size in GB or give --cache-gb")
    try:
        cache = EmbeddingCache(cache_dir, max_gb=cache_gb)
        with Project.open(project) as proj:
            ids = [proj.find_image(k).id for k in image_keys] if image_keys else [r.id for r in proj.images()]
            failed: dict[Any, str] = {}
            elsewhere: list[int] = []
            bar = tqdm(total=len(ids), unit="image", file=sys.stderr, disable=not progress, desc="embed",
                       dynamic_ncols=True)
            holder, kind = new_holder(), f"embed:{spec['segmenter']}"
            try:
                with bar:
                    report = _run(proj, ids, failed, elsewhere, (holder, kind), cache, spec, engine,
                                  dict(device=device, dtype=dtype, workers=workers, address=ray_address),
                                  batch=batch, progress=bar.update, verify=verify)
            finally:
                proj.claims.release_all(holder)
    except Text2SegError as exc:
        raise click.ClickException(str(exc)) from exc
    report.failed.update(failed)
    summary = {**report.to_dict(), "elsewhere": len(elsewhere), "engine": engine, "segmenter": spec["segmenter"],
               "cache": str(cache.root), "cache_files": len(cache), "cache_bytes": cache.size_bytes()}
    click.echo(json.dumps(summary, indent=2))
    if report.failed:
        sys.exit(1)


COMMANDS = [embed]
