"""The local batch engine on real sample tiles with tiny models: stored candidates, agreement with
the pipeline and the scene runner, the manifest, tile batching, and rerunning a finished run."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from tests.engines.helpers import CLASSES, make_settings, new_project
from text2seg_widgets.engines import LocalEngine
from text2seg_widgets.engines.manifest import weights_record
from text2seg_widgets.engines.work import ImageJob, TileRunner, read_tiles
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.scene import open_scene
from text2seg_widgets.models import weights
from text2seg_widgets.pipeline.pipeline import Text2SegPipeline
from text2seg_widgets.engines.scene import segment_scene
from text2seg_widgets.store import Project


def test_candidates_are_stored_per_image_in_image_pixels(reference):
    report = reference.report
    assert (report.images_total, report.images_done, report.images_skipped, report.failures) == (4, 4, 0, {})
    assert report.tiles == 1 + 1 + 1 + 4 and report.tiles_skipped == 0
    total = 0
    with Project.open(reference.folder) as project:
        assert project.processed_images(report.run_id) == {im.id for im in project.images()}
        for image in project.images():
            cands = project.candidates(image.id)
            assert cands, f"no candidates stored for {image.path}"
            for rec in cands:
                assert rec.class_name in CLASSES.split(",")
                assert rec.run_id == report.run_id and rec.status == "proposed"
                assert rec.candidate.branch in ("detector", "heatmap")
                mask = rec.mask()
                assert mask.shape == (image.height, image.width)
                assert int(mask.sum()) == rec.candidate.area > 0
                x, y, w, h = rec.candidate.bbox
                assert 0 <= x and 0 <= y and x + w <= image.width and y + h <= image.height
            total += len(cands)
    assert total == report.candidates


def test_run_log_lists_each_image_with_its_stretch(reference):
    lines = [json.loads(s) for s in (Path(reference.report.log_dir) / "images.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).name for r in lines] == [p.name for p in reference.images]
    assert [r["tiles"] for r in lines] == [1, 1, 1, 4]
    for r in lines:
        assert r["error"] is None and r["run_id"] == reference.report.run_id
        assert r["stretch"]["method"] == "none" and r["stretch"]["bands"] == [1, 2, 3]  # uint8 PNGs
        assert len(r["stretch"]["low"]) == len(r["stretch"]["high"]) == 3


def test_one_tile_image_gets_exactly_the_pipelines_candidates(reference, engine_models):
    potsdam = reference.images[2]
    with open_scene(potsdam) as scene:
        rgb = scene.read_rgb()
    pipeline = Text2SegPipeline(engine_models, make_settings().classes, make_settings().config)
    expected = sorted((c.class_name, c.rle["counts"], round(c.score, 6)) for c in pipeline.run(rgb).candidates)
    assert expected and reference.candidates_by_path()[potsdam.name] == expected


def test_tiled_image_gets_segments_candidates(reference, engine_models, tmp_path):
    loveda = reference.images[3]
    settings = make_settings()
    pipeline = Text2SegPipeline(engine_models, settings.classes, settings.config)
    out = segment_scene(loveda, pipeline, tmp_path / "scene", tile_size=settings.tile_size,
                        overlap=settings.overlap, progress=False)
    assert out.n_tiles == 4
    expected = sorted((c.class_name, c.rle["counts"], round(c.score, 6)) for c in out.candidates)
    assert expected and reference.candidates_by_path()[loveda.name] == expected


def test_manifest_records_models_weights_thresholds_stretch_and_versions(reference):
    with Project.open(reference.folder) as project:
        (run,) = project.runs()
    m = run["manifest"]
    assert run["id"] == reference.report.run_id and run["finished_at"]
    assert len(m["fingerprint"]) == 16 and m["engine"] == "local" and m["device"] == "cpu"
    assert m["branches"] == ["detector", "heatmap"]
    assert m["settings"]["classes"]["building"] == ["building"] and "background" in m["settings"]["classes"]
    assert m["settings"]["pipeline"]["box_threshold"] == 0.35 and m["settings"]["pipeline"]["text_threshold"] == 0.25
    assert m["settings"]["tiling"] == {"tile_size": 640, "overlap": 64} and m["settings"]["stretch"] == "auto"
    assert m["models"]["segmenter"] == "tiny-sam" and set(m["weights"]) == set(m["models"])
    assert all(w["spec"] is None for w in m["weights"].values())  # tiny models: built in code
    for dist in ("torch", "transformers", "open_clip_torch", "segment-anything", "text2seg-widgets"):
        assert m["packages"][dist] == metadata.version(dist)
    on_disk = json.loads((Path(reference.report.log_dir) / "manifest.json").read_text())
    assert on_disk["fingerprint"] == m["fingerprint"]


def test_weights_record_has_the_checksum_of_the_file_loaded():
    record = weights_record({"segmenter": "litemedsam"})["segmenter"]
    spec = weights.get_spec("litemedsam")
    assert record["spec"] == "litemedsam" and record["recorded_sha256"] == spec.sha256
    (entry,) = record["files"].values()
    assert entry["sha256"] == spec.sha256 and entry["size"] == spec.size


def test_rerun_with_the_same_settings_skips_every_image(reference, engine_models):
    before = reference.candidates_by_path()
    engine = LocalEngine(make_settings(), models=engine_models, progress=False)
    with Project.open(reference.folder) as project:
        report = engine.run(project)
        assert len(project.runs()) == 1
    assert report.resumed and report.run_id == reference.report.run_id
    assert (report.images_skipped, report.images_done, report.tiles) == (4, 0, 0)
    assert engine.runner.calls == 0
    assert reference.candidates_by_path() == before


def test_resume_of_a_run_made_with_other_settings_is_refused(reference, engine_models):
    engine = LocalEngine(make_settings(config={"box_threshold": 0.5}), models=engine_models, progress=False)
    with Project.open(reference.folder) as project, pytest.raises(InputError, match="pipeline"):
        engine.run(project, resume=reference.report.run_id)


def test_batched_tile_embeddings_give_the_same_candidates(reference, engine_models):
    job = ImageJob(1, str(reference.images[3]), 1024, 1024)
    settings = make_settings(tile_batch=4)
    tiles = list(read_tiles(job, settings))[:2]
    pipeline = Text2SegPipeline(engine_models, settings.classes, settings.config)
    seg = engine_models.segmenter
    batched = TileRunner(pipeline, settings)
    calls = seg.encoder_calls
    got = batched.run(tiles)
    assert batched.batcher is not None and batched.batcher.batches == 1
    assert seg.encoder_calls - calls == 2  # each tile encoded once, in one batch
    single = TileRunner(pipeline, make_settings())
    assert single.batcher is None
    for tile, result in zip(tiles, got):
        seg.reset_image()
        (want,) = single.run([tile])
        cands, want = result.candidates, want.candidates
        assert [(c.class_name, c.rle["counts"]) for c in cands] == [(c.class_name, c.rle["counts"]) for c in want]
        assert np.allclose([c.score for c in cands], [c.score for c in want], atol=1e-5)
    assert sum(len(r.candidates) for r in got) > 0


def test_a_window_of_a_scene_is_segmented_in_its_own_pixels(tmp_path, sample_images, engine_models):
    loveda = sample_images[3]
    with Project.create(tmp_path / "p") as project:
        image = project.add_image(loveda, window=(100, 200, 500, 400))
        report = LocalEngine(make_settings(), models=engine_models, progress=False).run(project)
        cands = project.candidates(image.id)
    assert report.images_done == 1 and report.tiles == 1 and cands
    with open_scene(loveda) as scene:
        crop = scene.read_rgb((100, 200, 500, 400))
    pipeline = Text2SegPipeline(engine_models, make_settings().classes, make_settings().config)
    want = sorted((c.class_name, c.rle["counts"]) for c in pipeline.run(crop).candidates)
    assert sorted((c.class_name, c.candidate.rle["counts"]) for c in cands) == want
    assert all(c.candidate.rle["size"] == [400, 500] for c in cands)


def test_explicit_image_ids_limit_the_run(tmp_path, sample_images, engine_models):
    folder = new_project(tmp_path / "p", sample_images[:2])
    with Project.open(folder) as project:
        first = project.images()[0].id
        report = LocalEngine(make_settings(), models=engine_models, progress=False).run(project, [first])
        assert project.processed_images(report.run_id) == {first}
        assert report.images_total == 1 and report.images_done == 1


def test_progress_totals_and_the_work_come_from_one_grid(sample_images):
    from text2seg_widgets.engines.work import ImageJob, plan_tiles, read_tiles

    loveda = sample_images[-1]
    settings = make_settings()
    for window in (None, (100, 50, 900, 700)):
        w, h = (1024, 1024) if window is None else window[2:]
        job = ImageJob(1, str(loveda), w, h, window)
        planned = plan_tiles(job, settings)
        read = [item.tile for item in read_tiles(job, settings)]
        assert planned == read and len(planned) == 4  # 640 px tiles, 64 px overlap: 2 x 2 either way
