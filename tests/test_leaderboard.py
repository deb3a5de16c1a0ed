"""Leaderboard rendering: sections by provenance, column order, averages, escaping, determinism."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from benchmark import leaderboard
from benchmark.leaderboard import escape_cell, format_params, render
from benchmark.results import DataInfo, Efficiency, Result

LOCAL = "../shared/data"
TASK_OF = {"SST-2": "sst2", "QQP": "qqp", "MNLI-m": "mnli", "MNLI-mm": "mnli", "SQuAD": "squad",
           "TriviaQA": "triviaqa"}
SPLIT_OF = {"MNLI-m": "validation_matched", "MNLI-mm": "validation_mismatched"}


def make(column: str, metrics: dict | None = None, *, model: str = "bert", mode: str = "finetune",
         suite: str | None = None, task: str | None = None, source: str = "local", location: str = LOCAL,
         weights: str = "trained", status: str = "ok", n: int = 100, fingerprint: str | None = None,
         params: int | None = 110_000_000, latency: float | None = 5.0, throughput: float | None = 200.0,
         ci: dict | None = None, note: str = "") -> Result:
    task = task or TASK_OF.get(column, column.lower())
    suite = suite or ("qa" if task in ("squad", "triviaqa") else "glue")
    metrics = {} if status != "ok" else (metrics if metrics is not None else {"accuracy": 90.0})
    return Result(
        task=task, task_version=1, suite=suite, kind="classification" if suite == "glue" else "extractive_qa",
        split=SPLIT_OF.get(column, "validation"), column=column, model=model, adapter="encoder", mode=mode,
        weights=weights,
        data=DataInfo(source, location, fingerprint or f"{task}{column}{n}".ljust(64, "0"), n),
        metrics=metrics,
        ci95=ci if ci is not None else {k: [v - 1.0, v + 1.0] for k, v in metrics.items()},
        efficiency=Efficiency(num_parameters=params,
                              latency_ms=None if latency is None else {"p50": latency, "p95": latency * 2},
                              throughput_per_s=throughput),
        status=status, note=note)


def glue_model(model: str = "bert", **kw) -> list[Result]:
    """SST-2 90, QQP acc 80 / F1 70 (-> 75), MNLI-m 60 / mm 70 (-> 65): GLUE avg (90+75+65)/3 = 76.7."""
    return [make("SST-2", {"accuracy": 90.0}, model=model, **kw),
            make("QQP", {"accuracy": 80.0, "f1": 70.0}, model=model, **kw),
            make("MNLI-m", {"accuracy": 60.0}, model=model, **kw),
            make("MNLI-mm", {"accuracy": 70.0}, model=model, **kw)]


def qa_model(model: str = "t5", **kw) -> list[Result]:
    return [make("SQuAD", {"exact_match": 80.1, "f1": 88.2}, model=model, **kw),
            make("TriviaQA", {"exact_match": 20.0, "f1": 25.0}, model=model, **kw)]


# ---------------------------------------------------------------------------------------
# helpers that read the generated markdown back
def sections(text: str) -> dict[str, str]:
    """Heading line -> the section's body (up to the next '## ')."""
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())
    return [c.strip() for c in cells[1:-1]]


def main_table(body: str) -> tuple[list[str], list[dict[str, str]]]:
    """The first table of a section body: headers and rows as dicts."""
    lines = []
    for line in body.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    headers = split_row(lines[0])
    return headers, [dict(zip(headers, split_row(line))) for line in lines[2:]]


def only_section(text: str, startswith: str) -> str:
    matches = [body for head, body in sections(text).items() if head.startswith(startswith)]
    assert len(matches) == 1, list(sections(text))
    return matches[0]


