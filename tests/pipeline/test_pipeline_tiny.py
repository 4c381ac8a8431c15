"""The whole pipeline with tiny random models: call counts, records, label map, bad input."""

import numpy as np
import pytest

from tests.tiny_models import count_forwards, synthetic_rgb
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline

# Random weights give random scores: open every gate so each branch really produces candidates.
OPEN = dict(box_threshold=0.0, text_threshold=0.0, filter_min_probability=0.0,
            filter_min_similarity=-1.0, concept_threshold=0.0, heatmap_min_share=0.0, min_area=1)
CLASSES = "building: building, roof, house\nroad: road, street\nwater: water, lake"


def counters(m: ModelSet) -> dict[str, int]:
    return {"sam": m.segmenter.encoder_calls, "dino": m.detector.encoder_calls,
            "clip_image": m.clip.encoder_calls, "clip_text": m.clip.text_calls, "sam3": m.concept.encoder_calls}


def test_each_model_encodes_each_image_once(tiny_models):
    classes = ClassSet.parse(CLASSES, background=True)
    pipe = Text2SegPipeline(tiny_models, classes, PipelineConfig(**OPEN))
    assert pipe.branches == ("detector", "heatmap", "filter", "concept")
    images = [synthetic_rgb(96, 160, seed=s) for s in (11, 12)]
    before = counters(tiny_models)
    with count_forwards(tiny_models.segmenter.model.image_encoder) as sam_fw, \
            count_forwards(tiny_models.detector.model) as dino_fw:
        results = [pipe.run(img) for img in images]
    after = counters(tiny_models)
    delta = {k: after[k] - before[k] for k in after}
    n_crops = sum(len(r.by_branch["filter"]) for r in results)
    assert sam_fw[0] == 2 and delta["sam"] == 2  # detector, heatmap and filter share one embedding
    assert dino_fw[0] == 2 and delta["dino"] == 2  # all 7 prompts in one forward per image
    assert delta["sam3"] == 2
    assert delta["clip_text"] == 1  # text features once per class set, not per image
    # one surgery pass per image + one batched crop pass per image (<= 64 crops each)
    assert delta["clip_image"] == 2 + sum(1 for r in results if r.by_branch["filter"] or n_crops == 0)
    assert all(len(r.by_branch[b]) > 0 for r in results for b in ("detector", "heatmap", "filter"))


def test_candidates_are_consistent_records(tiny_models, tiny_image):
    classes = ClassSet.parse(CLASSES)
    # overlap="score" (not the default smaller-on-top): the label map check below is the score rule's
    res = Text2SegPipeline(tiny_models, classes, PipelineConfig(**OPEN, overlap="score")).run(tiny_image)
    h, w = tiny_image.shape[:2]
    assert res.label_map.shape == (h, w) and res.label_map.dtype == np.uint8
    assert res.score_maps.shape == (len(classes) + 1, h, w)
    assert res.candidates, "open gates must give candidates"
    prompts = {p for _, p in classes.prompt_table()}
    for c in res.candidates:
        mask = c.mask()
        assert mask.shape == (h, w) and mask.sum() == c.area > 0
        ys, xs = np.nonzero(mask)
        assert c.bbox == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert c.class_name in classes.names and c.branch in pipe_branches()
        assert c.prompt in prompts or c.branch == "heatmap"
        assert c.extra["votes"] == len(c.extra["branches"]) >= 1
    # the label map: each pixel takes the class of the best-scoring candidate covering it
    class_max = np.zeros((len(classes), h, w))
    for c in res.candidates:
        k = classes.names.index(c.class_name)
        class_max[k] = np.maximum(class_max[k], np.where(c.mask(), c.score, 0.0))
    labelled = res.label_map > 0
    np.testing.assert_array_equal(labelled, class_max.max(axis=0) > 0)
    chosen = np.take_along_axis(class_max, (res.label_map.astype(int) - 1).clip(0)[None], axis=0)[0]
    np.testing.assert_array_equal(chosen[labelled], class_max.max(axis=0)[labelled])


def pipe_branches():
    return {"detector", "heatmap", "filter", "concept"}


def test_filter_can_return_nothing(tiny_models, tiny_image):
    """An absolute similarity floor that no crop reaches: nothing is kept (no forced winner)."""
    cfg = PipelineConfig(branches=("filter",), filter_min_probability=0.0, filter_min_similarity=0.999)
    res = Text2SegPipeline(tiny_models, ClassSet.parse("building,road"), cfg).run(tiny_image)
    assert res.by_branch["filter"] == [] and res.candidates == [] and not res.label_map.any()


