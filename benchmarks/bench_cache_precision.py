"""What float32 embedding-cache entries cost against float16 (issue 15's identical-results choice).

The cache stores each embedding in float32 so that a decode from the cache is bit-identical to a
decode without it. This measures, for the SAM ViT-B / LiteMedSAM embedding shape (1, 256, 64, 64):
the file size, the time to write an entry (``put``: serialise, checksum, fsync, rename) and to read
one back verified (``get``), for the float32 format in use and for the float16 format it replaced
(same code path, the tensor cast to float16 before writing; read back and cast to float32).

    .venv/bin/python benchmarks/bench_cache_precision.py [--repeats 30]

Saves ``benchmarks/results/bench_cache_precision.json`` and prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "bench_cache_precision.json"


def _fp16_put(root: Path, k: int, features: torch.Tensor) -> Path:
    """The replaced format's write: float16 tensor + sha256, fsynced, renamed into place."""
    from safetensors.torch import save

    half = features.to(torch.float16).contiguous()
    data = save({"features": half}, metadata={"sha256": hashlib.sha256(half.numpy().tobytes()).hexdigest()})
    path = root / f"{k}.safetensors"
    tmp = root / f".tmp-{k}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def _fp16_get(path: Path) -> torch.Tensor:
    from safetensors.torch import load

    data = path.read_bytes()
    features = load(data)["features"]
    hashlib.sha256(features.numpy().tobytes()).hexdigest()
    return features.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    from text2seg_widgets.models.embedding import Embedding, ModelIdentity
    from text2seg_widgets.models.embedding_cache import EmbeddingCache

    gen = torch.Generator().manual_seed(0)
    identity = ModelIdentity("bench", "b" * 64, "resize-1024")
    puts32, gets32, puts16, gets16 = [], [], [], []
    max_diff = 0.0
    with tempfile.TemporaryDirectory() as d:
        cache = EmbeddingCache(Path(d) / "f32", max_gb=100)
        (Path(d) / "f16").mkdir()
        for k in range(args.repeats):
            feats = torch.randn(1, 256, 64, 64, generator=gen)
            emb = Embedding(feats, "bench", identity.weights_sha256, identity.preprocessing, (1024, 1024),
                            (1024, 1024), f"{k:032x}")
            t0 = time.perf_counter()
            path32 = cache.put(emb)
            t1 = time.perf_counter()
            got = cache.get(identity, f"{k:032x}")
            t2 = time.perf_counter()
            assert got is not None and torch.equal(got.features, feats)
            path16 = _fp16_put(Path(d) / "f16", k, feats)
            t3 = time.perf_counter()
            back16 = _fp16_get(path16)
            t4 = time.perf_counter()
            max_diff = max(max_diff, float((back16 - feats).abs().max()))
            puts32.append(t1 - t0)
            gets32.append(t2 - t1)
            puts16.append(t3 - t2)
            gets16.append(t4 - t3)
        size32, size16 = path32.stat().st_size, path16.stat().st_size

    def ms(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"p50_ms": round(statistics.median(xs) * 1e3, 2),
                "p95_ms": round(xs[int(0.95 * (len(xs) - 1))] * 1e3, 2)}

    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg": os.getloadavg()},
        "shape": [1, 256, 64, 64], "repeats": args.repeats,
        "float32": {"file_bytes": size32, "put": ms(puts32), "get": ms(gets32), "bit_identical": True},
        "float16": {"file_bytes": size16, "put": ms(puts16), "get": ms(gets16),
                    "max_abs_error": round(max_diff, 6)},
        "entries_per_gb": {"float32": int(1e9 // size32), "float16": int(1e9 // size16)},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
