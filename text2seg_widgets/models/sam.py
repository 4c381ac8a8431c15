"""SAM v1 (``segment-anything``): a promptable segmenter and an automatic mask generator that
share one predictor, so an image is encoded once for every branch that uses SAM.

``SamSegmenter`` wraps :class:`segment_anything.SamPredictor`: :meth:`SamSegmenter.encode`
runs the ViT image encoder and returns an :class:`~text2seg_widgets.models.embedding.Embedding`
value, :meth:`SamSegmenter.use_embedding` installs one, and :meth:`SamSegmenter.set_image` does
both (a second call with an equal image, same shape and bytes, is free). Prompts (points, a box,
a previous low-res mask, or many boxes at once) are decoded against that embedding. ``SamMaskGenerator`` drives
:class:`segment_anything.SamAutomaticMaskGenerator` through the segmenter's predictor.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from text2seg_widgets.core.masks import mask_bbox_xywh
from text2seg_widgets.errors import InputError, MissingExtraError
from text2seg_widgets.models._validate import check_box, check_points, check_rgb, registry_sha256
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.models.embedding import Embedding, ModelIdentity, WeightsDigest, check_identity
from text2seg_widgets.models import sam_decoder
from text2seg_widgets.models.protocols import AutoMask, MaskPrediction

__all__ = ["SamSegmenter", "SamMaskGenerator", "SAM_ARCHS"]

log = logging.getLogger(__name__)

SAM_ARCHS = ("vit_b", "vit_l", "vit_h")
_BOX_CHUNK = 32  # boxes decoded per batch: bounds the memory of full-size mask upsampling


class SamSegmenter:
    """Promptable SAM with a cached image embedding.

    Args:
        sam: a built :class:`segment_anything.modeling.Sam` (any encoder size).
        name: the model name recorded in candidates.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``... (see :func:`models.device.resolve_device`).
        dtype: autocast dtype on CUDA (``"auto"`` = bf16/fp16); ignored on the CPU.
        weights_sha256: the weights' identity (a sha256 string or a :class:`WeightsDigest`); default:
            a digest of ``sam``'s state dict, computed when first needed.

    Embeddings are values (:class:`~text2seg_widgets.models.embedding.Embedding`): :meth:`encode`
    returns one without changing what the segmenter holds; :meth:`use_embedding` makes the
    segmenter decode against one; :meth:`set_image` is the two together, and a no-op when the
    segmenter already holds the embedding of equal pixels.
    """

    #: SAM takes point prompts (clicks) as well as boxes and masks.
    supports_points = True

    def __init__(self, sam: Sam, name: str = "sam", device: str | torch.device = "auto",
                 dtype: str | torch.dtype | None = "auto", weights_sha256: str | WeightsDigest | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = sam.to(self.device).eval()
        self.predictor = SamPredictor(self.model)
        self.name = name
        self.encoder_calls = 0
        self._weights = weights_sha256 if isinstance(weights_sha256, WeightsDigest) else (
            WeightsDigest(sha256=weights_sha256) if weights_sha256 else WeightsDigest(module=self.model))
        self._current: Embedding | None = None

    @property
    def input_size(self) -> int:
        """The side of the square the encoder sees (1024 for SAM): prompts on bigger images are
        decoded on windows about this size (:mod:`text2seg_widgets.imagery.windows`)."""
        return int(self.model.image_encoder.img_size)

    @classmethod
    def from_checkpoint(cls, path: str | Path, arch: str = "vit_b", device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = "auto", name: str | None = None,
                        weights_sha256: str | None = None) -> "SamSegmenter":
        """Build ``arch`` (vit_b / vit_l / vit_h) and load an official SAM checkpoint file. The
        weights' identity is ``weights_sha256``, else the registry's sha256 for a spec of this name
        and file size, else the file's sha256 (computed when first needed)."""
        if arch not in SAM_ARCHS:
            raise InputError(f"unknown SAM architecture {arch!r}; use one of {', '.join(SAM_ARCHS)}")
        path = Path(path)
        if not path.is_file():
            raise InputError(f"SAM checkpoint {path} does not exist; fetch it with "
                             "`text2seg-widgets weights fetch sam-vit-b` (or -l / -h)")
        sam = sam_model_registry[arch](checkpoint=None)
        state = torch.load(path, map_location="cpu", weights_only=True)
        sam.load_state_dict(state)
        name = name or f"sam-{arch.replace('_', '-')}"
        known = weights_sha256 or registry_sha256(name, path)
        digest = WeightsDigest(sha256=known) if known else WeightsDigest(path=path)
        return cls(sam, name=name, device=device, dtype=dtype, weights_sha256=digest)

    def clone_for_prefetch(self) -> "SamSegmenter":
        """A segmenter sharing this one's model weights and identity but holding its own image:
        encode the next image on it in a background thread while this one keeps decoding."""
        return SamSegmenter(self.model, name=self.name, device=self.device, dtype=self.dtype,
                            weights_sha256=self._weights)

    # -- embeddings --------------------------------------------------------------------------
    @property
    def identity(self) -> ModelIdentity:
        """Weights sha256 + preprocessing: what an embedding must match to be decoded here."""
        enc = self.model.image_encoder
        mean = ",".join(f"{v:g}" for v in self.model.pixel_mean.flatten().tolist())
        std = ",".join(f"{v:g}" for v in self.model.pixel_std.flatten().tolist())
        prep = f"segment_anything ResizeLongestSide({enc.img_size}) mean={mean} std={std} pad"
        return ModelIdentity(self.name, self._weights.value, prep)

    @property
    def embedding(self) -> Embedding | None:
        """The embedding prompts are decoded against now (None before any image)."""
        return self._current

    def _pixels(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """The encoder input, as ``SamPredictor.set_image`` builds it, and the resized (h, w)."""
        resized = self.predictor.transform.apply_image(image)
        t = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
        return self.model.preprocess(t), (int(t.shape[-2]), int(t.shape[-1]))

    def encode_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
        """Embeddings of ``images`` (each (H, W, 3) uint8) from ONE encoder pass; each image counts
        as one encoder call. Changes nothing the segmenter holds."""
        images = [check_rgb(img, "SAM") for img in images]
        if not images:
            return []
        identity = self.identity
        inputs = [self._pixels(img) for img in images]
        with torch.no_grad(), autocast(self.device, self.dtype):
            # only the encoder runs in reduced precision: the decoder is cheap and float32 keeps
            # every later step (mask generation, NMS, stability scores) in one dtype
            feats = self.model.image_encoder(torch.cat([p for p, _ in inputs])).float()
        self.encoder_calls += len(images)
        log.debug("%s: encoded %d image(s)", self.name, len(images))
        return Embedding.batch(feats, identity, images, [resized for _, resized in inputs])

    def encode(self, image: np.ndarray) -> Embedding:
        """The embedding of ``image`` ((H, W, 3) uint8 RGB); changes nothing the segmenter holds."""
        return self.encode_batch([image])[0]

    def use_embedding(self, embedding: Embedding) -> None:
        """Decode later prompts against ``embedding``; :class:`InputError` if another model (weights
        or preprocessing) made it. Counts no encoder call."""
        enc = self.model.prompt_encoder
        check_identity(self.identity, embedding, (1, enc.embed_dim, *enc.image_embedding_size))
        expected = ResizeLongestSide.get_preprocess_shape(*embedding.input_hw, self.model.image_encoder.img_size)
        if tuple(expected) != embedding.resized_hw:
            raise InputError(f"embedding of a {embedding.input_hw} image says it was resized to "
                             f"{embedding.resized_hw}, but this model resizes it to {tuple(expected)}; re-encode it")
        pred = self.predictor
        pred.reset_image()
        pred.original_size, pred.input_size = embedding.input_hw, embedding.resized_hw
        pred.features = embedding.features.to(self.device, torch.float32)
        pred.is_image_set = True
        self._current = embedding

    # -- image -------------------------------------------------------------------------------
    @property
    def image_hw(self) -> tuple[int, int]:
        if self._current is None:
            raise InputError("no image is set; call set_image(image) before predicting")
        return self._current.input_hw

    def is_set(self, image: np.ndarray) -> bool:
        """Whether ``image`` (by shape and bytes) is the one whose embedding is cached."""
        return self._current is not None and self._current.matches(image)

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` ((H, W, 3) uint8 RGB) and use it, unless it is the image already set."""
        check_rgb(image, "SAM")
        if self.is_set(image):
            return
        self.use_embedding(self.encode(image))

    # -- grid decoding (the automatic mask generator): stateless, against given features --------
    @property
    def mask_threshold(self) -> float:
        """Logits above this are mask pixels."""
        return float(self.model.mask_threshold)

    @property
    def low_res_ratio(self) -> float:
        """Low-res logits pixels per encoder-input pixel (256 / 1024 for SAM)."""
        return sam_decoder.low_res_ratio(self.model)

    def decode_grid(self, features: torch.Tensor, hw: tuple[int, int], prompts: np.ndarray, *,
                    boxes: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, low, low) float32 logits and (B, K) predicted IoU for B point prompts (K = 3,
        SAM's multimask answer) or B xyxy boxes (K = 1) in pixels of an ``hw`` image whose
        embedding ``features`` are (1, C, h, w) on this device. Holds nothing."""
        transform = self.predictor.transform
        scaled = transform.apply_boxes(prompts, hw) if boxes else transform.apply_coords(prompts, hw)
        t = torch.as_tensor(scaled, dtype=torch.float32, device=self.device)
        if boxes:
            sparse, dense = self.model.prompt_encoder(points=None, boxes=t, masks=None)
        else:
            labels = torch.ones((len(t), 1), dtype=torch.int, device=self.device)
            sparse, dense = self.model.prompt_encoder(points=(t[:, None, :], labels), boxes=None, masks=None)
        return sam_decoder.decode(self.model, features, sparse, dense, multimask=not boxes)

    def upsample_logits(self, low: torch.Tensor, hw: tuple[int, int], resized_hw: tuple[int, int]) -> torch.Tensor:
        """(N, 1, low, low) logits -> (N, 1, H, W) logits of the ``hw`` image (resized to
        ``resized_hw`` before padding), exactly as ``predict`` makes its masks."""
        return self.model.postprocess_masks(low.to(self.device).float(), resized_hw, hw)

    def reset_image(self) -> None:
        """Forget the cached embedding (frees its memory)."""
        self.predictor.reset_image()
        self._current = None

    # -- prompts -----------------------------------------------------------------------------
    def _mask_input(self, mask_input: np.ndarray | None) -> torch.Tensor | None:
        if mask_input is None:
            return None
        side = 4 * self.model.prompt_encoder.image_embedding_size[0]
        arr = np.asarray(mask_input, dtype=np.float32)
        arr = arr.reshape(-1, *arr.shape[-2:])[:1]
        if arr.shape[-2:] != (side, side):
            raise InputError(f"mask_input must be a low-res logit mask of shape (1, {side}, {side}) as returned "
                             f"in MaskPrediction.low_res_logits, got {np.shape(mask_input)}")
        return torch.as_tensor(arr[None], device=self.device)

    def predict(self, *, points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> MaskPrediction:
        """Masks for one prompt: points (N, 2) xy with labels 1/0, a box xyxy, and/or a previous
        low-res logit mask. ``multimask`` returns SAM's three candidates, else the best one."""
        hw = self.image_hw
        if points is None and box is None and mask_input is None:
            raise InputError("give at least one prompt: points, a box or a mask_input")
        coords = labels = box_t = None
        transform = self.predictor.transform
        if points is not None:
            pts, lab = check_points(points, point_labels, hw, "SAM")
            coords = torch.as_tensor(transform.apply_coords(pts, hw), dtype=torch.float32,
                                     device=self.device)[None]
            labels = torch.as_tensor(lab, dtype=torch.int64, device=self.device)[None]
        if box is not None:
            b = check_box(box, hw, "SAM")
            if len(b) != 1:
                raise InputError(f"predict takes one box, got {len(b)}; use predict_boxes for several boxes")
            box_t = torch.as_tensor(transform.apply_boxes(b, hw), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            masks, scores, low = self.predictor.predict_torch(
                coords, labels, boxes=box_t, mask_input=self._mask_input(mask_input), multimask_output=multimask)
        return MaskPrediction(masks=masks[0].cpu().numpy().astype(bool),
                              scores=scores[0].float().cpu().numpy(),
                              low_res_logits=low[0].float().cpu().numpy())

    def predict_boxes(self, boxes: np.ndarray) -> MaskPrediction:
        """One mask per box for (N, 4) xyxy boxes, decoded in batches of 32; low_res_logits (N, 1, h, w)."""
        hw = self.image_hw
        arr = check_box(boxes, hw, "SAM") if np.size(boxes) else np.zeros((0, 4))
        if len(arr) == 0:
            h, w = hw
            return MaskPrediction(np.zeros((0, h, w), bool), np.zeros((0,), np.float32), None)
        out_m, out_s, out_l = [], [], []
        for start in range(0, len(arr), _BOX_CHUNK):
            chunk = torch.as_tensor(arr[start:start + _BOX_CHUNK], dtype=torch.float32, device=self.device)
            with torch.inference_mode():
                tb = self.predictor.transform.apply_boxes_torch(chunk, hw)
                masks, scores, low = self.predictor.predict_torch(None, None, boxes=tb, multimask_output=False)
            out_m.append(masks[:, 0].cpu().numpy().astype(bool))
            out_s.append(scores[:, 0].float().cpu().numpy())
            out_l.append(low.float().cpu().numpy())
        return MaskPrediction(np.concatenate(out_m), np.concatenate(out_s), np.concatenate(out_l))


class _SharedPredictor:
    """What ``SamAutomaticMaskGenerator`` sees as its predictor: the segmenter's own predictor,
    except that ``set_image`` and ``reset_image`` do nothing: :meth:`SamMaskGenerator.generate`
    sets the image on the segmenter (a no-op when it is already encoded) and keeps the embedding
    for the detector and heatmap branches."""

    def __init__(self, segmenter: SamSegmenter) -> None:
        self._segmenter = segmenter

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """The segmenter already holds this image's embedding."""

    def reset_image(self) -> None:
        """Keep the embedding."""

    def __getattr__(self, item: str) -> Any:
        return getattr(self._segmenter.predictor, item)


class SamMaskGenerator:
    """SAM automatic mask generation (a point grid over the image), sharing ``segmenter``'s
    embedding: generating masks for an image that the segmenter already encoded costs no encoder
    call. ``min_mask_region_area > 0`` needs OpenCV (``pip install opencv-python-headless``).

    ``full_resolution=False`` runs SAM's grid decoding, filtering and NMS at the encoder's input
    resolution (the image resized so its longest side is the encoder size, e.g. 1024 px for the
    official models) and upsamples only the kept masks (nearest) to the image size. That is much
    cheaper for images larger than the encoder input (and for the tiny test models) and loses no
    information the model has; ``True`` (default) is SAM's own behaviour. Areas
    (``min_mask_region_area``) are in pixels of the resolution the generator works at."""

    def __init__(self, segmenter: SamSegmenter, points_per_side: int = 32, pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95, min_mask_region_area: int = 0,
                 points_per_batch: int = 64, box_nms_thresh: float = 0.7, full_resolution: bool = True) -> None:
        if points_per_side < 1:
            raise InputError(f"points_per_side must be >= 1, got {points_per_side}")
        if min_mask_region_area > 0:
            try:
                import cv2  # noqa: F401
            except ImportError as exc:
                raise MissingExtraError("min_mask_region_area > 0 needs OpenCV: pip install "
                                        "opencv-python-headless, or set min_mask_region_area=0") from exc
        self.segmenter = segmenter
        self.name = segmenter.name
        self.points_per_side = points_per_side
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.min_mask_region_area = min_mask_region_area
        self.points_per_batch = points_per_batch
        self.box_nms_thresh = box_nms_thresh
        self.full_resolution = full_resolution

    @property
    def encoder_calls(self) -> int:
        return self.segmenter.encoder_calls

    def _generator(self) -> SamAutomaticMaskGenerator:
        gen = SamAutomaticMaskGenerator(
            self.segmenter.model, points_per_side=self.points_per_side, points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh, stability_score_thresh=self.stability_score_thresh,
            box_nms_thresh=self.box_nms_thresh, min_mask_region_area=self.min_mask_region_area)
        gen.predictor = _SharedPredictor(self.segmenter)
        return gen

    def _generate_small(self, image: np.ndarray) -> list[tuple[np.ndarray, dict[str, Any]]]:
        """Masks at the encoder input size (the predictor's ``input_size``), upsampled (nearest)."""
        from PIL import Image

        pred = self.segmenter.predictor
        sh, sw = (int(v) for v in pred.input_size)
        small = np.asarray(Image.fromarray(image).resize((sw, sh), Image.Resampling.BILINEAR))
        saved = pred.original_size
        pred.original_size = (sh, sw)  # predict_torch then returns masks at the small size
        try:
            records = self._generator().generate(small)
        finally:
            pred.original_size = saved
        h, w = image.shape[:2]
        rows = np.minimum((np.arange(h) + 0.5) * sh / h, sh - 1).astype(np.intp)
        cols = np.minimum((np.arange(w) + 0.5) * sw / w, sw - 1).astype(np.intp)
        return [(np.asarray(r["segmentation"], dtype=bool)[rows[:, None], cols[None, :]], r) for r in records]

    def generate(self, image: np.ndarray) -> list[AutoMask]:
        """All masks SAM finds on ``image`` (each (H, W) bool), sorted by predicted IoU (best first)."""
        check_rgb(image, "SAM mask generator")
        seg = self.segmenter
        seg.set_image(image)  # encodes only if the detector/heatmap branches have not already
        with torch.inference_mode():
            if self.full_resolution:
                pairs = [(np.asarray(r["segmentation"], dtype=bool), r) for r in self._generator().generate(image)]
            else:
                pairs = self._generate_small(image)
        masks = [AutoMask(mask=m, score=float(r["predicted_iou"]), bbox_xywh=mask_bbox_xywh(m))
                 for m, r in pairs if m.any()]
        masks.sort(key=lambda m: -m.score)
        return masks
