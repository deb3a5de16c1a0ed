"""The BiLSTM family's networks (torch `nn.Module`s): padded batches with one char-CNN pass per distinct
spelling, the highway/char-CNN token encoder, a BiLSTM whose backward pass starts at each sequence's own
end, and the two heads (pair classifier, span reader).

Padding never changes a result: the backward LSTM reads each sequence reversed within its own length,
pooling and attention are masked, and the character CNN sees each real token's spelling at a fixed width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .lstm_config import ModelConfig
from .lstm_text import PAD, Seq


@dataclass
class SeqBatch:
    """A padded batch. Characters are kept per distinct spelling: the char CNN runs once per spelling."""

    words: torch.Tensor      # (N, T) long
    lengths: torch.Tensor    # (N,) long
    spellings: torch.Tensor  # (U, C) long: the distinct character rows of the batch's real tokens
    inverse: torch.Tensor    # (M,) long: spelling of each real token, in row-major (N, T) order

    @property
    def mask(self) -> torch.Tensor:
        positions = torch.arange(self.words.size(1), device=self.words.device)
        return positions[None, :] < self.lengths.to(self.words.device)[:, None]


def collate(seqs: Sequence[Seq], device: str) -> SeqBatch:
    """Pad to the longest sequence of this batch only (dynamic padding)."""
    lengths = [len(s.words) for s in seqs]
    words = np.zeros((len(seqs), max(lengths)), dtype=np.int64)
    for i, s in enumerate(seqs):
        words[i, : len(s.words)] = s.words
    chars = np.ascontiguousarray(np.concatenate([s.chars for s in seqs]))
    keys = chars.view(np.dtype((np.void, chars.shape[1] * chars.itemsize))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return SeqBatch(torch.from_numpy(words).to(device), torch.tensor(lengths, dtype=torch.long, device=device),
                    torch.from_numpy(chars[first].astype(np.int64)).to(device),
                    torch.from_numpy(inverse.reshape(-1).astype(np.int64)).to(device))


class Highway(nn.Module):
    """y = g*x + (1-g)*relu(Wx): lets character features pass through or be transformed."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(layers))
        for layer in self.layers:
            nn.init.constant_(layer.bias[dim:], 1.0)  # start by carrying the input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h, g = layer(x).chunk(2, dim=-1)
            g = torch.sigmoid(g)
            x = g * x + (1 - g) * torch.relu(h)
        return x


class CharCNN(nn.Module):
    """ELMo's token encoder: char embeddings, convolutions of several widths, max over time, highway."""

    def __init__(self, n_chars: int, char_dim: int, filters: Sequence[tuple[int, int]], highway: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=PAD)
        self.convs = nn.ModuleList(nn.Conv1d(char_dim, n, w) for w, n in filters)
        self.out_dim = sum(n for _, n in filters)
        self.highway = Highway(self.out_dim, highway)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """(M, C) character ids of M real tokens -> (M, out_dim)."""
        x = self.embed(chars).transpose(1, 2)
        h = torch.cat([torch.relu(conv(x)).amax(dim=-1) for conv in self.convs], dim=-1)
        return self.highway(h)

    def embed_tokens(self, b: SeqBatch) -> torch.Tensor:
        """(N, T, out_dim), zeros at padding; only the distinct spellings of real tokens are convolved."""
        out = torch.zeros(*b.words.shape, self.out_dim, device=b.words.device)
        # embedding() rather than vectors[inverse]: the backward of advanced indexing accumulates in a
        # thread-dependent order on the CPU, so training would not be reproducible with 2+ threads.
        out[b.mask] = nn.functional.embedding(b.inverse, self(b.spellings))
        return out


