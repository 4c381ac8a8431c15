"""The Ray engine on a local Ray instance with 2 CPUs: same candidates as the local engine,
resuming a local run, failed scenes retried and recorded, and addresses that do not answer.
One local Ray instance (2 CPUs) for the module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from tests.engines.helpers import candidates_by_path, make_settings, new_project
from text2seg_widgets.engines.ray_engine import RayEngine, check_address, init_local, worker_resources
from text2seg_widgets.errors import InputError, require
from text2seg_widgets.store import Project

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[object]:
    ray = require("ray", "ray")  # the ray extra is part of the test environment: fail loudly without it
    if ray.is_initialized():
        ray.shutdown()
    init_local(ray, attempts=3, num_cpus=2)  # Ray waits a fixed 30 s for its raylet: busy CI machines
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9"])
def test_an_address_that_does_not_answer_is_a_clear_error(tmp_path, sample_images, address):
    folder = new_project(tmp_path / "p", sample_images[:1])
    engine = RayEngine(make_settings(), address=address, connect_timeout=1.0, progress=False)
    with Project.open(folder) as project, pytest.raises(InputError, match="does not answer") as info:
        engine.run(project)
        assert not project.runs()  # nothing was started
    assert address in str(info.value) and "ray start --head" in str(info.value)


def test_an_address_that_is_not_host_port_is_refused():
    with pytest.raises(InputError, match="host:port"):
        check_address("my-cluster")


@pytest.mark.parametrize("cpus, gpus, device, workers, expected", [
    (2, 0, "cpu", 2, (2, 0.5, 0.0)),     # DESIGN.md: fractional CPUs, or the pool starves its feeders
    (2, 0, "auto", 1, (1, 1.0, 0.0)),
    (2, 0, "auto", None, (1, 1.0, 0.0)),
    (16, 0, "cpu", 4, (4, 3.75, 0.0)),
    (16, 4, "auto", None, (4, 1.0, 1.0)),  # one replica per GPU
    (16, 4, "cuda", 2, (2, 1.0, 1.0)),
])
def test_worker_resources(cpus, gpus, device, workers, expected):
    assert worker_resources(cpus, gpus, device, workers) == expected


def test_a_gpu_device_on_a_cluster_without_gpus_is_refused():
    with pytest.raises(InputError, match="no GPU|has none"):
        worker_resources(8, 0, "cuda", None)


def test_ray_engine_gives_the_local_engines_candidates(local_ray, tmp_path, reference):
    """Same images plus one broken file: the broken scene is retried, then recorded as failed;
    every other image gets exactly the local engine's candidates."""
    broken = tmp_path / "broken.png"
    shutil.copy(reference.images[0], broken)
    folder = new_project(tmp_path / "p", reference.images)
    with Project.open(folder) as project:
        project.add_image(broken, allow_duplicates=True)  # a copy, broken after it was added
    broken.write_bytes(b"truncated")
    engine = RayEngine(make_settings(), workers=2, max_retries=1, progress=False)
    with Project.open(folder) as project:
        report = engine.run(project)
        (run,) = project.runs()
        *good, bad = project.images()
        assert project.processed_images(report.run_id) == {im.id for im in good}
        assert not project.candidates(bad.id)
    assert report.engine == "ray" and report.images_done == 4 and set(report.failures) == {bad.id}
    assert report.tiles == reference.report.tiles and report.candidates == reference.report.candidates
    got = candidates_by_path(folder)
    assert got.pop("broken.png") == [] and got == reference.candidates_by_path()
    with Project.open(reference.folder) as project:
        local_manifest = project.runs()[0]["manifest"]
    assert run["manifest"]["fingerprint"] == local_manifest["fingerprint"]
    assert run["manifest"]["ray"]["workers"] == 2 and run["manifest"]["ray"]["cpus_per_worker"] == 0.5
    log_lines = (Path(report.log_dir) / "images.jsonl").read_text().splitlines()
    lines = {r["image_id"]: r for r in map(json.loads, log_lines)}
    assert lines[bad.id]["attempts"] == 2 and "broken.png" in lines[bad.id]["error"]
    assert all(lines[im.id]["attempts"] == 1 and lines[im.id]["error"] is None for im in good)


def test_ray_engine_continues_a_local_run(local_ray, reference):
    with Project.open(reference.folder) as project:
        report = RayEngine(make_settings(), workers=2, progress=False).run(project)
        assert len(project.runs()) == 1
    assert report.resumed and report.run_id == reference.report.run_id
    assert (report.images_skipped, report.images_done) == (4, 0)
