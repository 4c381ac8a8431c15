"""An image embedding as a value: the encoder's output plus everything that makes it valid.

A promptable segmenter (SAM, LiteMedSAM) spends nearly all of its time in the image encoder; the
prompt decoder is cheap. :class:`Embedding` is what the encoder returns: the feature tensor and
the facts a later decoder needs to trust it:

* ``model``: the adapter's display name (informative; not part of the identity);
* ``weights_sha256``: the sha256 of the weights (from the weight registry when known, else of the
  checkpoint file, else a digest of the state dict; or an explicit identity);
* ``preprocessing``: a string naming the resize / normalisation / padding the encoder saw;
* ``input_hw``: the (H, W) of the image that was encoded; ``resized_hw``: its (h, w) after the
  resize, before padding (what the decoder crops back to);
* ``image_digest``: a BLAKE2 digest of the exact RGB pixels that were encoded (so the window, band
  choice and stretch are all inside it).

Invariant: an embedding is only ever decoded by an adapter whose :class:`ModelIdentity`
(weights sha256 + preprocessing) equals the embedding's; ``use_embedding`` refuses any other.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from text2seg_widgets.errors import InputError

__all__ = ["Embedding", "ModelIdentity", "WeightsDigest", "state_dict_sha256", "image_digest",
           "check_identity"]


def image_digest(image: np.ndarray) -> str:
    """Hex BLAKE2 (128 bit) of an image's shape and bytes: equal pixels give equal digests."""
    arr = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((arr.shape, arr.dtype.str)).encode())
    h.update(arr.data)
    return h.hexdigest()


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes and bytes, in order): the identity
    of random or tiny models that have no checkpoint file."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class WeightsDigest:
    """The weights sha256 of an adapter, computed at most once and only when first needed (hashing a
    ViT-H checkpoint takes seconds). Shared by an adapter and its clones. Give exactly one of
    ``sha256`` (known, e.g. from the weight registry), ``path`` (a checkpoint file) or ``module``."""

    def __init__(self, *, sha256: str | None = None, path: str | Path | None = None,
                 module: torch.nn.Module | None = None) -> None:
        if sum(x is not None for x in (sha256, path, module)) != 1:
            raise InputError("WeightsDigest needs exactly one of sha256, path or module")
        self._value = sha256
        self._path = Path(path) if path is not None else None
        self._module = module
        self._lock = threading.Lock()

    @property
    def value(self) -> str:
        with self._lock:
            if self._value is None:
                if self._path is not None:
                    from text2seg_widgets.models.download import sha256_file

                    self._value = sha256_file(self._path)
                else:
                    assert self._module is not None
                    self._value = state_dict_sha256(self._module)
                self._module = None  # the digest is all we keep
            return self._value


@dataclass(frozen=True)
class ModelIdentity:
    """What an embedding must match to be decoded: the weights and the preprocessing. ``name`` is
    carried for messages only (the same weights under another name decode the same)."""

    name: str
    weights_sha256: str
    preprocessing: str

    @property
    def key(self) -> tuple[str, str]:
        return self.weights_sha256, self.preprocessing


@dataclass(frozen=True, eq=False)
class Embedding:
    """One image's encoder output: ``features`` (1, C, h, w) float tensor, and what makes it valid
    (see the module docstring). Frozen: adapters never change an embedding they are given."""

    features: torch.Tensor
    model: str
    weights_sha256: str
    preprocessing: str
    input_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    image_digest: str

    def __post_init__(self) -> None:
        if self.features.ndim != 4 or self.features.shape[0] != 1:
            raise InputError(f"embedding features must have shape (1, C, h, w), got {tuple(self.features.shape)}")
        object.__setattr__(self, "input_hw", (int(self.input_hw[0]), int(self.input_hw[1])))
        object.__setattr__(self, "resized_hw", (int(self.resized_hw[0]), int(self.resized_hw[1])))

    @property
    def identity(self) -> ModelIdentity:
        return ModelIdentity(self.model, self.weights_sha256, self.preprocessing)

    @property
    def nbytes(self) -> int:
        return int(self.features.numel() * self.features.element_size())

    def with_features(self, features: torch.Tensor) -> "Embedding":
        """The same embedding with another tensor (e.g. moved to a device or cast to fp16)."""
        return Embedding(features, self.model, self.weights_sha256, self.preprocessing, self.input_hw,
                         self.resized_hw, self.image_digest)

    @classmethod
    def batch(cls, features: torch.Tensor, identity: "ModelIdentity", images: Sequence[np.ndarray],
              resized_hws: Sequence[tuple[int, int]]) -> list["Embedding"]:
        """One embedding per image from a batched encoder output ``features`` (N, C, h, w)."""
        return [cls(features[k:k + 1].clone(), identity.name, identity.weights_sha256, identity.preprocessing,
                    img.shape[:2], resized, image_digest(img))
                for k, (img, resized) in enumerate(zip(images, resized_hws))]

    def matches(self, image: np.ndarray) -> bool:
        """Whether this is the embedding of exactly these pixels."""
        return tuple(image.shape[:2]) == self.input_hw and image_digest(image) == self.image_digest


def check_identity(expected: ModelIdentity, embedding: Embedding, feature_shape: Sequence[int] | None = None) -> None:
    """Raise :class:`InputError` unless ``embedding`` was made by a model of identity ``expected``
    (weights sha256 and preprocessing) and, when given, has features of ``feature_shape``."""
    if not isinstance(embedding, Embedding):
        raise InputError(f"expected an Embedding (from segmenter.encode(image)), got {type(embedding).__name__}")
    got = embedding.identity
    if got.key != expected.key:
        what = "weights" if got.weights_sha256 != expected.weights_sha256 else "preprocessing"
        raise InputError(
            f"this embedding was made by model {got.name!r} (weights sha256 {got.weights_sha256[:12]}..., "
            f"preprocessing {got.preprocessing!r}) but this segmenter is {expected.name!r} (weights sha256 "
            f"{expected.weights_sha256[:12]}..., preprocessing {expected.preprocessing!r}): the {what} differ; "
            "encode the image with this segmenter (segmenter.encode(image)) instead")
    if feature_shape is not None and tuple(embedding.features.shape) != tuple(feature_shape):
        raise InputError(f"embedding features have shape {tuple(embedding.features.shape)}, this segmenter "
                         f"decodes {tuple(feature_shape)}; encode the image with this segmenter")