class TokenEmbedder(nn.Module):
    """[word embedding; char-CNN vector; extra features (ELMo)] with dropout."""

    def __init__(self, n_words: int, n_chars: int, cfg: ModelConfig, extra: nn.Module | None = None) -> None:
        super().__init__()
        self.words = nn.Embedding(n_words, cfg.word_dim, padding_idx=PAD)
        self.chars = CharCNN(n_chars, cfg.char_dim, cfg.char_filters, cfg.highway_layers)
        self.extra = extra
        self.dropout = nn.Dropout(cfg.dropout)
        self.out_dim = cfg.word_dim + self.chars.out_dim + (int(getattr(extra, "out_dim", 0)) if extra else 0)

    def forward(self, b: SeqBatch) -> torch.Tensor:
        parts = [self.words(b.words), self.chars.embed_tokens(b)]
        if self.extra is not None:
            parts.append(self.extra(b))
        return self.dropout(torch.cat(parts, dim=-1))


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padding stays at the end."""
    steps = torch.arange(x.size(1), device=x.device)[None, :]
    n = lengths.to(x.device)[:, None]
    index = torch.where(steps < n, n - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class BiLSTM(nn.Module):
    """A bidirectional LSTM whose backward pass starts at each sequence's own end, not at its padding.

    Each direction runs on the padded batch (oneDNN's fast whole-sequence kernel; packed sequences
    are ~2x slower on the CPU), the backward one on sequences reversed within their lengths. With
    padding only at the end, no real position ever sees a pad, so results do not depend on padding.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        dims = [in_dim] + [2 * hidden] * (layers - 1)
        self.fwd = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.bwd = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = 2 * hidden

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for i, (fwd, bwd) in enumerate(zip(self.fwd, self.bwd)):
            if i:
                x = self.dropout(x)
            back = reverse_padded(bwd(reverse_padded(x, lengths))[0], lengths)
            x = torch.cat([fwd(x)[0], back], dim=-1)
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths.to(x.device)[:, None]
        return x * mask.unsqueeze(-1)


class SentenceEncoder(nn.Module):
    """Token embedder + 2-layer BiLSTM, shared by both sides of a pair and by question and context."""

    def __init__(self, embedder: TokenEmbedder, cfg: ModelConfig) -> None:
        super().__init__()
        self.embedder = embedder
        self.lstm = BiLSTM(embedder.out_dim, cfg.hidden, cfg.layers, cfg.dropout)
        self.out_dim = self.lstm.out_dim

    def forward(self, b: SeqBatch) -> torch.Tensor:
        return self.lstm(self.embedder(b), b.lengths)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)


def _mlp(in_dim: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, out))


class Classifier(nn.Module):
    """Max-pooled sentence vector u -> MLP; for pairs, [u; v; |u-v|; u*v] -> MLP."""

    def __init__(self, encoder: SentenceEncoder, n_inputs: int, n_labels: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder, self.n_inputs = encoder, n_inputs
        d = encoder.out_dim * (4 if n_inputs == 2 else 1)
        self.mlp = _mlp(d, cfg.mlp_hidden, n_labels, cfg.dropout)

    def forward(self, b: SeqBatch) -> torch.Tensor:
        """`b` stacks the first inputs of the batch, then the second inputs (one encoder call)."""
        pooled = masked_max(self.encoder(b), b.mask)
        if self.n_inputs == 1:
            return self.mlp(pooled)
        u, v = pooled.chunk(2, dim=0)
        return self.mlp(torch.cat([u, v, (u - v).abs(), u * v], dim=-1))


class SpanReader(nn.Module):
    """Question-aware context states (aligned attention, question vector, exact-match flag) -> start/end."""

    def __init__(self, encoder: SentenceEncoder, cfg: ModelConfig) -> None:
        super().__init__()
        self.encoder = encoder
        d = encoder.out_dim
        self.model1 = BiLSTM(4 * d + 1, cfg.hidden, 1, 0.0)
        self.model2 = BiLSTM(2 * cfg.hidden, cfg.hidden, 1, 0.0)
        self.start = nn.Linear(2 * cfg.hidden + d, 1)
        self.end = nn.Linear(2 * cfg.hidden + d, 1)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, q: SeqBatch, c: SeqBatch, em: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        qs, cs = self.encoder(q), self.encoder(c)
        q_mask, c_mask = q.mask, c.mask
        q_vec = masked_max(qs, q_mask)
        scores = (cs @ qs.transpose(1, 2)).masked_fill(~q_mask[:, None, :], float("-inf"))
        aligned = scores.softmax(dim=-1) @ qs
        x = torch.cat([cs, aligned, cs * aligned, cs * q_vec[:, None, :], em.unsqueeze(-1)], dim=-1)
        m1 = self.model1(self.dropout(x), c.lengths)
        m2 = self.model2(self.dropout(m1), c.lengths)
        start = self.start(self.dropout(torch.cat([m1, cs], dim=-1))).squeeze(-1)
        end = self.end(self.dropout(torch.cat([m2, cs], dim=-1))).squeeze(-1)
        return start.masked_fill(~c_mask, float("-inf")), end.masked_fill(~c_mask, float("-inf"))
