"""Feature-based reuse (`--mode frozen`): a linear probe on pooled features of a frozen encoder.

The backbone runs once over the train split to give one vector per text; a logistic regression
(the probe protocol of SentEval and MTEB) trains on the stored vectors in seconds. Training a head
with the Trainer instead reran the frozen forward at every step of every epoch, read CLS through a
pooler the checkpoint never trained, and used a fine-tuning learning rate (SST-2: chance, 266 s).

* Pooling follows how the checkpoint was trained: sentence-transformers' `1_Pooling/config.json`
  when it has one (mean pooling for all-MiniLM-L6-v2), BERT's CLS token otherwise.
* Sentence pairs are encoded one text at a time and joined as [u; v; |u-v|; u*v] (SentEval,
  InferSent), or jointly as the model's own pair input (`PAIR_ENCODINGS`). Apart is the default:
  all-MiniLM-L6-v2 with 2,000 train pairs, first 1,000 dev pairs, scores QQP 81.8 / MNLI-m 51.6 /
  MNLI-mm 55.4 accuracy that way against 72.3 / 39.3 / 41.8 encoded jointly (measured).
* The probe: LogisticRegression (lbfgs, max_iter=1000, deterministic) on the raw pooled
  features, its C chosen as SentEval does, by 5-fold cross-validation on the train features
  over a half-decade grid, never on evaluation data. MTEB's fixed C=1.0 over-fits MiniLM's 384
  features of 4,000 SST-2 sentences (77.6% on dev); the CV's optimum there, and on 2,000 MNLI
  pairs, is C=0.03 (measured: 5-fold accuracy 82.1 / 54.9 against 81.9 / 54.7 at 0.01).

Extractive QA has its own head over token states: `span_probe`. torch and scikit-learn are
imported inside functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

POOLING_FILE = "1_Pooling/config.json"
# sentence-transformers' pooling flags, in the order we honour them (the first one set wins)
POOLING_FLAGS = (("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls"),
                 ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"))
PAIR_ENCODINGS = ("separate", "joint")  # separate: [u; v; |u-v|; u*v]; joint: the pair as one input
PROBE_CS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # ascending; SentEval's grid is 2^-5 .. 2^4
PROBE_DEFAULT_C = 1.0  # too few examples to cross-validate: scikit-learn's and MTEB's C
PROBE_FOLDS = 5
PROBE_MAX_ITER = 1000


def pooling_mode(source: str, *, local_files_only: bool, revision: str | None = None, default: str = "cls") -> str:
    """'mean' | 'cls' | 'max' | 'mean_sqrt_len' from the checkpoint's sentence-transformers pooling
    config; `default` when it has none: 'cls' for a plain BERT checkpoint, 'last' for a model whose
    summary token is its last one (decoder-only models, XLNet)."""
    from transformers.utils import cached_file

    try:
        path = cached_file(source, POOLING_FILE, revision=revision, local_files_only=local_files_only,
                           _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
    except (OSError, ValueError):
        path = None
    if not path:
        return default
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    return next((mode for flag, mode in POOLING_FLAGS if config.get(flag)), default)


def pool(hidden: Any, mask: Any, mode: str) -> Any:
    """[batch, tokens, dim] token states -> [batch, dim], padding excluded."""
    import torch

    if mode == "cls":
        return hidden[:, 0]
    if mode == "last":  # the last real token of each right-padded row
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), mask.sum(dim=1).long() - 1]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1.0)
    return summed / (counts.sqrt() if mode == "mean_sqrt_len" else counts)


def combine(parts: Sequence[np.ndarray]) -> np.ndarray:
    """One text: its vector; a separately encoded pair: [u; v; |u-v|; u*v]."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) != 2:
        raise ValueError(f"expected one or two texts, got {len(parts)}")
    u, v = parts
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def embed(items: Sequence[Sequence[Any]], forward: Callable[[list[Any]], np.ndarray], length: Callable[[Any], int],
          batch_size: int = 64) -> np.ndarray:
    """Pooled features of every item, one backbone pass: `items[i]` holds one input per text, each
    text position runs in length-sorted batches (less padding) and the rows come back in item order."""
    if not items:
        return np.zeros((0, 0), dtype=np.float32)
    parts = []
    for k in range(len(items[0])):
        order = sorted(range(len(items)), key=lambda i: (length(items[i][k]), i))
        chunks = [forward([items[i][k] for i in order[lo:lo + batch_size]])
                  for lo in range(0, len(order), batch_size)]
        out = np.empty((len(items), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
        parts.append(out)
    return combine(parts)


def fit_probe(features: np.ndarray, labels: Sequence[int], *, seed: int, Cs: Sequence[float] = PROBE_CS,
              folds: int = PROBE_FOLDS, max_iter: int = PROBE_MAX_ITER) -> Any:
    """A seeded, deterministic logistic regression on the stored features, with C chosen by
    stratified k-fold accuracy on them (ties: the smaller C); fewer folds when a class is rare,
    and PROBE_DEFAULT_C when there are too few examples to cross-validate."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    y = np.asarray(labels)
    k = min(folds, min(np.unique(y, return_counts=True)[1])) if len(y) else 0
    best = PROBE_DEFAULT_C
    # One BLAS thread: after the backbone's pass, a second OpenBLAS thread beside torch's OpenMP pool made
    # the search for 4,000 SST-2 sentences (384 features) take 6.6 s instead of 0.35 s on 2 cores, and a
    # 60,000 x 1,536 fit was no faster with two (measured).
    with threadpool_limits(1, user_api="blas"):
        if k >= 2 and len(Cs) > 1:
            split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            scores = [cross_val_score(LogisticRegression(C=C, max_iter=max_iter, random_state=seed), features, y,
                                      cv=split).mean() for C in Cs]
            best = Cs[int(np.argmax(scores))]  # argmax takes the first, i.e. the smallest C, on a tie
        return LogisticRegression(C=best, max_iter=max_iter, random_state=seed).fit(features, y)


def probe_parameters(probe: Any) -> int:
    return int(probe.coef_.size + probe.intercept_.size) if probe is not None else 0
