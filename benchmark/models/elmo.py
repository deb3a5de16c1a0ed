"""ELMo-style transfer: a biLM pre-trained on the run's train text, feeding the BiLSTM baseline.

Peters et al. (2018): a character-CNN token layer, a forward LSTM language model predicting the
next word and a backward one predicting the previous word (softmax tied between them), with a
residual connection between LSTM layers. A task uses the biLM through ELMo = gamma * sum_j s_j
h_j, a learned softmax-weighted sum of the layers (token layer, then each LSTM layer, forward and
backward concatenated), concatenated to the task model's word embeddings (Wang et al. 2018's
"+ELMo" rows).

This biLM is tiny (sized to pre-train in minutes on two CPU cores) and learns from the unlabelled
inputs of the run's train splits only (`evaluator.corpus`): never labels, never evaluation text.
The full softmax over the capped vocabulary is exact but factorised (`AdaptiveLogSoftmaxWithLoss`)
so it costs a fraction of a flat one.

Modes: `frozen` (= `auto`; feature-based: the biLM is fixed, only the layer weights, gamma and the
task model learn) and `finetune` (the biLM learns too, at a reduced learning rate). Every fit
starts from a fresh copy of the pre-trained biLM, so tasks never see each other's fine-tuning.
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from .base import Fitted
from .training import cached_fit
from .lstm import CACHE_FORMAT, BiLSTMAdapter
from .lstm_config import BiLSTMOptions, check_filter_widths, config_options, configure
from .lstm_modules import CharCNN, SeqBatch, collate, reverse_padded
from .lstm_text import Seq, Vocab, tokenize
from .lstm_training import bucket_batches, save_atomic

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec

LM_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
BOS, EOS = 2, 3  # word ids of <s> and </s> in the biLM's softmax vocabulary


@dataclass(frozen=True)
class BiLMConfig:
    """The biLM's shape and pre-training budget; every field is an adapter option of the same name."""

    lm_vocab_size: int = 20_000      # softmax vocabulary (most frequent words) + specials
    lm_char_dim: int = 16
    lm_char_filters: tuple[tuple[int, int], ...] = ((1, 32), (2, 32), (3, 64), (4, 64), (5, 64))
    lm_highway_layers: int = 1
    lm_dim: int = 128                # token layer and LSTM output (projection) size, per direction
    lm_cell: int = 256               # LSTM memory cells per layer and direction
    lm_layers: int = 2
    lm_dropout: float = 0.1
    lm_max_tokens: int = 40          # texts are cut into sentences of at most this many tokens
    lm_max_sentences: int = 30_000   # a seeded sample of the (deduplicated) sentences
    lm_epochs: float = 1.0
    lm_batch_size: int = 64
    lm_learning_rate: float = 2e-3
    lm_finetune_lr_scale: float = 0.2  # mode finetune: the biLM's learning rate relative to the task model's


ElmoOptions = config_options("ElmoOptions", BiLMConfig, base=BiLSTMOptions)


# ---------------------------------------------------------------------------------------
# the biLM
class _ProjectedLSTM(nn.Module):
    """One unidirectional LSTM layer of `cell` units, projected back to `dim` for the residual stack."""

    def __init__(self, dim: int, cell: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, cell, batch_first=True)
        self.project = nn.Linear(cell, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.lstm(x)[0])


