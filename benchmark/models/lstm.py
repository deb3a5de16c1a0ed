"""The GLUE-paper single-task baseline: a BiLSTM with max pooling, trained from scratch.

Wang et al. (2018) report a 2-layer BiLSTM with max pooling per task; single sentences go
through an MLP, pairs are matched as [u; v; |u-v|; u*v] (InferSent style). We have no GloVe
offline, so every token also gets an ELMo-style character CNN vector: a word never seen in
training still has a meaningful input. Extractive QA uses a small DrQA/BiDAF-like span reader
over the same encoder.

Everything is deterministic on the CPU for a given seed: the vocabulary (ties broken by
spelling), the held-out slice and batch order (a seeded `random.Random`), the weights
(`torch.manual_seed`). Padding never changes a result: the backward LSTM reads each sequence
reversed within its own length (so it never starts on padding), pooling and attention are masked,
and the character CNN sees each real token's spelling at a fixed width, so a prediction is the
same at any batch size and in any order.

A trained model is cached under `cache_dir()/<adapter name>/<key>.pt`, keyed by everything that
changes the weights, so a re-run (or a resumed run) loads instead of training again
(`training.cached_fit`).

This module is the adapter; the parts it is built from sit beside it, one concept each: `lstm_text`
(tokenizer, vocabularies, encoded items), `lstm_config` (shapes, schedule, options), `lstm_modules`
(the networks), `lstm_training` (the training loop: batching, early stopping, span decoding).
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from .base import Adapter, Fitted
from .features import question_and_context
from .lstm_config import BiLSTMOptions, ModelConfig, TrainConfig, check_filter_widths, configure
from .lstm_modules import Classifier, SentenceEncoder, SpanReader, TokenEmbedder, collate
from .lstm_text import Item, Vocab, tokenize
from .lstm_training import Steps, align_answer, best_span, primary_score, save_atomic, train_loop
from .training import cached_fit

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec

CACHE_FORMAT = 2  # bump when the saved layout or the model code changes what a key means


class BiLSTMAdapter(Adapter):
    """Single-task BiLSTM trained from scratch on the task's train split (GLUE-paper baseline)."""

    name = "bilstm"
    kinds = frozenset({"classification", "extractive_qa"})
    modes = ("auto",)
    mode_notes = {m: "it trains from scratch" for m in ("zero-shot", "finetune", "frozen")}
    Options = BiLSTMOptions

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.model_cfg = configure(ModelConfig, self.given_options(), {"max_length": "max_tokens"})
        self.train_cfg = configure(TrainConfig, self.given_options())
        check_filter_widths(self.model_cfg.char_filters, self.model_cfg.max_word_chars, "char_filters")
        self.vocab_: Vocab | None = None
        self.net_: nn.Module | None = None
        self.heldout_score_: float | None = None
        self.loaded_from_cache_ = False
        self.train_seconds_: float | None = None
        self.pretrain_seconds_: float | None = None  # ELMo's biLM; None for a model without one
        self.epochs_: float | None = None  # the epoch budget actually used (resolved when `epochs` is unset)
        self.fitted_: Fitted | None = None

    # --- capabilities ----------------------------------------------------------------------
    def unsupported_reason(self, task: "TaskSpec") -> str | None:
        if task.kind == "closed_book_qa":
            return (f"{self.name} cannot answer closed-book questions: it has no generator (it classifies "
                    "texts or picks a span of a given context)")
        reason = super().unsupported_reason(task)
        if reason:
            return reason
        if task.kind == "classification" and len(task.inputs) > 2:
            return f"{self.name} reads one text or a pair, and {task.name} has {len(task.inputs)} inputs"
        return None

    def needs_train_split(self) -> bool:
        return True

    # --- fit -------------------------------------------------------------------------------
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        if train is None:
            raise UserError(f"{self.name} needs the train split of {task.name}; use a task with one")
        _, self.loaded_from_cache_ = cached_fit(
            self.cache_dir() / self.name, self._cache_parts(task, train), lambda: self._fit_new(task, train),
            lambda path, _: self._save(path), lambda path: self._load(task, path) or None,
            world=self.world, key_length=None, suffix=".pt")
        self.fitted_ = Fitted(mode=self._resolved_mode(), weights="trained", train_seconds=self.train_seconds_,
                              pretrain_seconds=self.pretrain_seconds_, trainable_parameters=self.parameter_counts()[1],
                              from_cache=self.loaded_from_cache_)
        return self.fitted_

    def _fit_new(self, task: "TaskSpec", train: "Split") -> bool:
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        train_rows, held_rows = self._split_rows(train.rows)
        self.vocab_ = self._make_vocab(task, train_rows)
        items = [it for it in self._encode_rows(task, train_rows, targets=True) if it.has_target]
        if not items:
            raise UserError(f"{self.name}: no usable train example in {task.name} (answers could not be aligned "
                            "with their contexts, by answer_start or by their text); check the train split's answers")
        held = self._encode_rows(task, held_rows, targets=True)
        self.net_ = self._make_net(task).to(self.device)
        self.heldout_score_ = self._train(task, items, held, held_rows)
        self.train_seconds_ = round(time.perf_counter() - start, 3)
        return True

    def _resolved_mode(self) -> str:
        return "scratch"

    def _split_rows(self, rows: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
        """Seeded shuffle of TRAIN; a held-out slice for early stopping, the rest (capped) to learn from."""
        cfg = self.train_cfg
        order = list(range(len(rows)))
        random.Random(self.seed).shuffle(order)
        if cfg.max_train_examples:
            order = order[: cfg.max_train_examples]
        n_held = min(cfg.heldout_max, int(len(order) * cfg.heldout_fraction))
        n_held = n_held if n_held >= 20 else 0  # too few to judge anything: train the full budget
        return [rows[i] for i in order[n_held:]], [rows[i] for i in order[:n_held]]

    def _make_vocab(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> Vocab:
        surfaces = (tok for row in rows for text in task.texts(row) for tok, _, _ in tokenize(text))
        cfg = self.model_cfg
        return Vocab.build(surfaces, vocab_size=cfg.vocab_size, min_freq=cfg.min_freq, max_chars=cfg.max_chars,
                           max_word_chars=cfg.max_word_chars)

    def _extra_features(self) -> nn.Module | None:
        """Extra per-token input features (the ELMo adapter plugs its biLM in here)."""
        return None

    def _make_net(self, task: "TaskSpec") -> nn.Module:
        vocab, cfg = self.vocab_, self.model_cfg
        embedder = TokenEmbedder(len(vocab.words), len(vocab.chars), cfg, self._extra_features())
        encoder = SentenceEncoder(embedder, cfg)
        if task.kind == "extractive_qa":
            return SpanReader(encoder, cfg)
        return Classifier(encoder, len(task.inputs), len(task.labels), cfg)

    # --- encode ----------------------------------------------------------------------------
    def encode(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[Item]:
        if self.vocab_ is None:
            raise RuntimeError(f"{self.name}: call fit() before encode()")
        return self._encode_rows(task, rows)

    def _encode_rows(self, task: "TaskSpec", rows: Sequence[dict[str, Any]], targets: bool = False) -> list[Item]:
        """One Item per row, in order; with `targets`, the label or answer span too (None if unalignable)."""
        if task.kind == "extractive_qa":
            return [self._encode_qa(task, row, targets) for row in rows]
        out = []
        for row in rows:
            seqs = tuple(self.vocab_.seq([t for t, _, _ in tokenize(text)][: self.model_cfg.max_tokens])
                         for text in task.texts(row))
            out.append(Item(seqs, label=task.label_index(row) if targets else None))
        return out

    def _encode_qa(self, task: "TaskSpec", row: dict[str, Any], targets: bool) -> Item:
        question, context = question_and_context(task, row)
        q_tokens = [t for t, _, _ in tokenize(question)][: self.model_cfg.max_tokens]
        c_tokens = tokenize(context)[: self.model_cfg.max_context_tokens] or [("", 0, 0)]
        offsets = np.array([(a, b) for _, a, b in c_tokens], dtype=np.int64)
        q_words = {t.lower() for t in q_tokens}
        em = np.array([t.lower() in q_words for t, _, _ in c_tokens], dtype=np.float32)
        item = Item((self.vocab_.seq(q_tokens), self.vocab_.seq([t for t, _, _ in c_tokens])),
                    context=context, offsets=offsets, em=em)
        if targets:
            span = task.answer_span(row)
            item.span = align_answer(offsets, *span) if span else None
        return item

    def length(self, item: Item) -> int:
        return sum(len(s.words) for s in item.seqs)

    # --- forward, loss, predict ------------------------------------------------------------
    def _forward(self, task: "TaskSpec", items: Sequence[Item]) -> Any:
        if task.kind == "extractive_qa":
            q = collate([it.seqs[0] for it in items], self.device)
            c = collate([it.seqs[1] for it in items], self.device)
            width = c.words.size(1)
            em = np.zeros((len(items), width), dtype=np.float32)
            for i, it in enumerate(items):
                em[i, : len(it.em)] = it.em
            return self.net_(q, c, torch.from_numpy(em).to(self.device))
        n_inputs = len(items[0].seqs)
        return self.net_(collate([it.seqs[k] for k in range(n_inputs) for it in items], self.device))

    def _loss(self, task: "TaskSpec", out: Any, items: Sequence[Item]) -> torch.Tensor:
        """Mean cross-entropy over the items that have a target (label, or aligned answer span)."""
        keep = [k for k, it in enumerate(items) if it.has_target]
        f = nn.functional
        if task.kind == "extractive_qa":
            rows = torch.tensor(keep, device=self.device)
            starts = torch.tensor([items[k].span[0] for k in keep], device=self.device)
            ends = torch.tensor([items[k].span[1] for k in keep], device=self.device)
            return f.cross_entropy(out[0][rows], starts) + f.cross_entropy(out[1][rows], ends)
        return f.cross_entropy(out, torch.tensor([it.label for it in items], device=self.device))

    def _decode(self, task: "TaskSpec", out: Any, items: Sequence[Item]) -> list[Any]:
        """Label index, or the best span's text: context[char_start:char_end] of its tokens."""
        if task.kind != "extractive_qa":
            return [int(i) for i in out.argmax(dim=-1).tolist()]
        starts, ends = out[0].double().cpu().numpy(), out[1].double().cpu().numpy()
        answers = []
        for k, it in enumerate(items):
            n = len(it.offsets)
            i, j = best_span(starts[k, :n], ends[k, :n], self.model_cfg.max_answer_tokens)
            answers.append(it.context[int(it.offsets[i, 0]):int(it.offsets[j, 1])])
        return answers

    def predict(self, task: "TaskSpec", batch: Sequence[Item]) -> list[Any]:
        if not batch:
            return []
        self.net_.eval()
        with torch.inference_mode():
            return self._decode(task, self._forward(task, batch), batch)

    # --- training loop ---------------------------------------------------------------------
    def _param_groups(self, lr: float) -> list[dict[str, Any]]:
        return [{"params": [p for p in self.net_.parameters() if p.requires_grad], "lr": lr}]

    def _train(self, task: "TaskSpec", items: list[Item], held: list[Item], held_rows: list[dict]) -> float | None:
        """The training loop (lstm_training.train_loop) over this adapter's forward, loss and decoding."""
        steps = Steps(forward=lambda batch: self._forward(task, batch),
                      loss=lambda out, batch: self._loss(task, out, batch),
                      decode=lambda out, batch: self._decode(task, out, batch), length=self.length)
        best, self.epochs_ = train_loop(self.net_, self._param_groups(self.train_cfg.learning_rate), items, held,
                                        lambda preds: primary_score(task, preds, held_rows), self.train_cfg, steps,
                                        seed=self.seed, desc=f"{self.name} {task.name}", quiet=self.quiet)
        return best

    # --- cache -----------------------------------------------------------------------------
    def _cache_parts(self, task: "TaskSpec", train: "Split") -> dict[str, Any]:
        """Everything that shapes the weights; its hash names cache_dir()/<adapter>/<key>.pt."""
        return {"format": CACHE_FORMAT, "adapter": self.name, "task": task.name, "version": task.version,
                "task_sha256": task.sha256, "train": train.info.fingerprint, "settings": self.settings(),
                "seed": self.seed, "model": asdict(self.model_cfg)}

    def _save(self, path: Path) -> None:
        save_atomic({"format": CACHE_FORMAT, "vocab": self.vocab_.state(), "state": self.net_.state_dict(),
                     "train_seconds": float(self.train_seconds_ or 0.0), "heldout_score": self.heldout_score_,
                     "epochs": self.epochs_}, path)

    def _load(self, task: "TaskSpec", path: Path) -> bool:
        """False (and train again) when the file is unreadable or from an incompatible version."""
        try:
            saved = torch.load(path, map_location=self.device, weights_only=True)
            self.vocab_ = Vocab.from_state(saved["vocab"])
            net = self._make_net(task).to(self.device)
            net.load_state_dict(saved["state"])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError) as exc:
            warnings.warn(f"{path}: unusable cached model ({type(exc).__name__}); training again")
            return False
        self.net_ = net.eval()
        self.train_seconds_ = saved["train_seconds"]
        self.heldout_score_ = saved["heldout_score"]
        self.epochs_ = saved.get("epochs")
        return True

    # --- facts for the Result ----------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        if self.net_ is None:
            return 0, 0
        params = list(self.net_.parameters())
        return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)

    def weights(self) -> str:
        return "trained"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "train": asdict(self.train_cfg), "model": asdict(self.model_cfg)}
