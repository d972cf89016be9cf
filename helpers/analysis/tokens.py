"""Notebook 01's looks inside the encoder: a tokenised batch as a table, the backbone's parameters
by component, and the padding a batching scheme computes (counted, not timed)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pandas as pd
from sentence_transformers import SentenceTransformer

from helpers.checks import check_texts
from helpers.encoder import batch_order, check_batching, tokenize


class TokenCounts(NamedTuple):
    """Token positions of one `embed` pass: the real tokens and all positions the backbone computes."""

    real: int
    computed: int

    @property
    def padding_share(self) -> float:
        """The share of computed positions that are padding, i.e. wasted work."""
        return 1 - self.real / self.computed if self.computed else 0.0


def count_token_positions(
    model: SentenceTransformer,
    texts: str | Iterable[str],
    batch_size: int = 64,
    sort_by_length: bool = True,
    max_length: int | None = None,
) -> TokenCounts:
    """Count what `embed` would compute with these settings, without running the backbone.

    Every batch is padded to its longest sentence, so the backbone computes (batch size x longest
    length) positions per batch; the difference from the real tokens is padding. The count is exact
    and machine-independent, unlike a timing.
    """
    texts = check_texts(texts)
    check_batching(model, batch_size, sort_by_length, max_length)
    order = batch_order(texts, sort_by_length)
    real = computed = 0
    for start in range(0, len(texts), batch_size):
        mask = tokenize(model, [texts[i] for i in order[start : start + batch_size]], max_length)[
            "attention_mask"
        ]
        real += int(mask.sum())
        computed += mask.numel()
    return TokenCounts(real, computed)


def token_table(model: SentenceTransformer, texts: Sequence[str], max_length: int | None = None):
    """A readable table of a tokenised batch: one row per position, token / id / mask per sentence."""
    batch = tokenize(model, check_texts(texts), max_length)
    tokenizer = model[0].tokenizer
    columns = {}
    for i, ids in enumerate(batch["input_ids"]):
        columns[(f"sentence {i + 1}", "token")] = tokenizer.convert_ids_to_tokens(ids.tolist())
        columns[(f"sentence {i + 1}", "id")] = ids.tolist()
        columns[(f"sentence {i + 1}", "mask")] = batch["attention_mask"][i].tolist()
    table = pd.DataFrame(columns)
    table.index.name = "position"
    return table


def backbone_parameter_counts(model: SentenceTransformer):
    """Parameters of the transformer backbone per component, with their share of the total."""
    backbone = model[0].auto_model
    embeddings = backbone.embeddings
    parts = [
        ("token (WordPiece) embeddings", embeddings.word_embeddings),
        ("position embeddings", embeddings.position_embeddings),
        ("token-type embeddings", embeddings.token_type_embeddings),
        ("embedding LayerNorm", embeddings.LayerNorm),
    ]
    parts += [(f"transformer layer {i}", layer) for i, layer in enumerate(backbone.encoder.layer)]
    if backbone.pooler is not None:
        parts.append(("pooler (unused by sentence-transformers)", backbone.pooler))
    table = pd.DataFrame(
        [(name, sum(p.numel() for p in module.parameters())) for name, module in parts],
        columns=["component", "parameters"],
    )
    table["share"] = (table.parameters / table.parameters.sum()).round(3)
    return table
