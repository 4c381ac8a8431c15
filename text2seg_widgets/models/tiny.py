"""Random-initialised models for tests, demos and benchmarks, built from configs offline.

.. warning:: Every model here has RANDOM weights. The masks, boxes, scores and heatmaps they
   produce are meaningless; they exercise shapes, call counts, data flow and timing only. Use
   real weights (``text2seg_widgets.models.factory.load_models("default")`` or ``"offline"``
   for LiteMedSAM) to get useful results.

``tiny_model_set()`` builds all five roles at toy sizes in a few seconds (a whole pipeline run on a
1024 x 1024 image takes seconds on a CPU); ``real_size_random_model_set()`` builds SAM ViT-B,
Grounding DINO Swin-T and CLIP ViT-B/16 at their real sizes for speed and memory benchmarks.

Pitfalls handled here (see DESIGN.md s5): Grounding DINO hard-codes BERT ids ([CLS]=101,
[SEP]=102, "."=1012, "?"=1029), so the local word-piece vocabulary keeps them at those ids, and it
needs at least 2 decoder layers; SAM 3 needs a CLIP BPE tokenizer, built here from the vocabulary
shipped inside the open_clip wheel; segment_anything's ``Sam`` is built from a tiny
``ImageEncoderViT``.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from text2seg_widgets.models.modelset import ModelSet

if TYPE_CHECKING:
    from text2seg_widgets.models.sam import SamSegmenter

__all__ = [
    "tiny_model_set",
    "real_size_random_model_set",
    "tiny_sam",
    "tiny_sam_segmenter",
    "tiny_mask_generator",
    "tiny_clip",
    "tiny_clip_model",
    "write_tiny_clip_dir",
    "TINY_CLIP_CONFIG",
    "tiny_grounding_dino",
    "tiny_sam3",
    "bert_vocab",
    "clip_bpe_tokenizer",
]

_WORDS = ("building", "buildings", "road", "roads", "water", "tree", "trees", "car", "cars", "roof",
          "house", "field", "grass", "river", "forest", "background", "the", "a", "of", "and")


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


@lru_cache(maxsize=1)
def bert_vocab() -> dict[str, int]:
    """A small uncased word-piece vocabulary that keeps Grounding DINO's hard-coded ids:
    [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, "."=1012, "?"=1029. Every lowercase
    ASCII word tokenizes (single characters and ``##``-continuations are all present)."""
    fixed = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}
    chars = string.ascii_lowercase + string.digits
    pieces = list(chars) + [f"##{c}" for c in chars] + list(",;:!-'\"()/&+") + list(_WORDS)
    queue = iter(pieces)
    tokens = [fixed.get(i) or next(queue, None) or f"[unused{i}]" for i in range(1030)]
    tokens += list(queue)
    return {tok: i for i, tok in enumerate(tokens)}


def clip_bpe_tokenizer() -> Any:
    """A transformers ``CLIPTokenizer`` with the real CLIP BPE vocabulary (from open_clip's wheel)."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    simple = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): v for k, v in simple.encoder.items()}
    merges = [tuple(pair) for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    # transformers hints merges as list[str]; its BPE loader takes (a, b) pairs as well
    return CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]  # transformers hints list[str]; its BPE loader takes pairs too


# -- SAM ---------------------------------------------------------------------------------------
def tiny_sam(seed: int = 0, img_size: int = 256) -> torch.nn.Module:
    """segment_anything ``Sam`` with a 2-block, 32-wide ViT encoder at ``img_size`` px (16 px patches)."""
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    _seeded(seed)
    dim, grid = 32, img_size // 16
    encoder = ImageEncoderViT(img_size=img_size, patch_size=16, embed_dim=dim, depth=2, num_heads=2,
                              mlp_ratio=2.0, out_chans=dim, qkv_bias=True,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
                              window_size=4, global_attn_indexes=(1,))
    prompt = PromptEncoder(embed_dim=dim, image_embedding_size=(grid, grid), input_image_size=(img_size, img_size),
                           mask_in_chans=8)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=1, embedding_dim=dim,
                                                                                 mlp_dim=64, num_heads=2),
                          transformer_dim=dim, iou_head_depth=2, iou_head_hidden_dim=32)
    with torch.no_grad():  # no checkerboard: random 2x2 transposed-conv kernels fragment every mask
        for layer in decoder.output_upscaling:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                layer.weight.copy_(layer.weight.mean(dim=(2, 3), keepdim=True).expand_as(layer.weight))
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder).eval()


def tiny_sam_segmenter(seed: int = 0, device: str = "cpu", img_size: int = 256) -> Any:
    from text2seg_widgets.models.sam import SamSegmenter

    return SamSegmenter(tiny_sam(seed, img_size=img_size), name="tiny-sam", device=device, dtype=None)


def tiny_mask_generator(segmenter: "SamSegmenter", points_per_side: int = 8) -> Any:
    """Automatic masks over an 8 x 8 grid with the quality filters off (random weights score low),
    decoded at the tiny encoder's 256 px input size and upsampled (``full_resolution=False``)."""
    from text2seg_widgets.models.sam import SamMaskGenerator

    return SamMaskGenerator(segmenter, points_per_side=points_per_side, pred_iou_thresh=0.0,
                            stability_score_thresh=0.0, points_per_batch=64, full_resolution=False)


# -- CLIP --------------------------------------------------------------------------------------
#: open_clip model config of the tiny CLIP: a 2-block ViT (8 x 8 patch grid), a 1-block text tower.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"layers": 2, "width": 32, "head_width": 16, "patch_size": 14, "image_size": 112},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_clip_model(seed: int = 0) -> torch.nn.Module:
    """The bare open_clip ``CLIP`` of :data:`TINY_CLIP_CONFIG`, random weights."""
    import copy

    import open_clip

    _seeded(seed)
    return open_clip.CLIP(**copy.deepcopy(TINY_CLIP_CONFIG)).eval()


def tiny_clip(seed: int = 0, device: str = "cpu") -> Any:
    """The tiny CLIP behind ``OpenClipScorer``, with the real BPE tokenizer (context 16) and
    open_clip's own eval preprocess."""
    import open_clip

    from text2seg_widgets.models.clip import OpenClipScorer

    model = tiny_clip_model(seed)
    preprocess = open_clip.image_transform(TINY_CLIP_CONFIG["vision_cfg"]["image_size"], is_train=False)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=TINY_CLIP_CONFIG["text_cfg"]["context_length"])
    return OpenClipScorer(model, preprocess, tokenizer, name="tiny-clip", device=device, dtype=None)


