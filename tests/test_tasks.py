"""Task plugins: built-ins, validation messages of malformed files, discovery (dirs, entry points)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import copy  # noqa: E402
import hashlib  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from benchmark.errors import TaskError, UserError  # noqa: E402
from benchmark.tasks import (  # noqa: E402
    BUILTIN_TASKS_DIR,
    ENTRY_POINT_GROUP,
    EvalSplit,
    TaskCatalog,
    discover,
    get_field,
    load_task_file,
    parse_task,
)

BUILTINS = ("sst2", "mnli", "qqp", "squad", "triviaqa", "squad_closed_book")


@pytest.fixture(scope="module")
def builtin():
    catalog = discover(entry_points=False)
    return catalog


# ---------------------------------------------------------------------------------------
# plugin text used by the negative tests
CLASSIFICATION = {
    "name": "mytask",
    "version": 1,
    "kind": "classification",
    "dataset": {"hub": "org/mytask", "eval": ["validation"]},
    "inputs": ["sentence"],
    "label": "label",
    "labels": ["negative", "positive"],
    "metrics": ["accuracy"],
    "template": "mytask sentence: {sentence}",
}
EXTRACTIVE = {
    "name": "myqa",
    "version": 1,
    "kind": "extractive_qa",
    "dataset": {"hub": "org/myqa", "eval": ["validation"]},
    "inputs": ["question", "context"],
    "answers": "answers.text",
    "metrics": ["exact_match", "f1"],
    "template": "question: {question} context: {context}",
}


def variant(base: dict, **changes) -> dict:
    """A deep copy of `base` with top-level keys replaced (value `...` deletes the key)."""
    data = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return data


def write_yaml(directory: Path, data, name: str = "mytask.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def task_error(path: Path) -> str:
    with pytest.raises(TaskError) as info:
        load_task_file(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, f"message is not one line: {message!r}"
    assert str(path) in message, f"message does not name the file: {message!r}"
    return message


# ---------------------------------------------------------------------------------------
# built-in tasks
def test_builtin_tasks_are_exactly_the_plugin_files(builtin):
    files = sorted(p.stem for p in BUILTIN_TASKS_DIR.glob("*.yaml"))
    assert sorted(builtin.tasks) == sorted(BUILTINS) == sorted(files)
    assert builtin.broken == {}


EXPECTED = {
    "sst2": dict(kind="classification", suite="glue", train="train", eval=[("validation", "SST-2")],
                 metrics=("accuracy",), labels=("negative", "positive"), local="sst2", id="idx",
                 inputs=("sentence",), template="sst2 sentence: {sentence}"),
    "mnli": dict(kind="classification", suite="glue", train="train",
                 eval=[("validation_matched", "MNLI-m"), ("validation_mismatched", "MNLI-mm")],
                 metrics=("accuracy",), labels=("entailment", "neutral", "contradiction"), local="mnli",
                 id="idx", inputs=("premise", "hypothesis"),
                 template="mnli hypothesis: {hypothesis} premise: {premise}"),
    "qqp": dict(kind="classification", suite="glue", train="train", eval=[("validation", "QQP")],
                metrics=("accuracy", "f1"), labels=("not_duplicate", "duplicate"), local="qqp", id="idx",
                inputs=("question1", "question2"),
                template="qqp question1: {question1} question2: {question2}"),
    "squad": dict(kind="extractive_qa", suite="qa", train="train", eval=[("validation", "SQuAD")],
                  metrics=("exact_match", "f1"), labels=(), local="squad", id="id",
                  inputs=("question", "context"), template="question: {question} context: {context}"),
    "triviaqa": dict(kind="closed_book_qa", suite="qa", train="train", eval=[("validation", "TriviaQA")],
                     metrics=("exact_match", "f1"), labels=(), local="trivia_qa", id=None,
                     inputs=("question",), template="trivia_qa question: {question}"),
    "squad_closed_book": dict(kind="closed_book_qa", suite="qa", train="train",
                              eval=[("validation", "SQuAD closed-book")], metrics=("exact_match", "f1"), labels=(),
                              local="squad", id="id", inputs=("question",), template="question: {question}"),
}
# Decoder-only prompts (lm-eval's GLUE prompts) came in version 2; squad_closed_book began with one.
VERSIONS = {"sst2": 2, "mnli": 2, "qqp": 2, "squad": 2, "triviaqa": 2, "squad_closed_book": 1}
CHOICES = {"sst2": ("negative", "positive"), "mnli": ("True", "Neither", "False"), "qqp": ("no", "yes")}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_task_fields(builtin, name):
    spec = builtin.tasks[name]
    want = EXPECTED[name]
    assert spec.name == name
    assert spec.version == VERSIONS[name]
    assert spec.prompt and spec.prompt.endswith("Answer:") and spec.answer_choices == CHOICES.get(name, ())
    assert spec.kind == want["kind"]
    assert spec.suite == want["suite"]
    assert spec.dataset.train == want["train"]
    assert [(e.split, e.column) for e in spec.dataset.eval] == want["eval"]
    assert spec.metrics == want["metrics"]
    assert spec.primary_metric == want["metrics"][0]
    assert spec.labels == want["labels"]
    assert spec.dataset.local == want["local"]
    assert spec.id == want["id"]
    assert spec.inputs == want["inputs"]
    assert spec.template == want["template"]
    assert spec.provider == "builtin"
    path = BUILTIN_TASKS_DIR / f"{name}.yaml"
    assert Path(spec.source) == path
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for split, column in want["eval"]:
        assert spec.column(split) == column


def test_builtin_task_details(builtin):
    t = builtin.tasks
    assert t["sst2"].label == "label" and t["sst2"].positive_index == 1
    assert t["qqp"].positive_label == "duplicate" and t["qqp"].positive_index == 1
    assert t["mnli"].positive_label is None
    assert t["squad"].answers == "answers.text" and t["squad"].normalizer == "squad"
    assert t["triviaqa"].answers == "answer.aliases" and t["triviaqa"].normalizer == "triviaqa"
    assert t["squad"].label is None and t["triviaqa"].label is None
    assert t["mnli"].dataset.tsv_columns["gold_label"] == "label"
    assert t["mnli"].dataset.files["validation_matched"] == ("dev_matched.tsv",)
    assert t["squad"].dataset.files["validation"] == ("dev-v1.1.json",)
    assert t["triviaqa"].dataset.config == "unfiltered.nocontext"
    assert t["sst2"].dataset.hub == "nyu-mll/glue" and t["sst2"].dataset.config == "sst2"
    assert t["triviaqa"].max_new_tokens > t["sst2"].max_new_tokens


def test_render_fills_templates(builtin):
    t = builtin.tasks
    assert t["sst2"].render({"sentence": "a fine film ", "label": 1}) == "sst2 sentence: a fine film "
    assert t["mnli"].render({"premise": "P.", "hypothesis": "H."}) == "mnli hypothesis: H. premise: P."
    row = {"question": "Who?", "context": "Ann did.", "answers": {"text": ["Ann"], "answer_start": [0]}}
    assert t["squad"].render(row) == "question: Who? context: Ann did."
    assert t["triviaqa"].render({"question": "Q?", "answer": {"aliases": ["A"]}}) == "trivia_qa question: Q?"


def test_render_does_not_evaluate_values(builtin):
    # a value that looks like a placeholder is inserted literally, never substituted again
    out = builtin.tasks["mnli"].render({"premise": "{hypothesis.__class__}", "hypothesis": "{0} {}"})
    assert out == "mnli hypothesis: {0} {} premise: {hypothesis.__class__}"


def test_render_literal_braces_and_dotted_fields(tmp_path):
    data = variant(EXTRACTIVE, inputs=["question", "context", "meta.title"],
                   template="{{q}} {question} | {meta.title} | {context}")
    spec = parse_task(data, "inline")
    row = {"question": "Q", "context": "C", "meta": {"title": "T"}, "answers": {"text": ["C"]}}
    assert spec.render(row) == "{q} Q | T | C"


def test_accessors(builtin):
    sst2, squad, trivia = builtin.tasks["sst2"], builtin.tasks["squad"], builtin.tasks["triviaqa"]
    assert sst2.label_index({"label": 1}) == 1
    assert sst2.label_index({"label": "negative"}) == 0
    assert sst2.texts({"sentence": "x"}) == ("x",)
    assert sst2.example_id({"idx": 7}, 3) == "7"
    assert trivia.example_id({"question": "q"}, 3) == "3"
    assert squad.answer_list({"answers": {"text": ["a", "b"]}}) == ["a", "b"]
    assert trivia.answer_list({"answer": {"aliases": "x"}}) == ["x"]
    assert get_field({"a": {"b": 2}}, "a.b") == 2
    with pytest.raises(KeyError):
        get_field({"a": 1}, None)
    assert sst2.column("test") == "SST-2 (test)"


def test_a_local_only_task_has_no_hub_id():
    spec = parse_task(variant(CLASSIFICATION, dataset={"hub": None, "eval": ["validation"]}), "inline")
    assert spec.dataset.hub is None


def test_label_names_that_are_digits_are_names_first():
    stars = parse_task(variant(CLASSIFICATION, label="stars", labels=["1", "2", "3", "4", "5"]), "inline")
    assert stars.label_index({"stars": "5"}) == 4  # the name "5", not the id 5
    assert stars.label_index({"stars": "1"}) == 0
    assert stars.label_index({"stars": 4}) == 4    # an int is an id, as in the HF schema
    with pytest.raises(ValueError):
        stars.label_index({"stars": "six"})
    ids = parse_task(variant(CLASSIFICATION, labels=["neg", "pos"]), "inline")
    assert ids.label_index({"label": "1"}) == 1    # no label is called "1": an id written as text


def test_answer_span_from_offsets_or_text():
    squad = parse_task(EXTRACTIVE, "inline")
    row = {"question": "q", "context": "Ann met Bob. Bob left.", "answers": {"text": ["Bob"], "answer_start": [13]}}
    assert squad.answer_span(row) == (13, 16)      # the recorded offset, not the first "Bob"
    stale = {**row, "answers": {"text": ["Bob"], "answer_start": [2]}}
    assert squad.answer_span(stale) == (8, 11)     # an offset that points elsewhere: found by text
    plain = parse_task(variant(EXTRACTIVE, answers="answer_texts"), "inline")
    assert plain.answer_span({"question": "q", "context": "Ann met Bob.", "answer_texts": ["Cy", "Bob"]}) == (8, 11)
    assert plain.answer_span({"question": "q", "context": "Ann met Bob.", "answer_texts": ["Cy"]}) is None
    assert plain.answer_span({"question": "q", "context": "Ann met Bob.", "answer_texts": [" "]}) is None


def test_valid_plugin_file_loads(tmp_path):
    path = write_yaml(tmp_path, CLASSIFICATION)
    spec = load_task_file(path, provider="dir:x")
    assert spec.name == "mytask" and spec.provider == "dir:x" and spec.source == str(path)
    assert spec.display == "MYTASK" and spec.suite == "glue" and spec.normalizer == "squad"
    assert spec.dataset.eval == (EvalSplit("validation", "MYTASK"),)
    assert spec.dataset.local == "mytask"
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_plugin_with_bom_and_crlf_loads(tmp_path):
    text = yaml.safe_dump(CLASSIFICATION, sort_keys=False).replace("\n", "\r\n")
    path = tmp_path / "mytask.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_task_file(path).name == "mytask"


def test_parse_task_defaults_for_qa():
    spec = parse_task(EXTRACTIVE, "inline")
    assert spec.suite == "qa" and spec.max_new_tokens == 32 and spec.labels == ()
    closed = parse_task(variant(EXTRACTIVE, kind="closed_book_qa", inputs=["question"],
                                template="q: {question}"), "inline")
    assert closed.normalizer == "triviaqa"


# ---------------------------------------------------------------------------------------
# malformed plugin files: one TaskError, one line, naming the file and the field
def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: mytask\nversion: 1\n  kind: classification\n", encoding="utf-8")
    message = task_error(path)
    assert "YAML syntax error" in message
    assert "line 3" in message


def test_yaml_unclosed_flow_sequence_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: mytask\nversion: 1\nmetrics: [accuracy\nkind: classification\n", encoding="utf-8")
    message = task_error(path)
    assert "line 4" in message


@pytest.mark.parametrize("text,typename", [("- a\n- b\n", "list"), ("just a string\n", "str"), ("", "NoneType")])
def test_non_mapping_top_level(tmp_path, text, typename):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    message = task_error(path)
    assert "mapping" in message and typename in message


def test_non_utf8_file(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_bytes(yaml.safe_dump(CLASSIFICATION).encode() + b"description: caf\xe9\n")
    message = task_error(path)
    assert "UTF-8" in message


def test_missing_file(tmp_path):
    message = task_error(tmp_path / "absent.yaml")
    assert "cannot read" in message


BAD_FIELDS = [
    # id, data, field named in the message, other text the message must contain
    ("unknown-key", variant(CLASSIFICATION, labls=["a", "b"]), "labls", "did you mean 'labels'"),
    ("unknown-dataset-key", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["v"], "confg": "x"}),
     "dataset.confg", "did you mean 'config'"),
    ("unknown-kind", variant(CLASSIFICATION, kind="clasification"), "kind", "did you mean 'classification'"),
    ("missing-template", variant(CLASSIFICATION, template=...), "template", "missing"),
    ("missing-dataset", variant(CLASSIFICATION, dataset=...), "dataset", "missing"),
    ("missing-label", variant(CLASSIFICATION, label=...), "label", "missing"),
    ("missing-answers", variant(EXTRACTIVE, answers=...), "answers", "missing"),
    ("missing-hub", variant(CLASSIFICATION, dataset={"eval": ["validation"]}), "dataset.hub", "missing"),
    ("version-str", variant(CLASSIFICATION, version="one"), "version", "'one'"),
    ("version-zero", variant(CLASSIFICATION, version=0), "version", "positive"),
    ("version-bool", variant(CLASSIFICATION, version=True), "version", "True"),
    ("name-case", variant(CLASSIFICATION, name="MyTask"), "name", "'MyTask'"),
    ("inputs-not-list", variant(CLASSIFICATION, inputs="sentence"), "inputs", "'sentence'"),
    ("inputs-empty", variant(CLASSIFICATION, inputs=[]), "inputs", "[]"),
    ("metric-for-kind", variant(CLASSIFICATION, metrics=["accuracy", "exact_match"]), "metrics", "'exact_match'"),
    ("metric-typo", variant(CLASSIFICATION, metrics=["acuracy"]), "metrics", "did you mean 'accuracy'"),
    ("metric-qa", variant(EXTRACTIVE, metrics=["accuracy"]), "metrics", "'accuracy'"),
    ("template-missing-field", variant(CLASSIFICATION, template="x: {sentense}"), "template", "did you mean 'sentence'"),
    ("template-attribute", variant(CLASSIFICATION, template="x: {sentence.__class__}"), "template", "attribute"),
    ("template-index", variant(CLASSIFICATION, template="x: {sentence[0]}"), "template", "index"),
    ("template-conversion", variant(CLASSIFICATION, template="x: {sentence!r}"), "template", "conversion"),
    ("template-format-spec", variant(CLASSIFICATION, template="x: {sentence:>10}"), "template", "format spec"),
    ("template-positional-empty", variant(CLASSIFICATION, template="x: {}"), "template", "positional"),
    ("template-positional-zero", variant(CLASSIFICATION, template="x: {0}"), "template", "positional"),
    ("template-unbalanced", variant(CLASSIFICATION, template="x: {sentence"), "template", "{{"),
    ("template-no-field", variant(CLASSIFICATION, template="constant text"), "template", "placeholder"),
    ("prompt-missing-field", variant(CLASSIFICATION, prompt="{sentense}\nAnswer:"), "prompt",
     "did you mean 'sentence'"),
    ("prompt-attribute", variant(CLASSIFICATION, prompt="{sentence.upper}"), "prompt", "attribute"),
    ("prompt-no-field", variant(CLASSIFICATION, prompt="Answer:"), "prompt", "placeholder"),
    ("choices-count", variant(CLASSIFICATION, choices=["yes"]), "choices", "one per label"),
    ("choices-qa", variant(EXTRACTIVE, choices=["a", "b"]), "choices", "only for classification"),
    ("labels-one", variant(CLASSIFICATION, labels=["only"]), "labels", "at least two"),
    ("labels-duplicate", variant(CLASSIFICATION, labels=["a", "a"]), "labels", "duplicate"),
    ("positive-not-in-labels", variant(CLASSIFICATION, positive_label="maybe"), "positive_label", "'maybe'"),
    ("f1-three-labels", variant(CLASSIFICATION, labels=["a", "b", "c"], metrics=["accuracy", "f1"]),
     "positive_label", "f1"),
    ("classification-answers", variant(CLASSIFICATION, answers="answers.text"), "answers", "only for QA"),
    ("qa-labels", variant(EXTRACTIVE, labels=["a", "b"]), "labels", "only for classification"),
    ("qa-label", variant(EXTRACTIVE, label="label"), "label", "only for classification"),
    ("extractive-no-context", variant(EXTRACTIVE, inputs=["question"], template="q: {question}"), "inputs",
     "context"),
    ("normalizer", variant(EXTRACTIVE, normalizer="sqad"), "normalizer", "did you mean 'squad'"),
    ("max-new-tokens", variant(EXTRACTIVE, max_new_tokens=0), "max_new_tokens", "positive"),
    ("id-bad-name", variant(CLASSIFICATION, id="a b"), "id", "'a b'"),
    ("dataset-not-mapping", variant(CLASSIFICATION, dataset="org/x"), "dataset", "'org/x'"),
    ("eval-entry-int", variant(CLASSIFICATION, dataset={"hub": "h", "eval": [3]}), "dataset.eval", "3"),
    ("eval-entry-bad-key", variant(CLASSIFICATION, dataset={"hub": "h", "eval": [{"split": "v", "colum": "X"}]}),
     "dataset.eval", "colum"),
    ("eval-entry-no-split", variant(CLASSIFICATION, dataset={"hub": "h", "eval": [{"column": "X"}]}),
     "dataset.eval", "column"),
    ("eval-empty", variant(CLASSIFICATION, dataset={"hub": "h", "eval": []}), "dataset.eval", "empty"),
    ("eval-duplicate", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["validation", "validation"]}),
     "dataset.eval", "twice"),
    ("eval-duplicate-mapping",
     variant(CLASSIFICATION, dataset={"hub": "h", "eval": [{"split": "v", "column": "A"}, {"split": "v", "column": "B"}]}),
     "dataset.eval", "twice"),
    ("local-traversal", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["v"], "local": "../etc"}),
     "dataset.local", "'../etc'"),
    ("local-dotdot", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["v"], "local": ".."}),
     "dataset.local", "'..'"),
    ("files-traversal", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["v"], "files": {"v": ["../x.tsv"]}}),
     "dataset.files.v", "../x.tsv"),
    ("tsv-columns", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["v"], "tsv_columns": {"a": 1}}),
     "dataset.tsv_columns", "field name"),
    ("eval-is-train", variant(CLASSIFICATION, dataset={"hub": "h", "train": "train", "eval": ["train"]}),
     "dataset.eval", "also the train split"),
    ("eval-mapping-is-train",
     variant(CLASSIFICATION, dataset={"hub": "h", "train": "t", "eval": ["v", {"split": "t", "column": "T"}]}),
     "dataset.eval", "also the train split"),
    ("eval-split-path", variant(CLASSIFICATION, dataset={"hub": "h", "eval": ["../x"]}), "dataset.eval", "'../x'"),
    ("eval-split-dotdot", variant(CLASSIFICATION, dataset={"hub": "h", "eval": [".."]}), "dataset.eval", "'..'"),
    ("train-split-path", variant(CLASSIFICATION, dataset={"hub": "h", "train": "a/b", "eval": ["v"]}),
     "dataset.train", "'a/b'"),
    ("suite-perf", variant(CLASSIFICATION, suite="perf"), "suite", "reserved"),
    ("suite-transfer", variant(CLASSIFICATION, suite="transfer"), "suite", "reserved"),
    ("suite-readme", variant(CLASSIFICATION, suite="readme"), "suite", "reserved"),
    ("suite-case", variant(CLASSIFICATION, suite="Glue"), "suite", "lower-case"),
]


@pytest.mark.parametrize("data,fieldname,text", [c[1:] for c in BAD_FIELDS], ids=[c[0] for c in BAD_FIELDS])
def test_malformed_plugin(tmp_path, data, fieldname, text):
    message = task_error(write_yaml(tmp_path, data))
    assert f"field '{fieldname}'" in message
    assert text in message


def test_every_negative_case_starts_from_a_valid_plugin(tmp_path):
    # guards the table above: the bases are valid, so each failure comes from the one change
    assert load_task_file(write_yaml(tmp_path, CLASSIFICATION)).name == "mytask"
    assert load_task_file(write_yaml(tmp_path, EXTRACTIVE, "myqa.yaml")).name == "myqa"


def test_parse_task_rejects_non_mapping():
    with pytest.raises(TaskError, match="src: expected a mapping"):
        parse_task(["a"], "src")


def test_python_object_tag_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: !!python/object/apply:os.system ["touch {marker}"]
        version: 1
        kind: classification
        """), encoding="utf-8")
    message = task_error(path)
    assert "python/object" in message
    assert not marker.exists()