def test_background_wins_are_dropped(tiny_models, tiny_image):
    """Background prompts that equal the class prompt tie with it on every crop; ties go to
    background, so the filter keeps nothing even with every threshold open."""
    classes = ClassSet.from_names({"building": ["building"]}, background=["building"])
    cfg = PipelineConfig(branches=("filter",), filter_min_probability=0.0, filter_min_similarity=-1.0)
    res = Text2SegPipeline(tiny_models, classes, cfg).run(tiny_image)
    assert res.by_branch["filter"] == []
    open_cfg = PipelineConfig(branches=("filter",), filter_min_probability=0.0, filter_min_similarity=-1.0)
    res_no_bg = Text2SegPipeline(tiny_models, ClassSet.parse("building"), open_cfg).run(tiny_image)
    assert len(res_no_bg.by_branch["filter"]) > 0  # the same masks are kept without the background


def test_explicit_branch_without_its_model_is_refused(tiny_models):
    only_sam = ModelSet(segmenter=tiny_models.segmenter)
    with pytest.raises(InputError, match="needs the detector model"):
        Text2SegPipeline(only_sam, ClassSet.parse("building"), PipelineConfig(branches="detector"))
    with pytest.raises(InputError, match="no branch can run"):
        Text2SegPipeline(only_sam, ClassSet.parse("building"))
    with pytest.raises(InputError, match="unknown branch"):
        PipelineConfig(branches="detector,magic")


def test_auto_branches_follow_the_models(tiny_models):
    ms = ModelSet(segmenter=tiny_models.segmenter, clip=tiny_models.clip)
    assert Text2SegPipeline(ms, ClassSet.parse("building")).branches == ("heatmap",)


@pytest.mark.parametrize("image, message", [
    (np.zeros((1, 1, 3), np.uint8), "at least"),
    (np.zeros((64, 64, 4), np.uint8), "choose 3"),
    (np.full((64, 64, 3), np.nan, np.float32), "no finite"),
])
def test_bad_images_fail_before_the_models(tiny_models, image, message):
    pipe = Text2SegPipeline(tiny_models, ClassSet.parse("building"), PipelineConfig(**OPEN))
    before = counters(tiny_models)
    with pytest.raises(InputError, match=message):
        pipe.run(image)
    assert counters(tiny_models) == before


def test_grayscale_and_uint16_run(tiny_models):
    pipe = Text2SegPipeline(tiny_models, ClassSet.parse("water"), PipelineConfig(branches="detector,heatmap", **{
        k: v for k, v in OPEN.items()}))
    gray = synthetic_rgb(64, 80, seed=5)[..., 0]
    assert pipe.run(gray).label_map.shape == (64, 80)
    u16 = synthetic_rgb(64, 80, seed=6).astype(np.uint16) * 200
    assert pipe.run(u16).label_map.shape == (64, 80)


def test_box_outside_the_image_is_refused_before_decoding(tiny_models, tiny_image):
    seg = tiny_models.segmenter
    seg.set_image(tiny_image)
    with pytest.raises(InputError, match="outside the 200x120 image"):
        seg.predict(box=np.array([250.0, 10.0, 300.0, 50.0]))
    with pytest.raises(InputError, match="outside"):
        seg.predict_boxes(np.array([[0.0, 0.0, 10.0, 10.0], [10.0, 130.0, 20.0, 140.0]]))
    ok = seg.predict(box=np.array([-20.0, -5.0, 60.0, 40.0]))  # partly outside: clipped, fine
    assert ok.masks.shape[1:] == (120, 200)


def test_box_only_segmenter_does_not_serve_the_heatmap_branch(tiny_models):
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

    lite = LiteMedSamSegmenter.from_checkpoint(device="cpu")
    assert lite.supports_points is False and tiny_models.segmenter.supports_points is True
    ms = ModelSet(segmenter=lite, detector=tiny_models.detector, clip=tiny_models.clip)
    assert Text2SegPipeline(ms, ClassSet.parse("building")).branches == ("detector",)
    with pytest.raises(InputError, match="LiteMedSAM takes boxes only"):
        Text2SegPipeline(ms, ClassSet.parse("building"), PipelineConfig(branches="heatmap"))