class BiLMEncoder(nn.Module):
    """Char-CNN token layer + forward and backward LSTM stacks: the layers ELMo mixes."""

    def __init__(self, n_chars: int, cfg: BiLMConfig) -> None:
        super().__init__()
        self.chars = CharCNN(n_chars, cfg.lm_char_dim, cfg.lm_char_filters, cfg.lm_highway_layers)
        self.project = nn.Linear(self.chars.out_dim, cfg.lm_dim)
        # LSTM + projection back to lm_dim after it (oneDNN has no kernel for LSTMs with a built-in projection)
        self.fwd = nn.ModuleList(_ProjectedLSTM(cfg.lm_dim, cfg.lm_cell) for _ in range(cfg.lm_layers))
        self.bwd = nn.ModuleList(_ProjectedLSTM(cfg.lm_dim, cfg.lm_cell) for _ in range(cfg.lm_layers))
        self.dropout = nn.Dropout(cfg.lm_dropout)
        self.n_layers = cfg.lm_layers + 1
        self.out_dim = 2 * cfg.lm_dim

    def forward(self, b: SeqBatch) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(forward, backward) states per layer, each (N, T, lm_dim); layer 0 is the token layer."""
        x = self.project(self.chars.embed_tokens(b))
        layers = [(x, x)]
        f, r = x, reverse_padded(x, b.lengths)  # the backward LM reads each sequence from its own end
        for i, (fwd, bwd) in enumerate(zip(self.fwd, self.bwd)):
            f_new, r_new = fwd(self.dropout(f)), bwd(self.dropout(r))
            f, r = (f_new + f, r_new + r) if i else (f_new, r_new)  # residual between LSTM layers
            layers.append((f, reverse_padded(r, b.lengths)))
        return layers


class LanguageModel(nn.Module):
    """The encoder plus one softmax shared by both directions (as in ELMo)."""

    def __init__(self, encoder: BiLMEncoder, n_words: int, cfg: BiLMConfig) -> None:
        super().__init__()
        self.encoder = encoder
        cutoffs = [c for c in (2000, 8000) if c < n_words - 1] or [max(1, n_words // 2)]
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(cfg.lm_dim, n_words, cutoffs=cutoffs, div_value=4.0)
        self.dropout = nn.Dropout(cfg.lm_dropout)

    def loss(self, b: SeqBatch, next_ids: torch.Tensor, prev_ids: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the next word (forward) and the previous word (backward)."""
        f, r = self.encoder(b)[-1]
        mask = b.mask
        states = self.dropout(torch.cat([f[mask], r[mask]]))
        return self.softmax(states, torch.cat([next_ids[mask], prev_ids[mask]])).loss