def read(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------
def test_glue_and_qa_files_written(tmp_path):
    paths = render(glue_model() + qa_model(), tmp_path, plots=False)
    assert paths == [tmp_path / "glue.md", tmp_path / "qa.md"]
    glue, qa = read(tmp_path, "glue.md"), read(tmp_path, "qa.md")
    assert glue.startswith("# GLUE leaderboard\n") and "bench leaderboard" in glue
    assert qa.startswith("# QA leaderboard\n")
    assert "## GLUE — data: local ../shared/data" in glue
    assert "<details><summary>95% confidence intervals and provenance</summary>" in glue
    assert not list(tmp_path.glob("*.png"))


def test_no_results_writes_nothing(tmp_path):
    assert render([], tmp_path / "lb") == []
    assert not (tmp_path / "lb").exists()


def test_glue_column_order_and_qqp_two_metrics(tmp_path):
    # fed in scrambled order: the table order is canonical regardless
    results = glue_model()[::-1] + [make("CoLA", {"mcc": 50.0}, task="cola"), make("RTE", task="rte")]
    render(results, tmp_path, plots=False)
    headers, _ = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE — data: local"))
    assert headers == ["Model", "Mode", "Params", "SST-2", "QQP acc", "QQP F1", "MNLI-m", "MNLI-mm", "CoLA", "RTE",
                       "GLUE avg", "Latency p50 (ms, bs=1)", "Throughput (ex/s)"]


def test_qa_columns(tmp_path):
    render(qa_model(), tmp_path, plots=False)
    headers, rows = main_table(only_section(read(tmp_path, "qa.md"), "## QA — data: local"))
    assert headers[3:7] == ["SQuAD EM", "SQuAD F1", "TriviaQA EM", "TriviaQA F1"]
    assert headers[7] == "avg"
    assert rows[0]["SQuAD EM"] == "80.1" and rows[0]["TriviaQA F1"] == "25.0"
    assert rows[0]["avg"] == f"{((80.1 + 88.2) / 2 + 22.5) / 2:.1f}"


def test_glue_average_by_hand(tmp_path):
    render(glue_model(), tmp_path, plots=False)
    body = only_section(read(tmp_path, "glue.md"), "## GLUE")
    _, rows = main_table(body)
    assert rows[0]["SST-2"] == "90.0" and rows[0]["QQP acc"] == "80.0" and rows[0]["QQP F1"] == "70.0"
    assert rows[0]["GLUE avg"] == "76.7"                     # (90 + 75 + 65) / 3
    assert rows[0]["Params"] == "110M"
    assert rows[0]["Latency p50 (ms, bs=1)"] == "5" and rows[0]["Throughput (ex/s)"] == "200"
    assert "MNLI-m and MNLI-mm are first averaged into one MNLI score" in body
    assert "QQP = mean(acc, F1)" in body


def test_average_dash_when_a_task_is_missing(tmp_path):
    partial = [r for r in glue_model("partial") if r.column != "QQP"]
    render(glue_model("full") + partial, tmp_path, plots=False)
    _, rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    by_model = {r["Model"]: r for r in rows}
    assert by_model["full"]["GLUE avg"] == "76.7"
    assert by_model["partial"]["GLUE avg"] == "—"
    assert by_model["partial"]["QQP acc"] == "—"
    assert [r["Model"] for r in rows] == ["full", "partial"]   # rows with an average first


def test_rows_sorted_by_average_then_model(tmp_path):
    low = [make(c, {"accuracy": 50.0}, model="aaa") for c in ("SST-2", "MNLI-m")]
    high = [make(c, {"accuracy": 95.0}, model="zzz") for c in ("SST-2", "MNLI-m")]
    tie = [make(c, {"accuracy": 95.0}, model="mmm") for c in ("SST-2", "MNLI-m")]
    render(low + high + tie, tmp_path, plots=False)
    _, rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    assert [r["Model"] for r in rows] == ["mmm", "zzz", "aaa"]


def test_unsupported_shows_dash_never_zero(tmp_path):
    results = glue_model("bert") + [make(c, model="t5-qa-only", status="unsupported", note="encoder-only")
                                    for c in ("SST-2", "QQP", "MNLI-m", "MNLI-mm")]
    results.append(make("SST-2", {"accuracy": 0.0}, model="zero-model"))
    render(results, tmp_path, plots=False)
    _, rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    by_model = {r["Model"]: r for r in rows}
    row = by_model["t5-qa-only"]                          # all unsupported: still a row, all dashes
    for header in ("SST-2", "QQP acc", "QQP F1", "MNLI-m", "MNLI-mm", "GLUE avg", "Throughput (ex/s)"):
        assert row[header] == "—"
    assert "0" not in {v for k, v in row.items() if k not in ("Model", "Mode", "Params")}
    assert by_model["zero-model"]["SST-2"] == "0.0"       # a real zero stays a zero


def test_suite_with_only_unsupported_results_still_has_rows(tmp_path):
    results = [make("SQuAD", model="bilstm", status="unsupported"),
               make("TriviaQA", model="bilstm", status="unsupported")]
    render(results, tmp_path, plots=False)
    headers, rows = main_table(only_section(read(tmp_path, "qa.md"), "## QA"))
    assert headers[3:5] == ["SQuAD", "TriviaQA"]
    assert [r["Model"] for r in rows] == ["bilstm"]
    assert rows[0]["SQuAD"] == rows[0]["TriviaQA"] == rows[0]["avg"] == "—"


def test_unsupported_only_task_does_not_block_averages(tmp_path):
    extra = make("CoLA", task="cola", model="other", status="unsupported")
    render(glue_model() + [extra], tmp_path, plots=False)
    _, rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    assert {r["Model"]: r["GLUE avg"] for r in rows} == {"bert": "76.7", "other": "—"}


def test_sample_and_random_results_never_in_real_section(tmp_path):
    results = (glue_model("real-bert")
               + glue_model("sample-bert", source="sample", location="builtin")
               + glue_model("random-bert", weights="random")
               + glue_model("random-sample-bert", weights="random", source="sample", location="builtin"))
    render(results, tmp_path, plots=False)
    text = read(tmp_path, "glue.md")
    heads = list(sections(text))
    assert len(heads) == 4
    real = only_section(text, "## GLUE — data: local ../shared/data")
    assert [r["Model"] for r in main_table(real)[1]] == ["real-bert"]
    assert "sample-bert" not in real and "random" not in real
    sample = only_section(text, "## GLUE — built-in sample suite (synthetic data")
    assert [r["Model"] for r in main_table(sample)[1]] == ["sample-bert"]
    random_real = only_section(text, "## GLUE — random weights (architecture only: accuracy is meaningless, "
                                     "latency and size are real) — data: local ../shared/data")
    assert [r["Model"] for r in main_table(random_real)[1]] == ["random-bert"]
    random_sample = [body for head, body in sections(text).items() if "random" in head and "sample suite" in head]
    assert len(random_sample) == 1
    assert [r["Model"] for r in main_table(random_sample[0])[1]] == ["random-sample-bert"]
    assert heads.index(next(h for h in heads if h.startswith("## GLUE — data"))) == 0  # real table first


def test_sections_split_by_local_directory_and_hub_grouped(tmp_path):
    results = (glue_model("a") + glue_model("b", location="/other/data")
               + [make("SST-2", model="c", source="hub", location="nyu-mll/glue/sst2"),
                  make("QQP", {"accuracy": 1.0, "f1": 2.0}, model="c", source="hub", location="nyu-mll/glue/qqp")])
    render(results, tmp_path, plots=False)
    text = read(tmp_path, "glue.md")
    assert list(sections(text)) == ["## GLUE — data: hub", "## GLUE — data: local ../shared/data",
                                    "## GLUE — data: local /other/data"]
    hub = only_section(text, "## GLUE — data: hub")
    assert len(main_table(hub)[1]) == 1                    # one row: the per-task hub ids did not split it
    assert "`nyu-mll/glue/qqp`, `nyu-mll/glue/sst2`" in hub


def test_escaping_cannot_break_the_table(tmp_path):
    evil = "evil|model\n<script>alert(1)</script> & co"
    render(glue_model() + glue_model(evil), tmp_path, plots=False)
    text = read(tmp_path, "glue.md")
    assert "<script>" not in text
    assert "evil\\|model &lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    body = only_section(text, "## GLUE")
    table_lines = [line for line in body.splitlines() if line.startswith("|")]
    main = table_lines[:4]                                  # header, rule, two rows
    counts = {len(re.findall(r"(?<!\\)\|", line)) for line in main}
    assert counts == {len(main_table(body)[0]) + 1}
    for line in table_lines:                                # every table line, provenance table included
        assert line.endswith("|")
    headers, rows = main_table(body)
    assert len(rows) == 2 and all(len(r) == len(headers) for r in rows)


def test_bad_suite_name_cannot_escape_out_dir(tmp_path):
    from benchmark.errors import UserError

    with pytest.raises(UserError, match="not a valid suite name"):
        render([make("SST-2", suite="../../evil")], tmp_path / "lb", plots=False)
    assert not (tmp_path / "evil.md").exists()


def test_escape_cell_and_format_params():
    assert escape_cell("a|b") == "a\\|b"
    assert escape_cell("x\ny\r\nz") == "x y z"
    assert escape_cell("<b>&") == "&lt;b&gt;&amp;"
    assert escape_cell(None) == ""
    assert escape_cell("[x](http://e) ![p](u) `c`") == "\\[x\\](http://e) !\\[p\\](u) \\`c\\`"
    assert escape_cell("a\u202eb") == "ab"  # a right-to-left override would reorder the row


def test_measures_that_round_to_a_thousand_get_separators_not_an_exponent():
    from benchmark.leaderboard import _measure

    assert _measure(999.7) == "1,000" and _measure(999.5) == "1,000" and _measure(1_234.4) == "1,234"
    assert _measure(999.4) == "999" and _measure(12.345) == "12.3" and _measure(0.0012345) == "0.00123"
    assert _measure(5_000_000.0) == "5,000,000" and _measure(None) == "—"


def test_notes_quote_model_names_escaped():
    from benchmark.leaderboard import build_sections, fixed_notes

    evil = "m<img src=x>\n## injected"
    results = glue_model("full", n=872) + [make("SST-2", {"accuracy": 61.0}, model=evil, mode="zero-shot", n=100)]
    (section,) = build_sections("glue", results)
    note = fixed_notes("glue", section, {}, escape_cell)[0]
    assert "m&lt;img src=x&gt; ## injected (zero-shot) SST-2" in note and "<img" not in note and "\n" not in note
    assert "m<img src=x>" in fixed_notes("glue", section, {})[0]  # the page escapes the note as HTML itself
    assert format_params(110_000_000) == "110M"
    assert format_params(66_400_000) == "66.4M"
    assert format_params(1_200) == "1.2k"
    assert format_params(999) == "999"
    assert format_params(999_999) == "1M"
    assert format_params(7_000_000_000) == "7B"
    assert format_params(0) == "0"
    assert format_params(None) == "—"


def test_output_is_deterministic(tmp_path):
    results = glue_model("b") + glue_model("a") + qa_model() + glue_model("s", source="sample", location="builtin")
    first = render(results, tmp_path / "one", plots=False)
    second = render(list(reversed(results)), tmp_path / "two", plots=False)
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
    render(results, tmp_path / "one", plots=False)          # regenerating over itself: same bytes
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_plugin_suite_file_and_new_glue_column(tmp_path):
    results = glue_model() + [
        make("Widgets", {"accuracy": 42.0}, suite="mysuite", task="widgets"),
        make("STS-B", {"accuracy": 88.0}, task="stsb"),
    ]
    paths = render(results, tmp_path, plots=False)
    assert tmp_path / "mysuite.md" in paths
    mine = read(tmp_path, "mysuite.md")
    assert mine.startswith("# Mysuite leaderboard")
    headers, rows = main_table(only_section(mine, "## Mysuite — data: local"))
    assert "Widgets" in headers and rows[0]["Widgets"] == "42.0" and rows[0]["avg"] == "42.0"
    glue_headers, glue_rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    assert glue_headers.index("STS-B") == glue_headers.index("MNLI-mm") + 1
    assert glue_rows[0]["GLUE avg"] == f"{(90 + 75 + 65 + 88) / 4:.1f}"
    assert "Widgets" not in read(tmp_path, "glue.md")


def test_task_specs_give_metric_order(tmp_path):
    from benchmark.tasks import discover

    specs = discover(entry_points=False).tasks
    # metrics recorded in the "wrong" order: the spec's order (accuracy, f1) wins
    results = [make("QQP", {"f1": 70.0, "accuracy": 80.0})]
    render(results, tmp_path, tasks=specs, plots=False)
    headers, rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    assert headers[3:5] == ["QQP acc", "QQP F1"] and rows[0]["GLUE avg"] == "75.0"


def test_duplicates_keep_larger_num_examples_with_footnote(tmp_path):
    small = make("SST-2", {"accuracy": 99.0}, n=50, fingerprint="a" * 64)
    large = make("SST-2", {"accuracy": 91.0}, n=872, fingerprint="b" * 64)
    render([small, large], tmp_path, plots=False)
    body = only_section(read(tmp_path, "glue.md"), "## GLUE")
    _, rows = main_table(body)
    assert len(rows) == 1 and rows[0]["SST-2"] == "91.0"     # not 95.0: never averaged
    assert "kept the one on n=872" in body and "n=50" in body
    assert "bbbbbbbbbbbb" in body


def test_provenance_table_has_ci_and_fingerprint(tmp_path):
    r = make("QQP", {"accuracy": 80.0, "f1": 70.0}, ci={"accuracy": [78.04, 81.96], "f1": [68.0, 72.0]},
             fingerprint="0123456789abcdef" + "0" * 48, n=40430)
    render([r], tmp_path, plots=False)
    body = only_section(read(tmp_path, "glue.md"), "## GLUE")
    details = body.split("<details>", 1)[1]
    headers, rows = main_table(details)
    assert headers[:9] == ["Model", "Mode", "Column", "Metric", "Value", "95% CI", "n", "Data fingerprint",
                           "Task version"]
    assert [(row["Metric"], row["Value"], row["95% CI"]) for row in rows] == [
        ("acc", "80.0", "[78.0, 82.0]"), ("F1", "70.0", "[68.0, 72.0]")]
    assert rows[0]["Data fingerprint"] == "0123456789ab" and rows[0]["n"] == "40430"
    assert rows[0]["Task version"] == "1"


def test_params_column(tmp_path):
    results = [make("SST-2", model="a", params=66_400_000), make("SST-2", model="b", params=None),
               make("SST-2", model="c", params=0)]
    render(results, tmp_path, plots=False)
    _, rows = main_table(only_section(read(tmp_path, "glue.md"), "## GLUE"))
    assert {r["Model"]: r["Params"] for r in rows} == {"a": "66.4M", "b": "—", "c": "0"}


def test_plot_writes_png_and_markdown_links_it(tmp_path):
    pytest.importorskip("matplotlib")
    results = glue_model("bert") + glue_model("lstm", throughput=5000.0) + qa_model()
    paths = render(results, tmp_path)
    assert tmp_path / "glue.png" in paths and tmp_path / "qa.png" in paths
    assert (tmp_path / "glue.png").read_bytes().startswith(b"\x89PNG")
    assert "![GLUE: score vs throughput](glue.png)" in read(tmp_path, "glue.md")
    assert not list(tmp_path.glob(".*.tmp"))


def test_plot_uses_sample_only_when_no_real_results(tmp_path):
    pytest.importorskip("matplotlib")
    sample_only = glue_model("s", source="sample", location="builtin")
    assert leaderboard.plot(sample_only, tmp_path) == [tmp_path / "glue.png"]
    random_only = glue_model("r", weights="random")
    assert leaderboard.plot(random_only, tmp_path / "r") == []
    no_throughput = glue_model("x", throughput=None)
    assert leaderboard.plot(no_throughput, tmp_path / "x") == []


def test_pareto_front_keeps_the_best_score_at_each_speed_or_faster():
    points = [(100, 80.0), (200, 85.0), (300, 70.0), (50, 90.0), (200, 60.0), (40, 89.0)]
    assert leaderboard.pareto_front(points) == [(50, 90.0), (200, 85.0), (300, 70.0)]
    assert leaderboard.pareto_front([]) == []


def _figure(results):
    points, sample = leaderboard._plot_points("glue", results, None)
    return leaderboard._suite_figure("glue", points, sample)


def test_plot_labels_of_nearly_equal_rows_do_not_overlap_and_modes_have_markers():
    pytest.importorskip("matplotlib")
    results = (glue_model("bilstm-elmo", mode="finetune", throughput=194.0)
               + glue_model("bilstm-elmo", mode="frozen", throughput=193.0)
               + glue_model("bilstm", mode="scratch", throughput=538.0)
               + [make("SST-2", {"accuracy": 50.9}, model="majority", mode="scratch", throughput=672_184.0)])
    figure = _figure(results)
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    boxes = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    assert set(boxes) == {"bilstm-elmo (finetune)", "bilstm-elmo (frozen)", "bilstm (scratch)", "majority (scratch)"}
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not boxes[a].overlaps(boxes[b]), f"labels {a!r} and {b!r} overlap"
    key = ax.get_legend()
    legend = {t.get_text(): h.get_marker() for t, h in zip(key.get_texts(), key.legend_handles)}
    modes = {k: v for k, v in legend.items() if k.startswith("mode: ")}
    assert set(modes) == {"mode: finetune", "mode: frozen", "mode: scratch"} and len(set(modes.values())) == 3
    assert any(k.startswith("Pareto front") for k in legend)


def test_plot_labels_of_long_names_sharing_their_first_40_characters_stay_apart():
    pytest.importorskip("matplotlib")
    stem = "sentence-transformers/all-MiniLM-L6-v2-distilled"  # 49 characters
    results = (glue_model(stem + "-seed-1", throughput=300.0) + glue_model(stem + "-seed-2", throughput=310.0)
               + glue_model("bilstm", mode="scratch", throughput=538.0))
    labels = [t.get_text() for t in _figure(results).axes[0].texts]
    assert len(labels) == len(set(labels)) == 3 and "bilstm (scratch)" in labels
    assert all(len(label) <= leaderboard.PLOT_LABEL_WIDTH for label in labels)
    # too long with its organisation, so every row of the model drops it; the mode stays whole
    assert {label for label in labels if label != "bilstm (scratch)"} == {
        "all-MiniLM-L6-v2-distilled-seed-1 (finetune)", "all-MiniLM-L6-v2-distilled-seed-2 (finetune)"}


def test_plot_labels_cut_alike_are_told_apart():
    from benchmark.leaderboard import Row, plot_labels

    # a long name keeps the mode whole: the mode is what tells one model's rows apart
    smol = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert plot_labels([Row(smol, "zero-shot, no chat template", {}), Row(smol, "1-shot, no chat template", {})]) == [
        "SmolLM2-135M-Inst… (zero-shot, no chat template)", "SmolLM2-135M-Instruct (1-shot, no chat template)"]

    a, b = "org/" + "x" * 40 + "-A-" + "y" * 40, "org/" + "x" * 40 + "-B-" + "y" * 40  # same start, same end
    labels = plot_labels([Row(a, "finetune", {}), Row(b, "finetune", {}), Row("short", "frozen", {})])
    assert labels[0] != labels[1] and "…A-y" in labels[0] and "…B-y" in labels[1] and labels[2] == "short (frozen)"
    assert all(len(label) <= leaderboard.PLOT_LABEL_WIDTH for label in labels) and labels[0].startswith("xxxxxxxxxxx")
    # names that differ only in the whitespace a label folds: numbered, by model name
    assert plot_labels([Row("m n", "", {}), Row("m  n", "", {})]) == ["m n #2", "m n #1"]
    # one model and mode in two sections: one label, the colours tell them apart
    assert plot_labels([Row(a, "finetune", {}), Row(a, "finetune", {})]) == [plot_labels([Row(a, "finetune", {})])[0]] * 2


def test_plot_bytes_do_not_depend_on_order_or_timing():
    pytest.importorskip("matplotlib")
    results = glue_model("a") + glue_model("b") + glue_model("c", throughput=900.0)  # a and b coincide
    first = leaderboard.plot_images(results)["glue"]
    assert leaderboard.plot_images(list(reversed(results)))["glue"] == first


def test_cells_on_an_older_task_version_are_named_in_a_note():
    from dataclasses import replace

    from benchmark.leaderboard import build_sections, fixed_notes

    results = glue_model("new") + [replace(make("SST-2", {"accuracy": 61.0}, model="old"), task_version=0)]
    (section,) = build_sections("glue", results)
    notes = [n for n in fixed_notes("glue", section, {}) if n.startswith("**Task versions**")]
    assert len(notes) == 1 and "old (finetune) SST-2 v0 of v1" in notes[0] and "new" not in notes[0]
    (same,) = build_sections("glue", glue_model("new") + glue_model("other"))
    assert not any(n.startswith("**Task versions**") for n in fixed_notes("glue", same, {}))


def trained(r: Result, size: int, cap: int | None, used: int | None = None) -> Result:
    """`r` with the train_data block a run records (evaluator.build_result): split size, cap, examples used."""
    used = used if used is not None else min(cap or size, size)
    train = {"source": "local", "location": LOCAL, "fingerprint": "t" * 64, "num_examples": size,
             "max_examples": cap, "used_examples": used}
    return dataclasses.replace(r, provenance={**r.provenance, "train_data": train})


def test_cells_trained_under_a_train_cap_are_named_in_a_note(tmp_path):
    from dataclasses import replace

    def sst2(model, mode, cap, used=None, size=67_349, **kw):
        return trained(make("SST-2", {"accuracy": 80.0}, model=model, mode=mode, n=872, **kw), size, cap, used)

    curve_only = [sst2("bilstm", "scratch", 1_000), sst2("bilstm", "scratch", 300)]  # learning-curve points alone
    results = curve_only + [trained(make("QQP", {"accuracy": 70.0, "f1": 60.0}, model="bilstm", mode="scratch"),
                                    9_999, None)]
    results += [sst2("majority", "scratch", 50),                            # the majority of 50 examples: capped
                sst2("lm", "zero-shot", 1_000, used=0),                     # a cap given to a checkpoint run as it is
                replace(sst2("lm", "zero-shot", 1_000, used=1), variant="1-shot"),  # a K-shot prompt
                sst2("big", "finetune", 100_000),                           # a cap above the split: the whole split
                sst2("full", "finetune", None)]
    render(results, tmp_path, plots=False, page=True)
    (note,) = [n for n in read(tmp_path, "glue.md").splitlines() if "**Trained on part of the train split**" in n]
    assert "bilstm (scratch) SST-2 1,000 of 67,349 train examples;" in note
    assert "majority (scratch) SST-2 50 of 67,349 train examples." in note
    for absent in ("300 of", "QQP", "lm", "big", "full"):
        assert absent not in note
    page = read(tmp_path, "index.html")  # the page words it as the markdown does
    assert "<strong>Trained on part of the train split</strong>: these cells were trained on a " in page
    assert "bilstm (scratch) SST-2 1,000 of 67,349 train examples;" in page
    # once the run on the whole split is there, it is the cell, and the note is gone
    whole = render(results + [sst2("bilstm", "scratch", None), sst2("majority", "scratch", None)], tmp_path,
                   plots=False)
    assert whole and "Trained on part of the train split" not in read(tmp_path, "glue.md")


def made(results: list[Result], revision: str | None = None, **hardware) -> list[Result]:
    """`results` with the model revision and hardware a run records in its provenance."""
    prov = {"model_revision": revision, "hardware": hardware or None}
    return [dataclasses.replace(r, provenance={**r.provenance, **prov}) for r in results]


def test_rows_mixing_model_revisions_are_named_in_a_note(tmp_path):
    old, new = "a" * 40, "b" * 40
    gguf = "gguf-q4_1-sha256:"
    sst2, qqp, mnli_m, mnli_mm = glue_model("hub")
    results = made([sst2, qqp], old) + made([mnli_m], new) + made([mnli_mm], None)  # unrecorded: not a third
    results += made(glue_model("same"), old)
    results += made(glue_model("gguf", mode="zero-shot")[:2], gguf + "c0ffee") + \
        made(glue_model("gguf", mode="zero-shot")[2:], gguf + "d00d")
    results += made(glue_model("skip")[:3], old) + made([make("MNLI-mm", model="skip", status="unsupported")], new)
    render(results, tmp_path, plots=False, page=True)
    (note,) = [n for n in read(tmp_path, "glue.md").splitlines() if "**Mixed model revisions**" in n]
    assert "hub (finetune): aaaaaaaaaaaa (SST-2, QQP), bbbbbbbbbbbb (MNLI-m)" in note
    assert f"gguf (zero-shot): {gguf}c (SST-2, QQP), {gguf}d (MNLI-m, MNLI-mm)" in note
    assert "same (finetune)" not in note and "skip (finetune)" not in note
    page = read(tmp_path, "index.html")
    assert "<strong>Mixed model revisions</strong>: these rows take their cells" in page
    assert "hub (finetune): aaaaaaaaaaaa (SST-2, QQP), bbbbbbbbbbbb (MNLI-m)" in page


def test_rows_timed_on_different_hardware_are_named_in_a_note(tmp_path):
    h100 = {"device": "cuda:0", "gpu": "NVIDIA H100", "cpu": "Intel Xeon", "cpu_count": 16, "torch_threads": 16}
    h100_elsewhere = {**h100, "device": "cuda:1", "cpu": "AMD EPYC", "cpu_count": 8}  # the same GPU
    epyc = {"device": "cpu", "cpu": "AMD EPYC", "cpu_count": 2, "torch_threads": 2}
    sst2, qqp, mnli_m, mnli_mm = glue_model("gpu")
    results = made([sst2], **h100) + made([qqp], **h100_elsewhere) + made([mnli_m, mnli_mm], **epyc)
    a, b, c, d = glue_model("threads")  # one CPU, other core and thread counts: one machine
    results += made([a, b], **epyc) + made([c, d], **{**epyc, "cpu_count": 16, "torch_threads": 16})
    a, b, c, d = glue_model("untimed", latency=None, throughput=None)  # nothing timed: nothing pooled
    results += made([a, b], **epyc) + made([c, d], **h100)
    render(results, tmp_path, plots=False, page=True)
    (note,) = [n for n in read(tmp_path, "glue.md").splitlines() if "**Mixed hardware**" in n]
    assert "gpu (finetune): cuda NVIDIA H100 (SST-2, QQP), cpu AMD EPYC (MNLI-m, MNLI-mm)." in note
    assert "core and thread counts are not compared" in note
    assert "threads (finetune)" not in note and "untimed (finetune)" not in note
    assert "<strong>Mixed hardware</strong>: these rows&#x27; latency" in read(tmp_path, "index.html")


def test_unsupported_markers_join_the_models_row_instead_of_a_ghost_row(tmp_path):
    # a run with --mode auto: what ran records its mode ('scratch'), a task it cannot do records 'auto'
    ran = make("SQuAD", {"exact_match": 20.0, "f1": 30.0}, model="bilstm", mode="scratch")
    marker = make("TriviaQA", model="bilstm", mode="auto", status="unsupported", note="no generator")
    only_markers = [make(c, model="majority", mode="auto", status="unsupported") for c in ("SQuAD", "TriviaQA")]
    render([ran, marker, *only_markers, *qa_model("t5")], tmp_path, plots=False)
    _headers, rows = main_table(only_section(read(tmp_path, "qa.md"), "## QA"))
    assert [(r["Model"], r["Mode"]) for r in rows] == [("t5", "finetune"), ("bilstm", "scratch"), ("majority", "auto")]
    bilstm = rows[1]
    assert bilstm["SQuAD EM"] == "20.0" and bilstm["TriviaQA EM"] == "—" and bilstm["avg"] == "—"


def test_cells_on_a_subset_are_named_in_a_note():
    from benchmark.leaderboard import build_sections, fixed_notes

    results = glue_model("full", n=872) + [make("SST-2", {"accuracy": 61.0}, model="lm", mode="zero-shot", n=100)]
    (section,) = build_sections("glue", results)
    notes = fixed_notes("glue", section, {})
    assert notes[0].startswith("**Subsets**") and "lm (zero-shot) SST-2 n=100 of 872" in notes[0]
    (whole,) = build_sections("glue", glue_model("full", n=872))
    assert not any(n.startswith("**Subsets**") for n in fixed_notes("glue", whole, {}))


def test_a_random_subset_is_named_as_one():
    from dataclasses import replace

    from benchmark.leaderboard import build_sections, fixed_notes

    drawn = make("SST-2", {"accuracy": 61.0}, model="lm", mode="zero-shot", n=100)
    drawn = replace(drawn, data=replace(drawn.data, subset="random"))
    (section,) = build_sections("glue", glue_model("full", n=872) + [drawn])
    assert "lm (zero-shot) SST-2 100 at random of 872" in fixed_notes("glue", section, {})[0]


def test_a_column_made_only_of_subsets_is_still_named():
    from dataclasses import replace

    from benchmark.leaderboard import build_sections, fixed_notes

    def cell(model, subset):
        r = make("SST-2", {"accuracy": 61.0}, model=model, mode="zero-shot", n=200)
        return replace(r, data=replace(r.data, subset=subset))

    (section,) = build_sections("glue", [cell("a", "first"), cell("b", "random")])
    (note,) = [n for n in fixed_notes("glue", section, {}) if n.startswith("**Subsets**")]
    assert "a (zero-shot) SST-2 the first 200;" in note and "b (zero-shot) SST-2 200 at random." in note


def test_latency_and_throughput_are_medians_over_tasks_not_columns():
    from dataclasses import replace

    from benchmark.leaderboard import build_sections

    def timed(column, latency, throughput):
        r = make(column, {"accuracy": 50.0}, model="m")
        return replace(r, efficiency=replace(r.efficiency, latency_ms={"p50": latency, "p95": latency},
                                             throughput_per_s=throughput))

    # MNLI's two dev sets are one task: counted twice, they would make 10 ms the median
    (section,) = build_sections("glue", [timed("SST-2", 1.0, 100.0), timed("MNLI-m", 10.0, 10.0),
                                        timed("MNLI-mm", 10.0, 10.0), timed("QQP", 2.0, 200.0)])
    (row,) = section.rows
    assert row.latency_p50 == 2.0 and row.throughput == 100.0


def test_rows_without_the_average_sort_by_their_scores_not_their_names():
    from benchmark.leaderboard import build_sections

    full = glue_model("full", n=872)
    weak = [make("SST-2", {"accuracy": 10.0}, model="aaa", mode="zero-shot")]
    strong = [make("SST-2", {"accuracy": 90.0}, model="zzz", mode="zero-shot")]
    empty = [make("SST-2", model="000", mode="auto", status="unsupported")]
    (section,) = build_sections("glue", full + weak + strong + empty)
    assert [row.model for row in section.rows] == ["full", "zzz", "aaa", "000"]


def test_every_note_names_a_row_without_a_mode_the_same_way():
    import dataclasses

    small = make("SST-2", model="m", mode="", n=50)
    small = dataclasses.replace(small, data=dataclasses.replace(small.data, subset="first"))
    old = dataclasses.replace(make("QQP", {"accuracy": 1.0, "f1": 1.0}, model="m", mode=""), task_version=0)
    text = leaderboard.suite_markdown("glue", [small, old, make("QQP", {"accuracy": 1.0, "f1": 1.0}, model="x")])
    assert "m (—) SST-2 the first 50" in text and "m (—) QQP v0 of v1" in text and "m ()" not in text
