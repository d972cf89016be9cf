"""The frozen-prefix cache: the frozen lower layers of the encoder, computed once per sentence.

When the lowest layers of the encoder are frozen (see `helpers.freezing`), their output never
changes: `PrefixCache` computes it once per sentence, and training runs only the layers above.
With the whole backbone frozen, the cache holds the pooled sentence embeddings and only the heads
run, so the data is not re-encoded every epoch. A speed-up only: `train_multitask`, `evaluate` and
friends take the caches (`train_caches=...`, `caches=...`) and give the same numbers without them,
to float precision, running the frozen layers on every batch instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from helpers.checks import check_int, check_texts
from helpers.encoder import batch_order
from helpers.freezing import frozen_prefix_length
from helpers.memory import release_memory
from helpers.model import MultiTaskModel, eval_mode
from helpers.task_data import TaskData, check_task_data


class PrefixCache:
    """The frozen part of the encoder, computed once per sentence.

    With the embeddings and the lowest `prefix` layers frozen, the token states that leave layer
    `prefix` depend only on the sentence. `build` stores them without padding, all sentences in one
    flat tensor (one allocation, not thousands), and `encode` re-pads a batch and runs only the
    layers above (`storage_dtype=torch.float16` halves the memory at ~1e-4 error in the logits).
    With all layers frozen, the pooled sentence embeddings are stored instead and only the heads
    run; `from_sentence_embeddings` wraps embeddings computed elsewhere (e.g. the disk cache).
    """

    def __init__(self, states: torch.Tensor, lengths: Sequence[int], prefix: int, sentence_level: bool):
        self.states = states  # (total tokens, width), or (sentences, width) when sentence_level
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        self.offsets = torch.cumsum(self.lengths, 0) - self.lengths
        self.prefix = prefix
        self.sentence_level = sentence_level

    @classmethod
    def build(
        cls,
        model: MultiTaskModel,
        texts: Sequence[str],
        prefix: int,
        batch_size: int = 64,
        storage_dtype: torch.dtype = torch.float32,
    ) -> PrefixCache:
        """Run the frozen prefix once over `texts` (length-sorted batches, inference mode).

        `prefix` is 0..number of layers (all layers: pooled sentence embeddings are stored).
        The model's train/eval modes are left as they were.
        """
        texts = check_texts(texts)
        check_int("prefix", prefix, 0, len(model.layers))
        check_int("batch_size", batch_size, 1)
        model.warn_if_cut(texts)
        order = batch_order(texts)

        def batches():
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                batch = model.tokenize([texts[i] for i in rows])
                yield rows, model.hidden_states_at(batch, prefix), batch["attention_mask"]

        return cls._collect(model, batches(), len(texts), prefix, storage_dtype)

    def advanced(self, model: MultiTaskModel, prefix: int, batch_size: int = 64) -> PrefixCache:
        """This cache moved up to layer `prefix`, running only the layers in between over the cached states.

        Cheaper than `build` when several prefixes are needed: caches after layers 3, 4 and 5 cost
        three layers once and then one layer each, instead of 3 + 4 + 5. The states agree with
        `build(model, texts, prefix)` to float precision.
        """
        if prefix == self.prefix:
            return self
        if self.sentence_level or not self.prefix <= prefix <= len(model.layers):
            raise ValueError(f"cannot move a cache after layer {self.prefix} to layer {prefix}")
        order = np.argsort(-self.lengths.numpy(), kind="stable")

        def batches():
            for start in range(0, len(self), batch_size):
                rows = order[start : start + batch_size]
                hidden, mask = self._padded(rows)
                hidden, mask = hidden.to(model.device), mask.to(model.device)
                yield rows, model.run_layers(hidden, mask, self.prefix, prefix), mask

        return self._collect(model, batches(), len(self), prefix, self.states.dtype)

    @classmethod
    def _collect(cls, model, batches, count, prefix, storage_dtype) -> PrefixCache:
        """Store the token states of `batches` (rows, hidden, attention mask) unpadded, in the rows' order."""
        sentence_level = prefix == len(model.layers)
        pieces: list[torch.Tensor] = [None] * count
        with eval_mode(model), torch.inference_mode():
            for rows, hidden, attention_mask in batches:
                if sentence_level:
                    pooled = model.encode_from_layer(hidden, attention_mask, prefix).float().cpu()
                    for row, vector in zip(rows, pooled, strict=True):
                        pieces[row] = vector[None]
                else:
                    lengths = attention_mask.sum(dim=1).tolist()
                    states = hidden.to(storage_dtype).cpu()
                    for row, sentence_states, length in zip(rows, states, lengths, strict=True):
                        pieces[row] = sentence_states[:length]
        release_memory()  # the batches' temporary activations
        if not pieces:
            width = model.backbone.config.hidden_size
            return cls(torch.zeros(0, width), [], prefix, sentence_level)
        return cls(torch.cat(pieces), [len(piece) for piece in pieces], prefix, sentence_level)

    @classmethod
    def from_sentence_embeddings(cls, embeddings: np.ndarray, model: MultiTaskModel) -> PrefixCache:
        """Wrap precomputed sentence embeddings, (sentences, hidden size) float, as a sentence-level cache.

        They must match the model's pooling and normalisation (that is not checked); ValueError for
        another shape or a NaN/infinite value.
        """
        vectors = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        width = model.backbone.config.hidden_size
        if vectors.ndim != 2 or vectors.shape[1] != width:
            raise ValueError(f"embeddings must have shape (sentences, {width}), got {tuple(vectors.shape)}")
        if not torch.isfinite(vectors).all():
            raise ValueError("embeddings hold NaN or infinite values")
        return cls(vectors, [1] * len(vectors), len(model.layers), sentence_level=True)

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, indices: Sequence[int]) -> PrefixCache:
        """A cache of the sentences `indices` only (a copy), in that order, to match `TaskData.subset`."""
        indices = np.asarray(indices, dtype=np.int64)
        pieces = [self.states[offset : offset + length] for offset, length in self._spans(indices)]
        states = torch.cat(pieces) if pieces else self.states[:0].clone()
        return PrefixCache(states, self.lengths[indices].tolist(), self.prefix, self.sentence_level)

    def _spans(self, indices: np.ndarray) -> list[tuple[int, int]]:
        return list(zip(self.offsets[indices].tolist(), self.lengths[indices].tolist(), strict=True))

    @property
    def nbytes(self) -> int:
        """Memory held by the cached states."""
        return self.states.element_size() * self.states.nelement()

    def encode(self, model: MultiTaskModel, indices: Sequence[int]) -> torch.Tensor:
        """Sentence embeddings (len(indices), width) of the cached sentences `indices`, in that order,
        running only the layers above the cache (with gradients where they are trainable)."""
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if self.sentence_level:
            return self.states[indices].to(model.device)
        hidden, mask = self._padded(indices.numpy())
        return model.encode_from_layer(hidden.to(model.device), mask.to(model.device), self.prefix)

    def _padded(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached states of `indices` as one zero-padded float32 batch, with its attention mask."""
        longest = int(self.lengths[indices].max())
        hidden = torch.zeros(len(indices), longest, self.states.shape[1], dtype=torch.float32)
        mask = torch.zeros(len(indices), longest, dtype=torch.long)
        for row, (offset, length) in enumerate(self._spans(indices)):
            hidden[row, :length] = self.states[offset : offset + length].float()
            mask[row, :length] = 1
        return hidden, mask


def build_prefix_caches(
    model: MultiTaskModel,
    data: Mapping[str, TaskData],
    prefix: int | None = None,
    storage_dtype: torch.dtype = torch.float32,
    start_from: Mapping[str, PrefixCache] | None = None,
) -> dict[str, PrefixCache]:
    """One `PrefixCache` per task, for the model's current frozen prefix (or the one given).

    With `start_from` (caches of the same data at a lower prefix), only the layers in between run.
    """
    check_task_data(model, data, "data", check_labels=False)
    prefix = frozen_prefix_length(model) if prefix is None else prefix
    if start_from is not None:
        for task, examples in data.items():
            if task not in start_from:
                raise ValueError(f"start_from has no cache for {task!r}; it has {sorted(start_from)}")
            if len(start_from[task]) != len(examples):
                raise ValueError(f"the cache for {task!r} does not hold the {len(examples)} sentences given")
        return {task: start_from[task].advanced(model, prefix) for task in data}
    return {
        task: PrefixCache.build(model, examples.texts, prefix, storage_dtype=storage_dtype)
        for task, examples in data.items()
    }
