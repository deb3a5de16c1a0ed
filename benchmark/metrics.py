"""Evaluation metrics: pure functions, every score on a 0-100 scale (MCC on -100..100).

Classification metrics follow GLUE (accuracy; binary F1 of one positive class, as for QQP/MRPC;
Matthews correlation, as for CoLA) and are computed with scikit-learn so the numbers match the
published ones. QA metrics re-implement the official SQuAD v1.1 and TriviaQA evaluation scripts
(their normalisation differs, and the difference moves scores by whole points).

Confidence intervals come from a percentile bootstrap (`scipy.stats.bootstrap`). Metrics that
are a mean over examples bootstrap the per-example scores; corpus-level metrics (F1, MCC)
resample the (prediction, reference) pairs and recompute the metric with a vectorized numpy
statistic that is tested to agree with scikit-learn.

A prediction of -1 in classification means "the model's output could not be parsed": it never
equals a reference label, and it is never the positive class.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from .errors import choices_hint

from .tasks import METRICS_BY_KIND, NORMALIZERS  # the vocabularies live beside TaskSpec

QA_KINDS = ("extractive_qa", "closed_book_qa")

# Most resampled values held in memory at once by one bootstrap batch (values, not bytes).
_BOOTSTRAP_BATCH_VALUES = 1_000_000

# ---------------------------------------------------------------------------------------
# classification


def _label_array(values: Sequence[int], name: str) -> np.ndarray:
    """1-D integer array; floats or strings here mean a bug upstream, so refuse them."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of integer labels, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must contain integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _paired_labels(predictions: Sequence[int], references: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    p = _label_array(predictions, "predictions")
    r = _label_array(references, "references")
    _check_lengths(len(p), len(r))
    return p, r


def _check_lengths(n_pred: int, n_ref: int) -> None:
    """Scores over zero examples, or over misaligned lists, would be meaningless numbers."""
    if n_pred != n_ref:
        raise ValueError(f"{n_pred} predictions but {n_ref} references: they must be aligned")
    if n_pred == 0:
        raise ValueError("no examples to score (predictions and references are empty)")