def lm_targets(seqs: Sequence[Seq], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(next word, previous word) ids per position, </s> after the last token and <s> before the first."""
    width = max(len(s.words) for s in seqs)
    nxt = np.zeros((len(seqs), width), dtype=np.int64)
    prv = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        n = len(s.words)
        nxt[i, :n] = np.append(s.words[1:], EOS)
        prv[i, :n] = np.insert(s.words[:-1], 0, BOS)
    return torch.from_numpy(nxt).to(device), torch.from_numpy(prv).to(device)


class ScalarMix(nn.Module):
    """gamma * sum_j softmax(w)_j * layer_j: the task learns which biLM layers it needs."""

    def __init__(self, n_layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(n_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    def forward(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        w = self.weights.softmax(dim=0)
        return self.gamma * sum(w[j] * layer for j, layer in enumerate(layers))


class ElmoFeatures(nn.Module):
    """The ELMo vector of every token, computed by a (frozen or trainable) copy of the biLM."""

    def __init__(self, bilm: BiLMEncoder, frozen: bool) -> None:
        super().__init__()
        self.bilm, self.frozen = bilm, frozen
        self.mix = ScalarMix(bilm.n_layers)
        self.out_dim = bilm.out_dim
        if frozen:
            bilm.requires_grad_(False)

    def train(self, mode: bool = True) -> "ElmoFeatures":
        super().train(mode)
        if self.frozen:
            self.bilm.eval()  # feature extraction: no biLM dropout either
        return self

    def forward(self, b: SeqBatch) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            layers = self.bilm(b)
        return self.mix([torch.cat(pair, dim=-1) for pair in layers])


# ---------------------------------------------------------------------------------------
# the adapter
class ElmoAdapter(BiLSTMAdapter):
    """The BiLSTM baseline with ELMo vectors from a biLM pre-trained on the run's train text."""

    name = "bilstm-elmo"
    needs_corpus = True
    modes = ("auto", "frozen", "finetune")
    mode_notes = {"zero-shot": "its biLM has no task head; use --mode frozen (the default) or --mode finetune"}
    Options = ElmoOptions

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.lm_cfg = configure(BiLMConfig, self.given_options())
        check_filter_widths(self.lm_cfg.lm_char_filters, self.model_cfg.max_word_chars, "lm_char_filters")
        self.corpus_fingerprint_: str | None = None
        self.lm_vocab_: Vocab | None = None
        self.bilm_: BiLMEncoder | None = None
        self.lm_loss_: float | None = None
        self.lm_loaded_from_cache_ = False

    def _resolved_mode(self) -> str:
        return "finetune" if self.mode == "finetune" else "frozen"

    # --- pre-training ----------------------------------------------------------------------
    def pretrain(self, texts: Sequence[str], fingerprint: str) -> None:
        """Train the biLM on `texts`, or load it from cache_dir()/elmo/<key>.pt."""
        self.corpus_fingerprint_ = fingerprint
        _, self.lm_loaded_from_cache_ = cached_fit(
            self.cache_dir() / "elmo", self._lm_parts(fingerprint), lambda: self._pretrain_new(texts),
            lambda path, _: self._save_lm(path), lambda path: self._load_lm(path) or None,
            world=self.world, key_length=None, suffix=".pt")

    def _pretrain_new(self, texts: Sequence[str]) -> bool:
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        sentences = self._sentences(texts)
        if not sentences:
            raise UserError(f"{self.name}: the train splits of this run hold no text to pre-train the biLM on; "
                            "add tasks with train splits")
        cfg = self.lm_cfg
        self.lm_vocab_ = Vocab.build((t for s in sentences for t in s), vocab_size=cfg.lm_vocab_size, min_freq=1,
                                     max_chars=self.model_cfg.max_chars,
                                     max_word_chars=self.model_cfg.max_word_chars, specials=LM_SPECIALS)
        lm = LanguageModel(BiLMEncoder(len(self.lm_vocab_.chars), cfg), len(self.lm_vocab_.words), cfg)
        self.lm_loss_ = self._train_lm(lm.to(self.device), [self.lm_vocab_.seq(s) for s in sentences])
        self.bilm_ = lm.encoder.eval()
        self.pretrain_seconds_ = round(time.perf_counter() - start, 3)
        return True

    def _sentences(self, texts: Sequence[str]) -> list[list[str]]:
        """Token chunks of at most lm_max_tokens, deduplicated (SQuAD repeats its contexts), seeded sample."""
        cfg, seen = self.lm_cfg, set()
        chunks: list[list[str]] = []
        for text in texts:
            tokens = [t for t, _, _ in tokenize(text)]
            for i in range(0, len(tokens), cfg.lm_max_tokens):
                chunk = tokens[i:i + cfg.lm_max_tokens]
                key = " ".join(chunk)
                if chunk and key not in seen:
                    seen.add(key)
                    chunks.append(chunk)
        random.Random(self.seed).shuffle(chunks)
        return chunks[: cfg.lm_max_sentences]

    def _train_lm(self, lm: LanguageModel, seqs: list[Seq]) -> float:
        """Adam on the bidirectional LM loss; returns the mean loss of the last 10% of steps."""
        from tqdm.auto import tqdm

        cfg = self.lm_cfg
        optimizer = torch.optim.Adam(lm.parameters(), lr=cfg.lm_learning_rate)
        rng = random.Random(self.seed)
        lengths = [len(s.words) for s in seqs]
        total = max(1, math.ceil(cfg.lm_epochs * math.ceil(len(seqs) / cfg.lm_batch_size)))
        losses: list[float] = []
        lm.train()
        quiet = True if self.quiet else None
        with tqdm(total=total, desc=f"{self.name} biLM", unit="batch", disable=quiet, leave=False) as bar:
            while len(losses) < total:
                for idx in bucket_batches(lengths, cfg.lm_batch_size, rng)[: total - len(losses)]:
                    batch = [seqs[i] for i in idx]
                    optimizer.zero_grad(set_to_none=True)
                    loss = lm.loss(collate(batch, self.device), *lm_targets(batch, self.device))
                    loss.backward()
                    nn.utils.clip_grad_norm_(lm.parameters(), self.train_cfg.clip_norm)
                    optimizer.step()
                    losses.append(float(loss.detach()))
                    bar.update(1)
                    bar.set_postfix(ppl=f"{math.exp(min(20.0, losses[-1])):.0f}")
        tail = losses[-max(1, len(losses) // 10):]
        return sum(tail) / len(tail)

    def _lm_parts(self, fingerprint: str) -> dict[str, Any]:
        """Everything that shapes the biLM; its hash names cache_dir()/elmo/<key>.pt."""
        return {"format": CACHE_FORMAT, "corpus": fingerprint, "bilm": asdict(self.lm_cfg), "seed": self.seed,
                "max_word_chars": self.model_cfg.max_word_chars, "max_chars": self.model_cfg.max_chars}

    def _save_lm(self, path: Path) -> None:
        save_atomic({"format": CACHE_FORMAT, "vocab": self.lm_vocab_.state(), "state": self.bilm_.state_dict(),
                     "seconds": float(self.pretrain_seconds_), "loss": self.lm_loss_}, path)

    def _load_lm(self, path: Path) -> bool:
        """False (and pre-train again) when the file is unreadable or from an incompatible version."""
        try:
            saved = torch.load(path, map_location=self.device, weights_only=True)
            vocab = Vocab.from_state(saved["vocab"])
            bilm = BiLMEncoder(len(vocab.chars), self.lm_cfg).to(self.device)
            bilm.load_state_dict(saved["state"])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
            warnings.warn(f"{path}: unusable cached biLM ({type(exc).__name__}); pre-training again")
            return False
        self.lm_vocab_, self.bilm_ = vocab, bilm.eval()
        self.pretrain_seconds_, self.lm_loss_ = saved["seconds"], saved["loss"]
        return True

    # --- the task model ----------------------------------------------------------------------
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        if self.bilm_ is None:
            raise UserError(f"{self.name} needs its biLM pre-trained first: run it with `bench run` (which calls "
                            "pretrain on the run's train text) or call adapter.pretrain(texts, fingerprint)")
        return super().fit(task, train)

    def _make_vocab(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> Vocab:
        """Task words as in bilstm; characters from the biLM, so one character tensor feeds both."""
        words = super()._make_vocab(task, rows).words
        return Vocab(words, self.lm_vocab_.chars, self.model_cfg.max_word_chars)

    def _extra_features(self) -> nn.Module:
        return ElmoFeatures(copy.deepcopy(self.bilm_), frozen=self._resolved_mode() == "frozen")

    def _param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Frozen: the biLM is left out entirely. Finetune: it learns at lm_finetune_lr_scale * lr."""
        bilm = {id(p) for p in self.elmo_module().bilm.parameters()}
        own = [p for p in self.net_.parameters() if p.requires_grad and id(p) not in bilm]
        groups = [{"params": own, "lr": lr}]
        if self._resolved_mode() == "finetune":
            groups.append({"params": list(self.elmo_module().bilm.parameters()),
                           "lr": lr * self.lm_cfg.lm_finetune_lr_scale})
        return groups

    def elmo_module(self) -> ElmoFeatures:
        """The ELMo feature module inside the task model (its biLM copy, layer weights and gamma)."""
        return self.net_.encoder.embedder.extra

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "bilm": asdict(self.lm_cfg), "corpus": self.corpus_fingerprint_}
