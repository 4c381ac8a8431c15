"""The whole pipeline on one CUDA GPU at real model sizes (random weights): a check meant to finish
in well under 8 minutes on a datacenter GPU.

Models (random weights, real sizes, built offline): SAM ViT-H and SAM ViT-B (segment_anything's
registry, no checkpoint), Grounding DINO Swin-T with a BERT-base text tower, CLIP ViT-B/16
(open_clip) and SAM 3 (transformers ``Sam3Config()``), all on ``cuda`` with bf16 autocast (the
adapters' ``dtype="auto"``). The automatic masks use the fast generator at its CUDA defaults
(32 x 32 grid, one crop layer).

Measured, for each SAM size:

- ``images_per_s``: 1024 px tiles of a 2048 x 2048 mosaic (four copies of the LoveDA tile, or a
  seeded synthetic image when the shared data is absent) through the one tile loop
  (:func:`text2seg_widgets.pipeline.tiles.segment_tiles`) with all four branches, ``--batch``
  tiles encoded per batch through the segmenter's ``encode_batch`` (tile batching);
- ``peak_gpu_gib``: ``torch.cuda.max_memory_allocated`` over that run;
- ``share``: seconds inside each model adapter call (CUDA synchronised; outermost calls only) and
  the rest, our own code (tiling, prompts, crops, RLE, fusion, merging);
- ``first_click_ms``: a fresh segmenter given a cached embedding (``use_embedding``) answering one
  point click, median of 20, synchronised.

As in ``bench_pipeline.py``, random weights make the detector and the mask generator unrealistically
prolific; detections are cut to the best 30 and automatic masks to the best 100 per tile
(``amg_max_masks``) so the work after them is a real run's amount.

On a machine without CUDA this script exits with status 2 and one line on stderr, before building
anything. Usage: ``python benchmarks/bench_gpu.py [--batch 4] [--budget-s 420]``; prints a table
and writes ``benchmarks/results/bench_gpu.json`` (and a copy under ``$OUT`` when that is set).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "bench_gpu.json"
CLASSES = "building: building, roof\nroad: road, street\nwater: water, river"
DEVICE = "cuda"
NO_CUDA = "bench_gpu: CUDA is not available on this machine; run this benchmark on a machine with an NVIDIA GPU"
METHODS = {
    "segmenter": ("encode_batch", "set_image", "predict", "predict_boxes"),
    "mask_generator": ("generate",),
    "detector": ("detect",),
    "clip": ("encode_text", "encode_crops", "similarity_map"),
    "concept": ("segment",),
}


def require_cuda() -> None:
    """Exit with status 2 and one line when there is no CUDA device (nothing is built first)."""
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        raise SystemExit(2)


class CudaMeter:
    """Times adapter calls with CUDA synchronisation; calls nested in a timed call are not counted twice."""

    def __init__(self) -> None:
        import torch

        self.sync = torch.cuda.synchronize
        self.depth = 0
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            outer = self.depth == 0
            if outer:
                self.sync()
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if outer:
                    self.sync()
                    self.seconds[key] += time.perf_counter() - start
        return timed

    def instrument(self, models: Any) -> None:
        for role, names in METHODS.items():
            obj = getattr(models, role)
            for name in names:
                if obj is not None and hasattr(obj, name):
                    setattr(obj, name, self.wrap(f"{role}.{name}", getattr(obj, name)))


def mosaic() -> Any:
    import numpy as np

    tile = SHARED / "rs-samples" / "loveda" / "images" / "0.png"
    if tile.is_file():
        from PIL import Image

        rgb = np.asarray(Image.open(tile).convert("RGB"))
        source = str(tile)
    else:
        rgb = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
        source = "synthetic (seed 0)"
    return np.ascontiguousarray(np.tile(rgb, (2, 2, 1))), source


def build_models(arch: str) -> Any:
    import torch
    from segment_anything import sam_model_registry

    from text2seg_widgets.models.fast_amg import FastMaskGenerator
    from text2seg_widgets.models.protocols import Detections
    from text2seg_widgets.models.sam import SamSegmenter
    from text2seg_widgets.models.tiny import real_size_random_model_set

    models = real_size_random_model_set(seed=0, device="cuda", sam3=True)
    torch.manual_seed(1)
    seg = SamSegmenter(sam_model_registry[arch](checkpoint=None), name=f"random-sam-{arch}", device="cuda")
    models.segmenter, models.mask_generator = seg, FastMaskGenerator(seg)  # CUDA defaults: 32 x 32, 1 crop layer
    detect = models.detector.detect

    def capped(*args: Any, **kwargs: Any) -> Any:
        found = detect(*args, **kwargs)
        return Detections(found.boxes[:30], found.scores[:30], list(found.phrases[:30]))

    models.detector.detect = capped
    return models


class BatchEncoder:
    """Tile batching: one ``encode_batch`` per batch of tiles, installed before each tile runs."""

    def __init__(self, segmenter: Any) -> None:
        self.segmenter = segmenter

    def encode(self, images: Any) -> Any:
        return self.segmenter.encode_batch(list(images))

    def install(self, image: Any, embedding: Any) -> None:
        self.segmenter.use_embedding(embedding)


def first_click_ms(segmenter: Any, image: Any) -> float:
    import numpy as np
    import torch

    emb = segmenter.encode(image)
    times = []
    for _ in range(20):
        segmenter.reset_image()
        torch.cuda.synchronize()
        start = time.perf_counter()
        segmenter.use_embedding(emb)
        segmenter.predict(points=np.array([[512.0, 512.0]]), point_labels=np.array([1]))
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def run_arch(arch: str, rgb: Any, batch: int) -> dict[str, Any]:
    import torch

    from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline
    from text2seg_widgets.pipeline.tiles import array_tiles, segment_tiles

    start = time.perf_counter()
    models = build_models(arch)
    load_s = time.perf_counter() - start
    pipeline = Text2SegPipeline(models, ClassSet.parse(CLASSES, background=True),
                                PipelineConfig(branches=("detector", "heatmap", "filter", "concept"), amg_max_masks=100))
    _ = pipeline.text_features
    warm = rgb[:1024, :1024].copy()
    pipeline.run(warm)  # warm-up: kernels, allocator, autotuning
    meter = CudaMeter()
    meter.instrument(models)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with array_tiles(rgb, tile_size=1024, overlap=0) as plan:
        results = list(segment_tiles(pipeline, plan, batch=batch, encoder=BatchEncoder(models.segmenter),
                                     device=DEVICE, dtype="auto"))
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    model_s = sum(meter.seconds.values())
    return {"sam": arch, "load_s": round(load_s, 1), "tiles": len(results), "batch": batch, "wall_s": round(wall, 2),
            "images_per_s": round(len(results) / wall, 3),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "share": {**{k: round(v / wall, 3) for k, v in sorted(meter.seconds.items())},
                      "our_code": round((wall - model_s) / wall, 3)},
            "seconds": {k: round(v, 3) for k, v in sorted(meter.seconds.items())},
            "candidates": sum(len(r.candidates) for r in results),
            "first_click_ms": first_click_ms(models.segmenter, warm)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4, help="tiles encoded per batch")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip ViT-B when ViT-H used more than this")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    require_cuda()
    sys.path.insert(0, str(ROOT))
    import torch

    rgb, source = mosaic()
    start = time.perf_counter()
    doc: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                           "image": f"2048x2048 mosaic of {source}", "runs": []}
    for arch in ("vit_h", "vit_b"):
        if time.perf_counter() - start > args.budget_s:
            doc["skipped"] = f"{arch}: time budget of {args.budget_s:.0f} s used up"
            break
        row = run_arch(arch, rgb, args.batch)
        doc["runs"].append(row)
        print(f"{arch}: {row['images_per_s']:.2f} images/s, peak {row['peak_gpu_gib']:.1f} GiB, first click "
              f"{row['first_click_ms']:.0f} ms, our code {100 * row['share']['our_code']:.0f} % of the time", flush=True)
        torch.cuda.empty_cache()
    doc["total_s"] = round(time.perf_counter() - start, 1)
    for path in [args.out] + ([Path(os.environ["OUT"]) / "bench_gpu.json"] if os.environ.get("OUT") else []):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