def write_tiny_clip_dir(folder: str | Path, seed: int = 0) -> Path:
    """Save the tiny CLIP as an open_clip ``local-dir:`` folder (open_clip_config.json + weights)."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": TINY_CLIP_CONFIG,
              "preprocess_cfg": {"size": TINY_CLIP_CONFIG["vision_cfg"]["image_size"]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    torch.save(tiny_clip_model(seed).state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


# -- Grounding DINO ----------------------------------------------------------------------------
def tiny_grounding_dino(seed: int = 0, device: str = "cpu", image_size: int = 128) -> Any:
    """transformers Grounding DINO with a 4-stage Swin of width 16, a 1-layer BERT, d_model 32,
    2 decoder layers and 20 queries; images resized to ``image_size`` px."""
    from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor)

    from text2seg_widgets.models.grounding_dino import GroundingDinoDetector

    vocab = bert_vocab()
    cfg = GroundingDinoConfig(
        backbone_config=dict(model_type="swin", embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                             window_size=4, image_size=image_size, out_features=["stage2", "stage3", "stage4"]),
        text_config=dict(model_type="bert", vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=128),
        num_queries=20, encoder_layers=1, encoder_ffn_dim=64, encoder_attention_heads=2, decoder_layers=2,
        decoder_ffn_dim=64, decoder_attention_heads=2, d_model=32, max_text_len=128, num_feature_levels=4,
        encoder_n_points=2, decoder_n_points=2)
    _seeded(seed)
    model = GroundingDinoForObjectDetection(cfg).eval()
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": image_size, "longest_edge": image_size}),
        tokenizer=BertTokenizer(vocab=dict(vocab)))
    # Random weights give every box a score near 0.5; lower thresholds keep a few boxes to test with.
    return GroundingDinoDetector(model, processor, name="tiny-grounding-dino", device=device, dtype=None,
                                 box_threshold=0.3, text_threshold=0.25)


# -- SAM 3 -------------------------------------------------------------------------------------
def tiny_sam3(seed: int = 0, device: str = "cpu", image_size: int = 112) -> Any:
    """transformers ``Sam3Model`` with a 2-block ViT of width 32 (14 px patches), 1-layer text,
    DETR and geometry parts, 10 queries, and a processor at ``image_size`` px."""
    from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

    from text2seg_widgets.models.sam3 import Sam3ConceptSegmenter

    grid = image_size // 14
    small = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    cfg = Sam3Config(
        vision_config=dict(
            backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64,
                                 num_hidden_layers=2, num_attention_heads=2, image_size=image_size, patch_size=14,
                                 window_size=4, global_attn_indexes=[1], pretrain_image_size=image_size),
            fpn_hidden_size=32, backbone_feature_sizes=[[grid * 4] * 2, [grid * 2] * 2, [grid] * 2]),
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=64, projection_dim=32,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32),
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=1, **small),
        detr_decoder_config=dict(num_layers=1, num_queries=10, **small),
        mask_decoder_config=dict(hidden_size=32, num_upsampling_stages=3, num_attention_heads=2),
    )
    _seeded(seed)
    model = Sam3Model(cfg).eval()
    processor = Sam3Processor(
        image_processor=Sam3ImageProcessor(size={"height": image_size, "width": image_size},
                                           mask_size={"height": grid * 4, "width": grid * 4}),
        tokenizer=clip_bpe_tokenizer(), target_size=image_size)
    return Sam3ConceptSegmenter(model, processor, name="tiny-sam3", device=device, dtype=None)


def tiny_model_set(seed: int = 0, device: str = "cpu") -> ModelSet:
    """All five roles at toy sizes with RANDOM weights (meaningless output; for tests and demos).
    The mask generator shares the segmenter, so an image is encoded once for both."""
    segmenter = tiny_sam_segmenter(seed, device)
    return ModelSet(segmenter=segmenter, mask_generator=tiny_mask_generator(segmenter),
                    detector=tiny_grounding_dino(seed, device), clip=tiny_clip(seed, device),
                    concept=tiny_sam3(seed, device))


def real_size_random_model_set(seed: int = 0, device: str = "cpu", sam3: bool = False) -> ModelSet:
    """SAM ViT-B, Grounding DINO Swin-T (BERT-base text) and CLIP ViT-B/16 at their real sizes with
    RANDOM weights, for speed/memory benchmarks only; ``sam3=True`` adds a real-size SAM 3."""
    import open_clip
    from segment_anything import sam_model_registry
    from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor)

    from text2seg_widgets.models.clip import OpenClipScorer
    from text2seg_widgets.models.grounding_dino import GroundingDinoDetector
    from text2seg_widgets.models.sam import SamMaskGenerator, SamSegmenter

    _seeded(seed)
    segmenter = SamSegmenter(sam_model_registry["vit_b"](checkpoint=None), name="random-sam-vit-b", device=device)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-16", pretrained=None)
    clip = OpenClipScorer(model, preprocess, open_clip.get_tokenizer("ViT-B-16"), name="random-clip-vit-b-16",
                          device=device)
    gd_model = GroundingDinoForObjectDetection(GroundingDinoConfig()).eval()
    gd_proc = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(),
                                     tokenizer=BertTokenizer(vocab=dict(bert_vocab())))
    detector = GroundingDinoDetector(gd_model, gd_proc, name="random-grounding-dino-tiny", device=device)
    concept = None
    if sam3:
        from transformers import Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor

        from text2seg_widgets.models.sam3 import Sam3ConceptSegmenter

        concept = Sam3ConceptSegmenter(Sam3Model(Sam3Config()).eval(),
                                       Sam3Processor(image_processor=Sam3ImageProcessor(),
                                                     tokenizer=clip_bpe_tokenizer()),
                                       name="random-sam3", device=device)
    return ModelSet(segmenter=segmenter, mask_generator=SamMaskGenerator(segmenter), detector=detector,
                    clip=clip, concept=concept)