def accuracy(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Percentage of exact label matches; an unparseable prediction (-1) is simply wrong."""
    p, r = _paired_labels(predictions, references)
    return float(np.mean(p == r) * 100.0)


def f1(predictions: Sequence[int], references: Sequence[int], positive: int = 1) -> float:
    """Binary F1 of the `positive` class (GLUE's QQP/MRPC F1), 0-100.

    Everything that is not `positive` (other classes, -1 for unparseable outputs) counts as
    negative, so this is also "positive vs the rest" for more than two classes. With no true and
    no predicted positives the F1 is 0 (zero_division=0), as in scikit-learn and GLUE.
    """
    from sklearn.metrics import f1_score

    p, r = _paired_labels(predictions, references)
    return float(
        f1_score((r == positive).astype(np.int8), (p == positive).astype(np.int8),
                 pos_label=1, average="binary", zero_division=0) * 100.0
    )


def mcc(predictions: Sequence[int], references: Sequence[int]) -> float:
    """Matthews correlation × 100 (GLUE's CoLA metric); range -100..100, 0 = chance.

    Computed by scikit-learn over all labels present, so an unparseable prediction (-1) acts
    as an extra, always-wrong class. Constant predictions or references give 0.
    """
    from sklearn.metrics import matthews_corrcoef

    p, r = _paired_labels(predictions, references)
    if np.all(p == p[0]) and np.all(r == p[0]):
        # One label throughout: MCC is 0 by definition. scikit-learn returns 0 too, but warns
        # about its confusion matrix shape; answering directly keeps evaluation logs clean.
        return 0.0
    return float(matthews_corrcoef(r, p) * 100.0)


# ---------------------------------------------------------------------------------------
# QA normalisation (official SQuAD v1.1 and TriviaQA scripts, Python 3 / Unicode semantics)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SQUAD_DELETE = str.maketrans("", "", string.punctuation)
_TRIVIAQA_TO_SPACE = str.maketrans({ch: " " for ch in string.punctuation + "\u2018\u2019\u00b4`"})


def normalize_squad(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, delete ASCII punctuation, drop a/an/the, collapse spaces.

    Punctuation is deleted, not spaced, so "Sir_Edmund-Hillary" becomes one token; only
    `string.punctuation` counts (a Unicode dash such as "–" is kept).
    """
    text = text.lower().translate(_SQUAD_DELETE)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_triviaqa(text: str) -> str:
    """TriviaQA normalisation: '_' and punctuation (plus ‘ ’ ´ `) become spaces, then as SQuAD."""
    text = text.replace("_", " ").lower().translate(_TRIVIAQA_TO_SPACE)
    return " ".join(_ARTICLES.sub(" ", text).split()).strip()


def _normalizer(name: str) -> Callable[[str], str]:
    if name == "squad":
        return normalize_squad
    if name == "triviaqa":
        return normalize_triviaqa
    raise ValueError(f"unknown normalizer {name!r}; {choices_hint(str(name), NORMALIZERS)}")


def _check_ground_truths(ground_truths: Sequence[str]) -> None:
    """A bare string would be iterated as characters and silently score against letters."""
    if isinstance(ground_truths, str):
        raise ValueError(f"ground truths must be a list of strings, not the string {ground_truths!r}")
    if len(ground_truths) == 0:
        raise ValueError("an example has no ground-truth answers; it cannot be scored")
    for gt in ground_truths:
        if not isinstance(gt, str):
            raise ValueError(f"ground-truth answers must be strings, got {type(gt).__name__}: {gt!r}")


def _check_prediction(prediction: str) -> None:
    if not isinstance(prediction, str):
        raise ValueError(f"a QA prediction must be a string, got {type(prediction).__name__}: {prediction!r}")


def _em(pred_norm: str, gt_norm: str) -> float:
    return 100.0 if pred_norm == gt_norm else 0.0


def _tok_f1(pred_norm: str, gt_norm: str) -> float:
    """Official v1.1 token F1: no common token means 0, even when both sides are empty."""
    pred_tokens = pred_norm.split()
    gt_tokens = gt_norm.split()
    num_same = sum((Counter(pred_tokens) & Counter(gt_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gt_tokens)
    return 100.0 * (2 * precision * recall) / (precision + recall)


def _max_over(scorer: Callable[[str, str], float], prediction: str, ground_truths: Sequence[str],
              normalize: Callable[[str], str]) -> float:
    """Best score against any ground truth (SQuAD's several annotators, TriviaQA's aliases)."""
    _check_prediction(prediction)
    _check_ground_truths(ground_truths)
    pred_norm = normalize(prediction)
    return max(scorer(pred_norm, normalize(gt)) for gt in ground_truths)


def exact_match(prediction: str, ground_truths: Sequence[str], normalizer: str = "squad") -> float:
    """100 if the normalised prediction equals any normalised ground truth, else 0."""
    return _max_over(_em, prediction, ground_truths, _normalizer(normalizer))


def token_f1(prediction: str, ground_truths: Sequence[str], normalizer: str = "squad") -> float:
    """SQuAD token-overlap F1 (bag of normalised tokens), 0-100, best over ground truths."""
    return _max_over(_tok_f1, prediction, ground_truths, _normalizer(normalizer))


# ---------------------------------------------------------------------------------------
# per-example scores and the dispatcher


def _check_kind_metric(kind: str, metric: str) -> None:
    if kind not in METRICS_BY_KIND:
        raise ValueError(f"unknown task kind {kind!r}; {choices_hint(str(kind), METRICS_BY_KIND)}")
    if metric not in METRICS_BY_KIND[kind]:
        raise ValueError(f"unknown metric {metric!r} for kind {kind}; "
                         f"{choices_hint(str(metric), METRICS_BY_KIND[kind])}")


def _is_decomposable(kind: str, metric: str) -> bool:
    """Mean-of-examples metrics; classification F1 and MCC are corpus-level."""
    return kind in QA_KINDS or metric == "accuracy"


def per_example(kind: str, metric: str, predictions: Sequence, references: Sequence, *,
                normalizer: str = "squad") -> np.ndarray | None:
    """Per-example scores (floats, 0-100) whose mean is the metric; None for corpus-level metrics.

    Used for bootstrap intervals and paired significance tests. For QA kinds, references[i] is
    the list of acceptable answers for example i.
    """
    _check_kind_metric(kind, metric)
    normalize = _normalizer(normalizer)
    if not _is_decomposable(kind, metric):
        return None
    _check_lengths(len(predictions), len(references))
    if kind == "classification":
        p, r = _paired_labels(predictions, references)
        return np.where(p == r, 100.0, 0.0)
    scorer = _em if metric == "exact_match" else _tok_f1
    return np.array([_max_over(scorer, pred, gts, normalize) for pred, gts in zip(predictions, references)],
                    dtype=np.float64)


def _check_metrics(kind: str, metrics: Sequence[str]) -> None:
    if isinstance(metrics, str):
        raise ValueError(f"metrics must be a list of names, not the string {metrics!r}")
    if len(metrics) == 0:
        raise ValueError("no metrics requested")
    for m in metrics:
        _check_kind_metric(kind, m)


def score(kind: str, metrics: Sequence[str], predictions: Sequence, references: Sequence, *,
          positive: int = 1, normalizer: str = "squad") -> dict[str, float]:
    """Compute each requested metric for a task kind, in the order requested.

    For QA kinds "f1" is the mean token F1 over examples; for classification it is the binary
    F1 of `positive`. Raises ValueError on unknown metrics, empty or misaligned inputs.
    """
    _check_metrics(kind, metrics)
    _normalizer(normalizer)
    _check_lengths(len(predictions), len(references))
    out: dict[str, float] = {}
    for m in metrics:
        out[m] = _point(kind, m, predictions, references, positive=positive, normalizer=normalizer)
    return out


def _point(kind: str, metric: str, predictions: Sequence, references: Sequence, *,
           positive: int, normalizer: str) -> float:
    if kind == "classification" and metric == "f1":
        return f1(predictions, references, positive=positive)
    if kind == "classification" and metric == "mcc":
        return mcc(predictions, references)
    scores = per_example(kind, metric, predictions, references, normalizer=normalizer)
    assert scores is not None  # decomposable by construction
    return float(np.mean(scores))


# ---------------------------------------------------------------------------------------
# bootstrap confidence intervals


def _f1_from_binary(pred_pos: np.ndarray, ref_pos: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorized binary F1 × 100 from boolean "is positive" arrays; 0 when undefined.

    Confusion counts are taken along `axis` (one F1 per leading index, i.e. per resample):
    F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (predicted positives + true positives).
    """
    tp = np.count_nonzero(pred_pos & ref_pos, axis=axis)
    denom = np.count_nonzero(pred_pos, axis=axis) + np.count_nonzero(ref_pos, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 200.0 * tp / denom, 0.0)


def _mcc_from_indices(pred_idx: np.ndarray, ref_idx: np.ndarray, k: int, axis: int = -1) -> np.ndarray:
    """Vectorized multiclass MCC × 100 (Gorodkin's R_K, as scikit-learn); 0 when undefined.

    R_K needs only the confusion matrix's row sums t, column sums p and trace c, so they are
    counted directly along `axis` (O(k·n), cheap for the handful of classes a task has):
    MCC = (c·s − t·p) / sqrt((s² − p·p)(s² − t·t)), s = number of examples.
    """
    t = np.stack([np.count_nonzero(ref_idx == j, axis=axis) for j in range(k)], axis=-1).astype(np.float64)
    p = np.stack([np.count_nonzero(pred_idx == j, axis=axis) for j in range(k)], axis=-1).astype(np.float64)
    c = np.count_nonzero(pred_idx == ref_idx, axis=axis).astype(np.float64)
    s = np.float64(ref_idx.shape[axis])
    cov_tp = c * s - (t * p).sum(axis=-1)
    cov_pp = s * s - (p * p).sum(axis=-1)
    cov_tt = s * s - (t * t).sum(axis=-1)
    denom = cov_tt * cov_pp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 100.0 * cov_tp / np.sqrt(denom), 0.0)


def _corpus_statistic(metric: str, p: np.ndarray, r: np.ndarray, positive: int
                      ) -> tuple[tuple[np.ndarray, np.ndarray], Callable[..., np.ndarray]]:
    """Compact paired arrays (small dtypes keep resampling cheap) and a vectorized statistic."""
    if metric == "f1":
        return ((p == positive), (r == positive)), _f1_from_binary
    classes, inverse = np.unique(np.concatenate([p, r]), return_inverse=True)
    k = len(classes)
    dtype = np.int8 if k <= 127 else np.int64
    data = (inverse[: len(p)].astype(dtype), inverse[len(p):].astype(dtype))

    def statistic(pred_idx: np.ndarray, ref_idx: np.ndarray, axis: int = -1) -> np.ndarray:
        return _mcc_from_indices(pred_idx, ref_idx, k, axis=axis)

    return data, statistic


def _mean_statistic(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def bootstrap_ci(kind: str, metrics: Sequence[str], predictions: Sequence, references: Sequence, *,
                 positive: int = 1, normalizer: str = "squad", n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap confidence interval (lo, hi) per metric, deterministic for a seed.

    Every metric gets a fresh generator seeded with `seed`, so all metrics of one call see the
    same resamples and a metric's interval does not depend on which others were requested.
    When every resample must give the same value (one example, or all examples identical,
    e.g. all correct) the interval is (x, x) without resampling.
    """
    from scipy.stats import bootstrap

    _check_metrics(kind, metrics)
    _normalizer(normalizer)
    _check_lengths(len(predictions), len(references))
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")

    n = len(predictions)
    batch = max(1, min(int(n_resamples), _BOOTSTRAP_BATCH_VALUES // n))
    out: dict[str, tuple[float, float]] = {}
    for m in metrics:
        if _is_decomposable(kind, m):
            scores = per_example(kind, m, predictions, references, normalizer=normalizer)
            assert scores is not None
            if np.all(scores == scores[0]):
                point = float(np.mean(scores))
                out[m] = (point, point)
                continue
            data: tuple[np.ndarray, ...] = (scores,)
            statistic: Callable[..., np.ndarray] = _mean_statistic
            paired = False
        else:
            p, r = _paired_labels(predictions, references)
            if np.all(p == p[0]) and np.all(r == r[0]):
                point = _point(kind, m, p, r, positive=positive, normalizer=normalizer)
                out[m] = (point, point)
                continue
            data, statistic = _corpus_statistic(m, p, r, positive)
            paired = True
        res = bootstrap(data, statistic, n_resamples=int(n_resamples), batch=batch, vectorized=True,
                        paired=paired, confidence_level=confidence, method="percentile",
                        rng=np.random.default_rng(seed))
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            # Our statistics are finite by construction, so this is a bug, not a case to paper over.
            raise RuntimeError(f"bootstrap interval for {m} is not finite: ({lo}, {hi})")
        out[m] = (lo, hi)
    return out
