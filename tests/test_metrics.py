"""Metrics: hand-worked cases (expected values derived in comments) plus property tests."""

from __future__ import annotations

import string
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, matthews_corrcoef

from benchmark import metrics as M
from benchmark.metrics import (
    accuracy, bootstrap_ci, exact_match, f1, mcc, normalize_squad, normalize_triviaqa,
    per_example, score, token_f1,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Each example calls scikit-learn (milliseconds of input validation): fewer, to keep the file fast.
SKLEARN = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------
# classification, by hand

def test_accuracy_counts_unparseable_as_wrong():
    # matches at positions 0, 1, 3 (the -1 at 4 is wrong) -> 3/5 = 60
    assert accuracy([1, 0, 1, 1, -1], [1, 0, 0, 1, 1]) == pytest.approx(60.0)


def test_f1_binary_with_unparseable_prediction():
    # predicted positive: 0, 2, 3 (-1 is not positive); true positive refs: 0, 3, 4
    # TP = {0, 3} = 2, FP = {2} = 1, FN = {4} = 1 -> F1 = 2*2 / (2*2 + 1 + 1) = 4/6 = 66.67
    assert f1([1, 0, 1, 1, -1], [1, 0, 0, 1, 1]) == pytest.approx(200 / 3)


def test_f1_no_positive_predictions_is_zero():
    # TP = 0, so precision is 0/0 -> 0 (zero_division=0) and F1 = 0
    assert f1([0, 0, 0], [1, 0, 1]) == 0.0
    assert f1([-1, -1, 0], [1, 0, 1]) == 0.0


def test_f1_no_positives_anywhere_is_zero():
    assert f1([0, 0], [0, 0]) == 0.0


def test_f1_positive_vs_rest_for_three_classes():
    # positive = 2: predicted {0, 2}, true {0, 1}: TP=1, FP=1, FN=1 -> F1 = 2/4 = 50
    assert f1([2, 1, 2, 0], [2, 2, 1, 0], positive=2) == pytest.approx(50.0)
    # positive = 0 on the same data: TP = {3}, FP = FN = 0 -> 100
    assert f1([2, 1, 2, 0], [2, 2, 1, 0], positive=0) == pytest.approx(100.0)


def test_f1_respects_positive_label_for_binary():
    # positive = 0 on the first example: predicted 0 at {1}, true 0 at {1, 2}: TP=1, FP=0, FN=1
    # F1 = 2 / (2 + 0 + 1) = 66.67
    assert f1([1, 0, 1, 1, -1], [1, 0, 0, 1, 1], positive=0) == pytest.approx(200 / 3)


def test_mcc_binary_by_hand():
    # TP={0,4}=2, FP={1}=1, TN={2,3}=2, FN={5}=1
    # MCC = (2*2 - 1*1) / sqrt((2+1)(2+1)(2+1)(2+1)) = 3/9 -> 33.33
    assert mcc([1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 1]) == pytest.approx(100 / 3)


def test_mcc_range_and_degenerate():
    assert mcc([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-100.0)  # perfectly inverted
    assert mcc([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(100.0)
    assert mcc([1, 1, 1, 1], [1, 0, 1, 0]) == 0.0  # constant predictions: undefined -> 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mcc([1, 1], [1, 1]) == 0.0  # one label throughout: 0, without sklearn's warning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert matthews_corrcoef([1, 1], [1, 1]) == 0.0  # ... which is what sklearn says too


def test_mcc_unparseable_is_an_extra_class():
    # classes {-1, 0, 1}; s = 4, correct c = 3
    # true counts t = (0, 2, 2), predicted counts p = (1, 2, 1)
    # cov(y,ŷ) = c*s - t.p = 12 - 6 = 6; s² - p.p = 16 - 6 = 10; s² - t.t = 16 - 8 = 8
    # MCC = 6 / sqrt(80) = 0.670820 -> 67.08
    assert mcc([1, -1, 0, 0], [1, 1, 0, 0]) == pytest.approx(600 / np.sqrt(80))


def test_classification_input_validation():
    with pytest.raises(ValueError, match="2 predictions but 3 references"):
        accuracy([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="no examples"):
        f1([], [])
    with pytest.raises(ValueError, match="integer"):
        mcc([0.5, 1.0], [0, 1])


# ---------------------------------------------------------------------------------------
# SQuAD normalisation and scores, by hand

def test_squad_punctuation_removed():
    assert normalize_squad("Denver Broncos!") == "denver broncos"
    assert exact_match("Denver Broncos!", ["denver broncos"]) == 100.0
    # punctuation is deleted, not replaced by a space
    assert normalize_squad("U.S.A.") == "usa"
    assert normalize_squad("rock'n'roll") == "rocknroll"


def test_squad_articles_whole_words_only():
    assert normalize_squad("The Eiffel Tower") == "eiffel tower"
    assert normalize_squad("theater") == "theater"
    assert normalize_squad("Theater of the Absurd") == "theater of absurd"
    assert normalize_squad("An apple a day") == "apple day"
    assert normalize_squad("anathema") == "anathema"


def test_squad_unicode():
    assert normalize_squad("Café") == "café"
    # the en dash is not in string.punctuation, so it stays; the ASCII hyphen goes
    assert "–" not in string.punctuation
    assert normalize_squad("1990–1995") == "1990–1995"
    assert normalize_squad("1990-1995") == "19901995"
    # curly apostrophe is not ASCII punctuation either
    assert normalize_squad("It’s") == "it’s"


def test_squad_whitespace_collapsed():
    assert normalize_squad("  big \t red\n\n dog  ") == "big red dog"
    assert normalize_squad("a\tb \n c") == "b c"  # 'a' is an article


def test_empty_prediction_scores_zero():
    assert exact_match("", ["Denver Broncos"]) == 0.0
    assert token_f1("", ["Denver Broncos"]) == 0.0


def test_both_empty_after_normalisation_official_quirk():
    # Official v1.1: EM compares strings ('' == '' -> 100) but F1 needs a common token (-> 0).
    assert exact_match("The", ["a"]) == 100.0
    assert token_f1("The", ["a"]) == 0.0


def test_partial_overlap_f1_by_hand():
    # [big, red, dog] vs [red, dog, house]: common 2, P = 2/3, R = 2/3 -> F1 = 2/3 = 66.67
    assert token_f1("the big red dog", ["red dog house"]) == pytest.approx(200 / 3)
    assert exact_match("the big red dog", ["red dog house"]) == 0.0


def test_repeated_tokens_use_counter_intersection():
    # [dog, dog, dog] vs [dog]: common min(3, 1) = 1, P = 1/3, R = 1 -> F1 = (2/3)/(4/3) = 50
    assert token_f1("dog dog dog", ["dog"]) == pytest.approx(50.0)


def test_max_over_several_ground_truths():
    # vs "blue cat": 0; vs "red dog house": P = 2/2, R = 2/3 -> F1 = (4/3)/(5/3) = 80
    assert token_f1("red dog", ["blue cat", "red dog house"]) == pytest.approx(80.0)
    assert exact_match("red dog", ["blue cat", "Red dog."]) == 100.0
    assert exact_match("red dog", ["blue cat", "red dog house"]) == 0.0


def test_qa_input_validation():
    with pytest.raises(ValueError, match="normalizer"):
        exact_match("x", ["x"], normalizer="nope")
    with pytest.raises(ValueError, match="normalizer"):
        token_f1("x", ["x"], normalizer="SQuAD")
    with pytest.raises(ValueError, match="list of strings"):
        exact_match("x", "x")  # a bare string would be matched character by character
    with pytest.raises(ValueError, match="no ground-truth"):
        token_f1("x", [])
    with pytest.raises(ValueError, match="must be a string"):
        exact_match(None, ["x"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# TriviaQA normalisation

def test_triviaqa_vs_squad_normalisation():
    assert normalize_triviaqa("Sir_Edmund-Hillary") == "sir edmund hillary"
    # '_' and '-' are both in string.punctuation: SQuAD deletes them and joins the words
    assert normalize_squad("Sir_Edmund-Hillary") == "siredmundhillary"
    assert exact_match("Edmund Hillary", ["Edmund-Hillary"], normalizer="triviaqa") == 100.0
    assert exact_match("Edmund Hillary", ["Edmund-Hillary"], normalizer="squad") == 0.0


def test_triviaqa_extra_quote_characters_become_spaces():
    assert normalize_triviaqa("It’s") == "it s"
    assert normalize_triviaqa("‘The Beatles’") == "beatles"
    assert normalize_triviaqa("rock´n`roll") == "rock n roll"
    assert normalize_triviaqa("  The  Who! ") == "who"
    assert normalize_triviaqa("theater") == "theater"


def test_triviaqa_alias_matching():
    aliases = ["Sir Edmund Hillary", "Edmund Hillary", "Ed Hillary", "Hillary, Edmund",
               "E. P. Hillary", "Sir Edmund Percival Hillary", "Edmund_Hillary"] + [f"alias {i}" for i in range(50)]
    assert exact_match("edmund hillary", aliases, normalizer="triviaqa") == 100.0
    # "Hillary, Edmund" normalises to "hillary edmund": the comma becomes a space
    assert exact_match("Hillary Edmund", aliases, normalizer="triviaqa") == 100.0
    assert exact_match("Edmund Hilary", aliases, normalizer="triviaqa") == 0.0
    # best alias for "edmund hilary" is "edmund hillary": common 1, P = R = 1/2 -> F1 = 50
    # (vs "sir edmund hillary": P = 1/2, R = 1/3 -> 40)
    assert token_f1("Edmund Hilary", aliases, normalizer="triviaqa") == pytest.approx(50.0)
    # "mount everest hillary" vs "ed hillary": common 1, P = 1/3, R = 1/2 -> F1 = (1/3)/(5/6) = 40
    # vs "edmund hillary" is the same 40; nothing does better
    assert token_f1("mount everest hillary", aliases[:4], normalizer="triviaqa") == pytest.approx(40.0)


# ---------------------------------------------------------------------------------------
# score() and per_example()

def test_score_classification():
    preds, refs = [1, 0, 1, 1, -1], [1, 0, 0, 1, 1]
    out = score("classification", ["accuracy", "f1", "mcc"], preds, refs)
    assert list(out) == ["accuracy", "f1", "mcc"]
    assert out["accuracy"] == pytest.approx(60.0)
    assert out["f1"] == pytest.approx(200 / 3)
    assert out["mcc"] == pytest.approx(matthews_corrcoef(refs, preds) * 100)
    assert score("classification", ["f1"], preds, refs, positive=0)["f1"] == pytest.approx(200 / 3)


def test_score_qa_averages_examples():
    preds = ["Denver Broncos", "the big red dog", ""]
    refs = [["Denver Broncos", "Broncos"], ["red dog house"], ["x"]]
    out = score("extractive_qa", ["exact_match", "f1"], preds, refs)
    # EM: 100, 0, 0 -> 33.33; F1: 100, 66.67, 0 -> 55.56
    assert out["exact_match"] == pytest.approx(100 / 3)
    assert out["f1"] == pytest.approx((100 + 200 / 3) / 3)
    tq = score("closed_book_qa", ["exact_match"], ["edmund hillary"], [["Edmund_Hillary"]], normalizer="triviaqa")
    assert tq == {"exact_match": 100.0}


def test_score_unknown_metric_names_it_and_valid_ones():
    with pytest.raises(ValueError) as e:
        score("classification", ["exact_match"], [1], [1])
    assert "exact_match" in str(e.value) and "accuracy, f1, mcc" in str(e.value)
    with pytest.raises(ValueError, match="mcc"):
        score("extractive_qa", ["mcc"], ["a"], [["a"]])
    with pytest.raises(ValueError, match="kind"):
        score("regression", ["accuracy"], [1], [1])
    with pytest.raises(ValueError, match="no metrics"):
        score("classification", [], [1], [1])
    with pytest.raises(ValueError, match="not the string"):
        score("classification", "accuracy", [1], [1])


def test_score_length_mismatch_and_empty():
    with pytest.raises(ValueError, match="aligned"):
        score("classification", ["accuracy"], [1, 0], [1])
    with pytest.raises(ValueError, match="aligned"):
        score("extractive_qa", ["f1"], ["a"], [["a"], ["b"]])
    with pytest.raises(ValueError, match="no examples"):
        score("closed_book_qa", ["exact_match"], [], [])


def test_score_qa_reference_must_be_list():
    with pytest.raises(ValueError, match="list of strings"):
        score("extractive_qa", ["exact_match"], ["Paris"], ["Paris"])


def test_per_example():
    np.testing.assert_array_equal(per_example("classification", "accuracy", [1, 0, -1], [1, 1, 0]), [100.0, 0.0, 0.0])
    assert per_example("classification", "f1", [1, 0], [1, 1]) is None
    assert per_example("classification", "mcc", [1, 0], [1, 1]) is None
    qa = per_example("extractive_qa", "f1", ["the big red dog", "x"], [["red dog house"], ["x", "y"]])
    np.testing.assert_allclose(qa, [200 / 3, 100.0])
    em = per_example("closed_book_qa", "exact_match", ["a_b"], [["a b"]], normalizer="triviaqa")
    np.testing.assert_array_equal(em, [100.0])
    with pytest.raises(ValueError, match="accuracy"):
        per_example("extractive_qa", "accuracy", ["a"], [["a"]])


def test_metric_tables_agree_with_task_parser():
    from benchmark import tasks

    assert M.METRICS_BY_KIND == dict(tasks.METRICS_BY_KIND)
    assert tuple(M.NORMALIZERS) == tuple(tasks.NORMALIZERS)


# ---------------------------------------------------------------------------------------
# bootstrap

def _noisy_labels(n: int, seed: int, k: int = 2, p_correct: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, k, n)
    wrong = (refs + rng.integers(1, k, n)) % k
    preds = np.where(rng.random(n) < p_correct, refs, wrong)
    preds[rng.random(n) < 0.02] = -1
    return preds, refs


def test_bootstrap_deterministic_for_seed():
    preds, refs = _noisy_labels(300, 1)
    a = bootstrap_ci("classification", ["accuracy", "f1", "mcc"], preds, refs, n_resamples=300, seed=7)
    b = bootstrap_ci("classification", ["accuracy", "f1", "mcc"], preds, refs, n_resamples=300, seed=7)
    c = bootstrap_ci("classification", ["accuracy", "f1", "mcc"], preds, refs, n_resamples=300, seed=8)
    assert a == b
    assert a != c
    # a metric's interval does not depend on which other metrics were asked for
    assert bootstrap_ci("classification", ["mcc"], preds, refs, n_resamples=300, seed=7)["mcc"] == a["mcc"]


def test_bootstrap_contains_point_estimate():
    preds, refs = _noisy_labels(400, 2, k=3)
    metrics = ["accuracy", "f1", "mcc"]
    point = score("classification", metrics, preds, refs, positive=2)
    ci = bootstrap_ci("classification", metrics, preds, refs, positive=2, n_resamples=500)
    for m in metrics:
        lo, hi = ci[m]
        assert lo <= point[m] <= hi, (m, lo, point[m], hi)
        assert hi - lo > 0.5  # a real interval on noisy data, not a collapsed one

    qa_pred = ["red dog", "blue", "the cat", "a fish", "x y z", "dog"] * 20
    qa_ref = [["red dog house"], ["blue"], ["cat"], ["bird"], ["x"], ["dog", "hound"]] * 20
    qpoint = score("extractive_qa", ["exact_match", "f1"], qa_pred, qa_ref)
    qci = bootstrap_ci("extractive_qa", ["exact_match", "f1"], qa_pred, qa_ref, n_resamples=500)
    for m in qpoint:
        assert qci[m][0] <= qpoint[m] <= qci[m][1]
        assert 0.0 <= qci[m][0] < qci[m][1] <= 100.0


def test_bootstrap_degenerate_is_a_point_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DegenerateDataWarning, no RuntimeWarning
        labels = [1, 0, 1, 1, 0, 1]
        ci = bootstrap_ci("classification", ["accuracy"], labels, labels)
        assert ci == {"accuracy": (100.0, 100.0)}
        assert bootstrap_ci("classification", ["accuracy"], [0, 0, 0], [1, 1, 1]) == {"accuracy": (0.0, 0.0)}
        assert bootstrap_ci("classification", ["f1", "mcc"], [1, 1, 1], [1, 1, 1]) == \
            {"f1": (100.0, 100.0), "mcc": (0.0, 0.0)}
        assert bootstrap_ci("extractive_qa", ["exact_match", "f1"], ["a b", "c"], [["a b"], ["C"]]) == \
            {"exact_match": (100.0, 100.0), "f1": (100.0, 100.0)}


def test_bootstrap_single_example():
    assert bootstrap_ci("classification", ["accuracy", "f1", "mcc"], [1], [0]) == \
        {"accuracy": (0.0, 0.0), "f1": (0.0, 0.0), "mcc": (0.0, 0.0)}
    ci = bootstrap_ci("extractive_qa", ["f1"], ["the big red dog"], [["red dog house"]])
    assert ci["f1"] == (pytest.approx(200 / 3), pytest.approx(200 / 3))


def test_bootstrap_validation():
    with pytest.raises(ValueError, match="aligned"):
        bootstrap_ci("classification", ["accuracy"], [1, 0], [1])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci("classification", ["accuracy"], [1, 0], [1, 1], n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci("classification", ["accuracy"], [1, 0], [1, 1], confidence=95)
    with pytest.raises(ValueError, match="bleu"):
        bootstrap_ci("extractive_qa", ["bleu"], ["a"], [["a"]])


@pytest.mark.parametrize("metric", ["f1", "mcc"])
@pytest.mark.parametrize("k", [2, 3])
def test_numpy_statistic_matches_sklearn(metric: str, k: int):
    positive = k - 1
    preds, refs = _noisy_labels(997, 3 + k, k=k, p_correct=0.6)
    data, statistic = M._corpus_statistic(metric, preds, refs, positive)
    expected = f1(preds, refs, positive) if metric == "f1" else mcc(preds, refs)
    assert float(statistic(*data)) == pytest.approx(expected, abs=1e-9)

    # vectorized: each row of a stack of resamples gets its own value
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(preds), (25, len(preds)))
    values = statistic(data[0][idx], data[1][idx], axis=-1)
    assert values.shape == (25,)
    for row, v in zip(idx, values):
        if metric == "f1":
            want = f1_score(refs[row] == positive, preds[row] == positive, zero_division=0) * 100
        else:
            want = matthews_corrcoef(refs[row], preds[row]) * 100
        assert v == pytest.approx(want, abs=1e-9)


def test_bootstrap_large_input_runs():
    # runtime sanity (not timed): 40,000 examples stay vectorized and give narrow intervals
    preds, refs = _noisy_labels(40_000, 4)
    metrics = ["accuracy", "f1", "mcc"]
    point = score("classification", metrics, preds, refs)
    ci = bootstrap_ci("classification", metrics, preds, refs, n_resamples=100)
    for m in metrics:
        lo, hi = ci[m]
        assert lo <= point[m] <= hi
        assert hi - lo < 3.0


# ---------------------------------------------------------------------------------------
# properties

def _paired_label_lists(max_label: int = 2):
    return st.integers(1, 40).flatmap(lambda n: st.tuples(
        st.lists(st.integers(-1, max_label), min_size=n, max_size=n),
        st.lists(st.integers(0, max_label), min_size=n, max_size=n),
    ))


@SKLEARN
@given(_paired_label_lists(), st.integers(0, 2))
def test_classification_scores_in_range(pair, positive):
    preds, refs = pair
    out = score("classification", ["accuracy", "f1", "mcc"], preds, refs, positive=positive)
    assert 0.0 <= out["accuracy"] <= 100.0
    assert 0.0 <= out["f1"] <= 100.0
    assert -100.0 - 1e-9 <= out["mcc"] <= 100.0 + 1e-9
    assert out["accuracy"] == pytest.approx(float(np.mean(per_example("classification", "accuracy", preds, refs))))


@SKLEARN
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.integers(0, 3))
def test_identical_labels_score_perfectly(labels, positive):
    assert accuracy(labels, labels) == 100.0
    if positive in labels:
        assert f1(labels, labels, positive=positive) == pytest.approx(100.0)
    else:
        assert f1(labels, labels, positive=positive) == 0.0


@SKLEARN
@given(_paired_label_lists(3), st.integers(0, 3))
def test_numpy_statistic_matches_sklearn_property(pair, positive):
    preds, refs = (np.asarray(x) for x in pair)
    data, stat = M._corpus_statistic("f1", preds, refs, positive)
    assert float(stat(*data)) == pytest.approx(f1(preds, refs, positive), abs=1e-9)
    data, stat = M._corpus_statistic("mcc", preds, refs, positive)
    assert float(stat(*data)) == pytest.approx(mcc(preds, refs), abs=1e-9)


@FAST
@given(st.text())
def test_normalizers_total_and_idempotent(text):
    for normalize in (normalize_squad, normalize_triviaqa):
        once = normalize(text)
        assert normalize(once) == once
        assert once == once.strip() and "  " not in once
    assert not set(normalize_squad(text)) & set(string.punctuation)


# Words mixing article-like letters, punctuation and odd Unicode, to stress the regexes.
_tricky_text = st.lists(
    st.sampled_from(["a", "an", "the", "The", "A.", "_", "-", "’", "´", "`", "é", "İ", "ß", "–", " ", "\t",
                     "x", "théâtre", "Ⅻ", "\u0301", "\u00a0", "\u2003"]),
    max_size=12,
).map("".join)


@FAST
@given(st.one_of(st.text(), _tricky_text))
def test_self_match_is_perfect(text):
    for name, normalize in (("squad", normalize_squad), ("triviaqa", normalize_triviaqa)):
        assert normalize(normalize(text)) == normalize(text)
        if normalize(text):
            assert exact_match(text, [text], normalizer=name) == 100.0
            assert token_f1(text, [text], normalizer=name) == 100.0
        else:
            assert token_f1(text, [text], normalizer=name) == 0.0  # official quirk: no tokens, no F1
