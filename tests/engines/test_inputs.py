"""Bad input to the batch path, the `pseudo-label` command, and LiteMedSAM as the segmenter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.engines.helpers import CLI_OPTIONS, make_settings, new_project
from text2seg_widgets.cli import main
from text2seg_widgets.engines import LocalEngine
from text2seg_widgets.engines.work import ImageJob, TileRunner, read_tiles
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.factory import load_models
from text2seg_widgets.pipeline.pipeline import Text2SegPipeline
from text2seg_widgets.store import Project

LITEMEDSAM = {"segmenter": "litemedsam", "detector": "tiny"}


def test_a_project_without_images_is_refused(tmp_path, engine_models):
    with Project.create(tmp_path / "p") as project, pytest.raises(InputError, match="no images"):
        LocalEngine(make_settings(), models=engine_models, progress=False).run(project)


def test_a_missing_image_file_is_named_with_the_fix(tmp_path, sample_images, engine_models):
    copy = tmp_path / "tile.png"
    shutil.copy(sample_images[0], copy)
    folder = new_project(tmp_path / "p", [copy, sample_images[1]])
    copy.unlink()
    with Project.open(folder) as project, pytest.raises(InputError, match="relink") as info:
        LocalEngine(make_settings(), models=engine_models, progress=False).run(project)
    assert "tile.png" in str(info.value)


def test_an_unreadable_image_is_recorded_as_failed_and_the_rest_is_stored(tmp_path, sample_images, engine_models):
    broken = tmp_path / "broken.png"
    shutil.copy(sample_images[0], broken)
    folder = new_project(tmp_path / "p", [broken, sample_images[1]])
    broken.write_bytes(b"not a png any more")
    with Project.open(folder) as project:
        bad, good = project.images()
        report = LocalEngine(make_settings(), models=engine_models, progress=False).run(project)
        assert set(report.failures) == {bad.id} and "broken.png" in report.failures[bad.id]
        assert report.images_done == 1 and project.candidates(good.id) and not project.candidates(bad.id)
        assert project.processed_images(report.run_id) == {good.id}  # the failed one is retried next time
    lines = [json.loads(s) for s in (Path(report.log_dir) / "images.jsonl").read_text().splitlines()]
    assert [(r["image_id"], r["error"] is None) for r in lines] == [(bad.id, False), (good.id, True)]


def test_unknown_image_ids_are_refused(tmp_path, sample_images, engine_models):
    folder = new_project(tmp_path / "p", sample_images[:1])
    with Project.open(folder) as project, pytest.raises(InputError, match="not in the project"):
        LocalEngine(make_settings(), models=engine_models, progress=False).run(project, [999])


def test_cli_adds_images_creates_the_project_and_prints_a_summary(tmp_path, sample_images):
    folder = tmp_path / "new-project"
    result = CliRunner().invoke(main, ["pseudo-label", str(folder), str(sample_images[0]), *CLI_OPTIONS,
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images_done"] == 1 and summary["engine"] == "local" and summary["candidates"] > 0
    with Project.open(folder) as project:
        assert [c.name for c in project.classes] == ["building", "road"]
        (image,) = project.images()
        assert len(project.candidates(image.id)) == summary["candidates"]
    again = CliRunner().invoke(main, ["pseudo-label", str(folder), *CLI_OPTIONS, "--no-progress"])
    assert again.exit_code == 0 and json.loads(again.stdout)["images_skipped"] == 1


@pytest.mark.parametrize("args, message", [
    (["pseudo-label", "{tmp}/nowhere"], "not a project"),
    (["pseudo-label", "{tmp}/p", "{tmp}/missing.png", "--classes", "building"], "not found"),
    (["pseudo-label", "{tmp}/p", "--workers", "2"], "--engine ray"),
    (["pseudo-label", "{tmp}/p", "{img}", "--classes", "building", "--models", "tiny", "--engine", "ray",
      "--ray-address", "localhost"], "host:port"),
])
def test_cli_bad_input_fails_with_a_message(tmp_path, sample_images, args, message):
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path, img=sample_images[0]) for a in args])
    assert result.exit_code != 0 and message in result.output


@pytest.mark.parametrize("args, message", [
    (["--tile-size", "4"], "overlap must be between 0 and tile_size - 1"),
    (["--models", "nonsense"], "unknown model preset 'nonsense'"),
    (["--overlap-rule", "priority"], "--class-priority"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_a_failed_run_that_created_the_project_leaves_none_behind(tmp_path, sample_images, args, message):
    options = [a for a in CLI_OPTIONS]
    for flag, value in zip(args[::2], args[1::2]):
        if flag in options:
            options[options.index(flag) + 1] = value
        else:
            options += [flag, value]
    folder = tmp_path / "new"
    result = CliRunner().invoke(main, ["pseudo-label", str(folder), str(sample_images[0]), *options, "--no-progress"])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output, result.output
    assert not folder.exists()
    existing = tmp_path / "existing-empty-folder"
    existing.mkdir()
    result = CliRunner().invoke(main, ["pseudo-label", str(existing), str(sample_images[0]), *options,
                                       "--no-progress"])
    assert result.exit_code == 1 and existing.is_dir() and list(existing.iterdir()) == []


def test_retry_advice_only_where_a_retry_can_help(tmp_path, sample_images):
    folder = tmp_path / "p"
    result = CliRunner().invoke(main, ["pseudo-label", str(folder), str(sample_images[0]), *CLI_OPTIONS,
                                       "--bands", "9,9,9", "--no-progress"])
    assert result.exit_code == 1
    assert "cannot be read with these settings or files" in result.output
    assert "again to retry" not in result.output
    assert "band index 9 is out of range" in (folder / "runs" / "run-1" / "images.jsonl").read_text()


def test_overlap_rule_reaches_the_pipeline(tmp_path, sample_images):
    folder = tmp_path / "p"
    result = CliRunner().invoke(main, ["pseudo-label", str(folder), str(sample_images[0]), *CLI_OPTIONS,
                                       "--overlap-rule", "priority", "--class-priority", "road, building",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    with Project.open(folder) as project:
        pipeline = project.runs()[0]["manifest"]["settings"]["pipeline"]
    assert pipeline["overlap"] == "priority" and pipeline["class_priority"] == ["road", "building"]


def test_litemedsam_alone_serves_no_text_branch(tmp_path, sample_images):
    folder = new_project(tmp_path / "p", sample_images[:1])
    settings = make_settings(models={"segmenter": "litemedsam"}, config={"branches": "auto"})
    with Project.open(folder) as project, pytest.raises(InputError, match="no branch can run"):
        LocalEngine(settings, progress=False).run(project)


def test_litemedsam_batch_run_with_a_detector(tmp_path, sample_images):
    """LiteMedSAM takes boxes only: it serves the detector branch (with a text detector, here a
    tiny Grounding DINO); the heatmap branch needs point prompts."""
    folder = new_project(tmp_path / "p", sample_images[2:3])
    settings = make_settings(models=LITEMEDSAM, config={"branches": ("detector",)})
    engine = LocalEngine(settings, progress=False)
    with Project.open(folder) as project:
        report = engine.run(project)
        assert report.images_done == 1 and not report.failures
        for image in project.images():
            cands = project.candidates(image.id)
            assert cands and all(c.candidate.model.endswith("+litemedsam") for c in cands)
            assert all(c.mask().shape == (image.height, image.width) and c.candidate.area > 0 for c in cands)
        manifest = project.runs()[0]["manifest"]
    seg = manifest["weights"]["segmenter"]
    assert seg["spec"] == "litemedsam" and seg["recorded_sha256"]
    assert list(seg["files"].values())[0]["sha256"] == seg["recorded_sha256"]


def test_litemedsam_batched_embeddings_match_one_by_one(sample_images):
    settings = make_settings(models=LITEMEDSAM, config={"branches": ("detector",)}, tile_batch=2)
    models = load_models(LITEMEDSAM, device="cpu")
    pipeline = Text2SegPipeline(models, settings.classes, settings.config)
    tiles = [next(read_tiles(ImageJob(i, str(p), 400, 400), settings)) for i, p in enumerate(sample_images[:2])]
    single = TileRunner(pipeline, make_settings(models=LITEMEDSAM, config={"branches": ("detector",)}))
    want = [single.run([t])[0].candidates for t in tiles]
    batched = TileRunner(pipeline, settings)
    got = [r.candidates for r in batched.run(tiles)]
    assert batched.batcher is not None and batched.batcher.batches == 1
    assert [[c.rle["counts"] for c in cs] for cs in got] == [[c.rle["counts"] for c in cs] for cs in want]
    assert sum(map(len, got)) > 0
