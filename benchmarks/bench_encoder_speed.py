"""Where the time of a box on a never-seen scene window goes, and what a faster encoder would cost.

A box on a part of a scene that was never encoded waits for one LiteMedSAM encoder pass on its
256 px window (issue 17's goal: box -> mask on screen <= 1.5 s; the kernel spends ~0.8 s of that
on an idle machine, ~1.8 s while the tile server renders the pan's tiles). This measures the
encoder alone on real windows of the shared NAIP GeoTIFF, eager fp32 (what the tool runs) against
three ways to make it faster on the CPU, and what each changes:

* ``channels_last``: the same weights in NHWC memory order (exact);
* ``jit``: ``torch.jit.trace`` + ``optimize_for_inference`` (oneDNN fusions; exact to ~1e-6);
* ``bf16``: ``torch.autocast("cpu", bfloat16)`` (fast only on CPUs with AVX512-BF16 or AMX).

For each: median / min encode time over ``--repeats`` passes, the relative error of the embedding
against fp32, and the IoU of the box masks decoded from it against the fp32 masks (``--boxes``
boxes of 60-100 px at random places in random windows). Nothing here changes the tool: it says
whether a variant is worth making the default.

Usage: python benchmarks/bench_encoder_speed.py [--repeats 8] [--boxes 16]; saves
benchmarks/results/bench_encoder_speed.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from text2seg_widgets.core.masks import mask_iou
from text2seg_widgets.models.embedding import Embedding
from text2seg_widgets.models.factory import load_models
from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
NAIP = DATA / "geotiff" / "naip_m_4709963_se_14_1_20200831.tif"
RESULTS = ROOT / "benchmarks" / "results" / "bench_encoder_speed.json"
SIZE = 256


def windows(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random 256 px RGB windows of the NAIP tile."""
    with rasterio.open(NAIP) as src:
        out = []
        for _ in range(n):
            x, y = int(rng.integers(0, src.width - SIZE)), int(rng.integers(0, src.height - SIZE))
            out.append(np.ascontiguousarray(src.read((1, 2, 3), window=Window(x, y, SIZE, SIZE)).transpose(1, 2, 0)))
    return out


def timed(encoder: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> tuple[torch.Tensor, list[float]]:
    with torch.inference_mode():
        encoder(x)  # warm-up (and the jit's first optimising runs)
        encoder(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            y = encoder(x)
            times.append(time.perf_counter() - t0)
    return y.float(), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--boxes", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    seg = load_models("offline", device="cpu").segmenter
    if not isinstance(seg, LiteMedSamSegmenter):
        raise SystemExit(f"the offline models' segmenter is {type(seg).__name__}, not LiteMedSAM")
    encoder = seg.model.image_encoder.eval()
    images = windows(args.boxes, rng)
    inputs = [seg.preprocess(img) for img in images]
    x0 = inputs[0][0]

    def bf16(t: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return encoder(t)

    nhwc = copy.deepcopy(encoder).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        traced = torch.jit.optimize_for_inference(torch.jit.trace(copy.deepcopy(encoder), x0))
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "fp32 eager (the tool)": encoder,
        "channels_last": lambda t: nhwc(t.contiguous(memory_format=torch.channels_last)),
        "jit": traced,
        "bf16": bf16,
    }
    boxes = []
    for _ in images:
        w, h = (int(v) for v in rng.integers(60, 101, size=2))
        x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
        boxes.append(np.array([x, y, x + w, y + h], dtype=float))

    def masks(features: list[torch.Tensor]) -> list[np.ndarray]:
        out = []
        for feats, img, (_, resized), box in zip(features, images, inputs, boxes):
            seg.use_embedding(Embedding.batch(feats, seg.identity, [img], [resized])[0])
            out.append(np.asarray(seg.predict(box=box).masks)[0].astype(bool))
        return out

    rows: list[dict[str, object]] = []
    reference: list[torch.Tensor] = []
    ref_masks: list[np.ndarray] = []
    for name, fn in variants.items():
        _, times = timed(fn, x0, args.repeats)
        with torch.inference_mode():
            feats = [fn(t).float() for t, _ in inputs]
        if not reference:
            reference, ref_masks = feats, masks(feats)
        err = [float((f - r).norm() / r.norm()) for f, r in zip(feats, reference)]
        ious = [mask_iou(a, b) for a, b in zip(masks(feats), ref_masks)]
        median, fastest = round(1000 * float(np.median(times)), 1), round(1000 * min(times), 1)
        iou_mean, iou_min = round(float(np.mean(ious)), 4), round(float(min(ious)), 4)
        rows.append({"variant": name, "median_ms": median, "min_ms": fastest, "embedding_rel_error": round(max(err), 5),
                     "mask_iou_vs_fp32": {"mean": iou_mean, "min": iou_min}})
        print(f"{name:24s} median {median:7.1f} ms  min {fastest:7.1f} ms  embedding error {max(err):.5f}  "
              f"mask IoU vs fp32 mean {iou_mean:.4f} min {iou_min:.4f}")
    out = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "load_1min": os.getloadavg()[0]},
           "model": "LiteMedSAM image encoder, 256 px input, CPU", "windows": len(images),
           "repeats": args.repeats, "variants": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
