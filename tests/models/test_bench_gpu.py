"""benchmarks/bench_gpu.py refuses clearly, and fast, on a machine without CUDA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_refuses_without_cuda():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # hide any GPU, so the refusal is tested everywhere
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py")], capture_output=True,
                          text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines == ["bench_gpu: CUDA is not available on this machine; run this benchmark on a machine with "
                     "an NVIDIA GPU"]