def test_python_object_new_tag_is_rejected(tmp_path):
    marker = tmp_path / "created"
    path = tmp_path / "evil.yaml"
    path.write_text(f"dataset: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n",
                    encoding="utf-8")
    task_error(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------
# discovery: --tasks-dir
def test_tasks_dir_plugin_is_discovered(tmp_path):
    d = tmp_path / "plugins"
    path = write_yaml(d / "sub", CLASSIFICATION)  # nested folders are searched too
    (d / "README.txt").parent.mkdir(parents=True, exist_ok=True)
    (d / "README.txt").write_text("not a task", encoding="utf-8")
    write_yaml(d / ".hidden", variant(CLASSIFICATION, name="hidden"))  # hidden folders are skipped
    catalog = discover([d], entry_points=False)
    spec = catalog.tasks["mytask"]
    assert spec.provider == f"dir:{d}"
    assert spec.source == str(path)
    assert set(BUILTINS) <= set(catalog.tasks)
    assert "hidden" not in catalog.tasks
    assert catalog.broken == {}
    assert catalog.select(["mytask", "sst2"]) == [spec, catalog.tasks["sst2"]]


def test_tasks_dir_yml_extension(tmp_path):
    write_yaml(tmp_path, CLASSIFICATION, "mytask.yml")
    catalog = discover([tmp_path], builtin=False, entry_points=False)
    assert list(catalog.tasks) == ["mytask"]


def test_broken_plugin_does_not_stop_valid_ones(tmp_path):
    write_yaml(tmp_path, CLASSIFICATION, "mytask.yaml")
    broken = write_yaml(tmp_path, variant(CLASSIFICATION, name="broken", kind="clasification"), "broken.yaml")
    catalog = discover([tmp_path], entry_points=False)
    assert "mytask" in catalog.tasks and "sst2" in catalog.tasks
    assert "broken" not in catalog.tasks
    assert list(catalog.broken) == [str(broken)]
    message = catalog.broken[str(broken)]
    assert str(broken) in message and "field 'kind'" in message and "\n" not in message
    with pytest.raises(TaskError) as info:
        catalog.select(["broken"])
    assert str(info.value) == message
    assert catalog.select(["mytask"])[0].name == "mytask"


def test_broken_plugin_is_found_by_the_name_it_declares(tmp_path):
    # my_cola.yaml says name: acceptability; asking for that name must show its real fault
    broken = write_yaml(tmp_path, variant(CLASSIFICATION, name="acceptability", kind="classify"), "my_cola.yaml")
    catalog = discover([tmp_path], entry_points=False)
    assert catalog.claims[str(broken)] == {"acceptability", "my_cola"}
    with pytest.raises(TaskError, match="field 'kind'"):
        catalog.select(["acceptability"])
    with pytest.raises(TaskError, match="field 'kind'"):
        catalog.select(["my_cola"])


def test_broken_plugin_named_like_a_builtin_is_an_error_not_the_builtin(tmp_path):
    # a valid sst2.yaml in --tasks-dir is a collision; a broken one must not quietly run the built-in
    (tmp_path / "sst2.yaml").write_text("name: sst2\nlabels: [a, b\n", encoding="utf-8")
    catalog = discover([tmp_path], entry_points=False)
    with pytest.raises(TaskError, match="YAML syntax error"):
        catalog.select(["sst2"])
    assert catalog.select(["qqp"])[0].provider == "builtin"


def test_the_builtin_folder_given_as_tasks_dir_is_read_once(tmp_path):
    catalog = discover([BUILTIN_TASKS_DIR, str(BUILTIN_TASKS_DIR) + "/"], entry_points=False)
    assert sorted(catalog.tasks) == sorted(BUILTINS) and catalog.broken == {}
    write_yaml(tmp_path, CLASSIFICATION)
    twice = discover([tmp_path, tmp_path], entry_points=False)  # one folder given twice
    assert "mytask" in twice.tasks


def test_a_key_given_twice_is_an_error(tmp_path):
    path = write_yaml(tmp_path, CLASSIFICATION)
    path.write_text(path.read_text(encoding="utf-8") + "metrics: [accuracy]\n", encoding="utf-8")
    message = task_error(path)
    assert "key 'metrics' is given twice" in message
    lines = path.read_text(encoding="utf-8").splitlines()
    assert f"line {len(lines)}," in message  # the second one


def test_a_key_given_twice_in_the_dataset_mapping_is_an_error(tmp_path):
    path = tmp_path / "mytask.yaml"
    text = yaml.safe_dump(CLASSIFICATION, sort_keys=False).replace("  hub: org/mytask\n",
                                                                   "  hub: org/mytask\n  hub: org/other\n")
    path.write_text(text, encoding="utf-8")
    assert "key 'hub' is given twice" in task_error(path)


def test_unquoted_yes_no_labels_say_to_quote_them(tmp_path):
    path = write_yaml(tmp_path, CLASSIFICATION)
    path.write_text(path.read_text(encoding="utf-8").replace("- negative\n- positive", "- no\n- yes"),
                    encoding="utf-8")
    message = task_error(path)
    assert "field 'labels'" in message and "quote it" in message
    path.write_text(yaml.safe_dump(variant(CLASSIFICATION, positive_label=True), sort_keys=False), encoding="utf-8")
    assert "quote it" in task_error(path)


def test_tasks_dir_must_be_a_directory(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        discover([tmp_path / "absent"], entry_points=False)
    f = tmp_path / "file.yaml"
    f.write_text("x: 1", encoding="utf-8")
    with pytest.raises(UserError, match="not a directory"):
        discover([f], entry_points=False)


def test_duplicate_task_name_across_dirs_raises(tmp_path):
    a = write_yaml(tmp_path / "a", CLASSIFICATION)
    b = write_yaml(tmp_path / "b", variant(CLASSIFICATION, template="other: {sentence}"))
    with pytest.raises(TaskError) as info:
        catalog = discover([tmp_path / "a", tmp_path / "b"], builtin=False, entry_points=False)
        catalog.select(["mytask"])  # a catalog that does not raise in discover must raise here
    message = str(info.value)
    assert str(a) in message and str(b) in message and "already defined" in message


def test_plugin_shadowing_a_builtin_raises(tmp_path):
    write_yaml(tmp_path, variant(CLASSIFICATION, name="sst2"), "sst2.yaml")
    with pytest.raises(TaskError, match="already defined"):
        catalog = discover([tmp_path], entry_points=False)
        catalog.select(["sst2"])


def test_catalog_add_rejects_duplicates():
    catalog = TaskCatalog()
    catalog.add(parse_task(CLASSIFICATION, "first.yaml"))
    with pytest.raises(TaskError) as info:
        catalog.add(parse_task(variant(CLASSIFICATION, version=2), "second.yaml"))
    message = str(info.value)
    assert "second.yaml" in message and "first.yaml" in message and "field 'name'" in message
    assert catalog.tasks["mytask"].version == 1


def test_select_unknown_name_lists_valid_names(builtin):
    with pytest.raises(UserError) as info:
        builtin.select(["sst3"])
    message = str(info.value)
    assert not isinstance(info.value, TaskError)
    assert "unknown task 'sst3'" in message
    assert "did you mean 'sst2'" in message
    for name in BUILTINS:
        assert name in message


def test_select_all_and_order(builtin):
    assert [s.name for s in builtin.select(None)] == list(builtin.tasks)
    assert [s.name for s in builtin.select([])] == list(builtin.tasks)
    assert [s.name for s in builtin.select(["squad", "mnli"])] == ["squad", "mnli"]


# ---------------------------------------------------------------------------------------
# discovery: entry points of installed packages
def make_distribution(root: Path, dist: str, version: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    info = root / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{name} = {value}" for name, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh folder on sys.path; modules imported from it are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and str(root) in (sys.modules[name].__file__ or ""):
            del sys.modules[name]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_entry_point_plugin_is_discovered(tmp_path, site):
    plugins = tmp_path / "plugin_tasks"
    path = write_yaml(plugins, CLASSIFICATION)
    module = unique("mypkg_tasks")
    make_distribution(site, "mypkg", "1.0", {"mytasks": f"{module}:TASKS_DIR"},
                      {module: f"from pathlib import Path\nTASKS_DIR = Path({str(plugins)!r})\n"})
    catalog = discover(entry_points=True)
    spec = catalog.tasks["mytask"]
    assert spec.provider == "mypkg==1.0"
    assert spec.source == str(path)
    assert set(BUILTINS) <= set(catalog.tasks)
    assert not any("mypkg" in key for key in catalog.broken)


def test_entry_point_forms_file_list_and_mapping(tmp_path, site):
    plugins = tmp_path / "plugin_tasks"
    file_a = write_yaml(plugins, variant(CLASSIFICATION, name="task_a"), "a.yaml")
    module = unique("mypkg_forms")
    source = textwrap.dedent(f"""\
        def tasks():
            return [{str(file_a)!r}, {variant(EXTRACTIVE, name="task_b")!r}]
        """)
    make_distribution(site, "formspkg", "2.3", {"forms": f"{module}:tasks"}, {module: source})
    catalog = discover(builtin=False, entry_points=True)
    assert catalog.tasks["task_a"].provider == "formspkg==2.3"
    assert catalog.tasks["task_b"].provider == "formspkg==2.3"
    assert catalog.tasks["task_b"].kind == "extractive_qa"


def test_broken_entry_point_does_not_stop_others(tmp_path, site):
    plugins = tmp_path / "plugin_tasks"
    write_yaml(plugins, CLASSIFICATION)
    good, bad = unique("good_tasks"), unique("bad_tasks")
    make_distribution(site, "mixedpkg", "0.5",
                      {"aaa_broken": f"{bad}:TASKS_DIR", "zzz_good": f"{good}:TASKS_DIR"},
                      {bad: "raise RuntimeError('plugin import exploded')\n",
                       good: f"TASKS_DIR = {str(plugins)!r}\n"})
    catalog = discover(entry_points=True)
    assert catalog.tasks["mytask"].provider == "mixedpkg==0.5"
    assert "sst2" in catalog.tasks
    keys = [k for k in catalog.broken if "aaa_broken" in k]
    assert len(keys) == 1
    message = catalog.broken[keys[0]]
    assert "mixedpkg==0.5" in message and "RuntimeError" in message and "plugin import exploded" in message
    assert "\n" not in message


def test_entry_point_with_malformed_task_file_is_broken(tmp_path, site):
    plugins = tmp_path / "plugin_tasks"
    bad = write_yaml(plugins, variant(CLASSIFICATION, version="one"))
    module = unique("badfile_tasks")
    make_distribution(site, "badfilepkg", "1.0", {"bad": f"{module}:TASKS_DIR"},
                      {module: f"TASKS_DIR = {str(plugins)!r}\n"})
    catalog = discover(entry_points=True)
    assert "mytask" not in catalog.tasks
    messages = [m for k, m in catalog.broken.items() if "badfilepkg" in k]
    assert len(messages) == 1 and str(bad) in messages[0] and "field 'version'" in messages[0]
