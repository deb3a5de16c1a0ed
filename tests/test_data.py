"""Data sources: sample, local files (JSON Lines, GLUE TSV, SQuAD JSON), hub fast-fail, schema checks, fingerprints."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dataclasses  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from benchmark import data as D  # noqa: E402
from benchmark import sample  # noqa: E402
from benchmark.errors import DataError, HubUnavailable, UserError  # noqa: E402
from benchmark.tasks import discover  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# every task folder, not the parent alone: a partial copy (make perf's GPU run carries SST-2 only) skips too
HAS_DATA = all((SHARED_DATA / name).is_dir() for name in ("sst2", "mnli", "qqp", "squad", "trivia_qa"))
needs_data = pytest.mark.skipif(not HAS_DATA, reason=f"{SHARED_DATA} is absent or partial")
BUILTINS = ("sst2", "mnli", "qqp", "squad", "triviaqa")


@pytest.fixture(scope="module")
def tasks():
    return discover(entry_points=False).tasks


# ---------------------------------------------------------------------------------------
# helpers
def write_jsonl(path: Path, rows, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(gzip.compress(text, mtime=0) if gz else text)
    return path


def write_tsv(path: Path, header: list[str], records: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(str(v) for v in rec) for rec in records]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def data_error(spec, split: str, root: Path, *needles: str) -> str:
    with pytest.raises(DataError) as info:
        D.load_split(spec, split, str(root))
    message = str(info.value)
    assert "\n" not in message, f"message is not one line: {message!r}"
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


SST2_ROWS = [
    {"sentence": "it 's a charming and often affecting journey . ", "label": 1, "idx": 0},
    {"sentence": "unflinchingly bleak and desperate ", "label": 0, "idx": 1},
    {"sentence": 'a "quoted word and an unbalanced quote', "label": 1, "idx": 2},
    {"sentence": "café , naïve — ünïcödé ☃", "label": 0, "idx": 3},
    {"sentence": "  leading spaces are kept", "label": 1, "idx": 4},
]
MNLI_ROWS = [
    {"premise": "The new rights are nice enough", "hypothesis": "Everyone really likes the newest benefits ",
     "label": 1, "idx": 0},
    {"premise": "This site includes a list of all award winners.", "hypothesis": 'It is "not" searchable.',
     "label": 2, "idx": 1},
    {"premise": "A\u00a0non-breaking space", "hypothesis": "There is a space.", "label": 0, "idx": 2},
]
MNLI_LABELS = ("entailment", "neutral", "contradiction")
MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "label2", "label3",
               "label4", "label5", "gold_label"]


def mnli_records(rows):
    out = []
    for i, r in enumerate(rows):
        name = MNLI_LABELS[r["label"]]
        out.append([i, 1000 + i, f"{1000 + i}n", "government", "( x )", "( y )", "(ROOT x)", "(ROOT y)",
                    r["premise"], r["hypothesis"], name, name, "neutral", name, name, name])
    return out


QQP_ROWS = [
    {"question1": "Why are African-Americans so beautiful?", "question2": "Why are hispanics so beautiful?",
     "label": 0, "idx": 0},
    {"question1": "How do I learn Python?", "question2": "What is the best way to learn Python？", "label": 1, "idx": 1},
    {"question1": "Is ₹2000 a lot?", "question2": "Is √2 irrational?", "label": 0, "idx": 2},
]
QQP_HEADER = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
QQP_RECORDS = [[201359, 303345, 303346, QQP_ROWS[0]["question1"], QQP_ROWS[0]["question2"], 0],
               [263843, 69383, 380476, QQP_ROWS[1]["question1"], QQP_ROWS[1]["question2"], 1],
               [172974, 266948, 175089, QQP_ROWS[2]["question1"], QQP_ROWS[2]["question2"], 0]]

CONTEXT_1 = "Super Bowl 50 was an American football game. The Denver Broncos won the title."
CONTEXT_2 = " Leading space: the Carolina Panthers lost in Santa Clara, Califórnia."
SQUAD_ROWS = [
    {"id": "q1", "title": "Super_Bowl_50", "context": CONTEXT_1, "question": "Which team won?",
     "answers": {"text": ["Denver Broncos", "The Denver Broncos"],
                 "answer_start": [CONTEXT_1.index("Denver"), CONTEXT_1.index("The Denver")]}},
    {"id": "q2", "title": "Super_Bowl_50", "context": CONTEXT_1, "question": " What game? ",
     "answers": {"text": ["American football game"], "answer_start": [CONTEXT_1.index("American")]}},
    {"id": "q3", "title": "Super_Bowl_50", "context": CONTEXT_2, "question": "Where?",
     "answers": {"text": ["Santa Clara, Califórnia"], "answer_start": [CONTEXT_2.index("Santa")]}},
    {"id": "q4", "title": "Other", "context": CONTEXT_2, "question": "Who lost?",
     "answers": {"text": ["Carolina Panthers"], "answer_start": [CONTEXT_2.index("Carolina")]}},
]


def squad_document(rows) -> dict:
    """The original SQuAD layout (data -> paragraphs -> qas) of HF-schema rows, in row order."""
    articles: list[dict] = []
    for r in rows:
        if not articles or articles[-1]["title"] != r["title"]:
            articles.append({"title": r["title"], "paragraphs": []})
        paragraphs = articles[-1]["paragraphs"]
        if not paragraphs or paragraphs[-1]["context"] != r["context"]:
            paragraphs.append({"context": r["context"], "qas": []})
        answers = [{"text": t, "answer_start": s} for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])]
        paragraphs[-1]["qas"].append({"id": r["id"], "question": r["question"], "answers": answers})
    return {"version": "1.1", "data": articles}


# ---------------------------------------------------------------------------------------
# fingerprints
def test_content_fingerprint_format_is_pinned():
    rows = [{"b": "é", "a": 1}, {"x": [1, 2]}]
    expected = hashlib.sha256('{"a":1,"b":"é"}\n{"x":[1,2]}\n'.encode("utf-8")).hexdigest()
    assert D.content_fingerprint(rows) == expected


def test_content_fingerprint_key_order_insensitive_row_order_sensitive():
    a = [{"sentence": "x", "label": 1}, {"sentence": "y", "label": 0}]
    b = [{"label": 1, "sentence": "x"}, {"label": 0, "sentence": "y"}]
    assert D.content_fingerprint(a) == D.content_fingerprint(b)
    assert D.content_fingerprint(a) != D.content_fingerprint(a[::-1])
    assert D.content_fingerprint(a) != D.content_fingerprint([{"sentence": "x ", "label": 1}, a[1]])
    assert D.content_fingerprint(a) != D.content_fingerprint([{"sentence": "x", "label": "1"}, a[1]])
    assert D.content_fingerprint(a) != D.content_fingerprint(a[:1])


def test_chain_depends_on_every_input():
    fp = D.content_fingerprint([{"a": 1}])
    base = D.chain(fp, "limit", n=5)
    assert base == D.chain(fp, "limit", n=5)
    assert len(base) == 64 and base != fp
    others = {D.chain(fp, "limit", n=6), D.chain(fp, "limit", version=2, n=5), D.chain(fp, "shuffle", n=5),
              D.chain("0" * 64, "limit", n=5), D.chain(fp, "limit")}
    assert base not in others and len(others) == 5


# ---------------------------------------------------------------------------------------
# sample source
@pytest.mark.parametrize("name", BUILTINS)
def test_sample_source_all_splits_deterministic(tasks, name):
    spec = tasks[name]
    fingerprints = set()
    for split in sample.splits(spec):
        first = D.load_split(spec, split, "sample")
        second = D.load_split(spec, split, "sample")
        assert first.rows and first.rows == second.rows
        assert first.info.fingerprint == second.info.fingerprint == D.content_fingerprint(first.rows)
        assert (first.info.source, first.info.location) == ("sample", "builtin")
        assert first.info.num_examples == len(first.rows)
        assert (first.task, first.name) == (name, split)
        fingerprints.add(first.info.fingerprint)
    assert len(fingerprints) == len(sample.splits(spec))  # each split is different data


def test_sample_unknown_split(tasks):
    with pytest.raises(DataError, match="no split 'test'"):
        D.load_split(tasks["sst2"], "test", "sample")


def test_limit_truncates_and_chains_fingerprint(tasks):
    spec = tasks["mnli"]
    full = D.load_split(spec, "validation_matched", "sample")
    five = D.load_split(spec, "validation_matched", "sample", limit=5)
    assert five.rows == full.rows[:5]
    assert five.info.num_examples == 5
    assert five.info.fingerprint == D.chain(full.info.fingerprint, "limit", n=5)
    assert five.info.fingerprint not in (full.info.fingerprint, D.content_fingerprint(five.rows))
    six = D.load_split(spec, "validation_matched", "sample", limit=6)
    assert six.info.fingerprint != five.info.fingerprint
    big = D.load_split(spec, "validation_matched", "sample", limit=len(full.rows) + 10)
    assert big.rows == full.rows and big.info.num_examples == len(full.rows)
    assert big.info.fingerprint == full.info.fingerprint  # the whole split: current for a plain run, one row


def test_limit_and_sample_record_which_subset(tasks):
    spec = tasks["mnli"]
    assert D.load_split(spec, "validation_matched", "sample").info.subset == ""
    assert D.load_split(spec, "validation_matched", "sample", limit=5).info.subset == "first"
    assert D.load_split(spec, "validation_matched", "sample", limit=10**6).info.subset == ""


def test_sample_is_one_fixed_draw_spread_over_the_split_in_split_order(tasks):
    spec = tasks["mnli"]
    full = D.load_split(spec, "validation_matched", "sample")
    ten = D.load_split(spec, "validation_matched", "sample", sample=10)
    positions = [full.rows.index(r) for r in ten.rows]
    assert positions == sorted(positions) and len(set(positions)) == 10   # split order, no repeats
    assert positions != list(range(10)) and positions[-1] > len(full.rows) // 2  # not the first ten
    assert D.load_split(spec, "validation_matched", "sample", sample=10).rows == ten.rows  # the same draw
    assert ten.info.num_examples == 10 and ten.info.subset == "random"
    first = D.load_split(spec, "validation_matched", "sample", limit=10)
    assert ten.info.fingerprint not in (first.info.fingerprint, full.info.fingerprint)
    # the draw does not depend on the size asked for beyond its own rows: 11 keeps its own, named apart
    assert D.load_split(spec, "validation_matched", "sample", sample=11).info.fingerprint != ten.info.fingerprint
    whole = D.load_split(spec, "validation_matched", "sample", sample=len(full.rows))
    assert whole.rows == full.rows and whole.info.fingerprint == full.info.fingerprint and whole.info.subset == ""


def test_limit_and_sample_together_is_an_error(tasks):
    with pytest.raises(UserError, match="--limit 5 and --sample 5: pass one"):
        D.load_split(tasks["sst2"], "validation", "sample", limit=5, sample=5)
    with pytest.raises(UserError, match="--sample"):
        D.load_split(tasks["sst2"], "validation", "sample", sample=0)


@pytest.mark.parametrize("limit", [0, -1, -100])
def test_limit_must_be_positive(tasks, limit):
    with pytest.raises(UserError, match="--limit"):
        D.load_split(tasks["sst2"], "validation", "sample", limit=limit)


# ---------------------------------------------------------------------------------------
# source resolution
def test_describe_source(tmp_path, monkeypatch):
    assert D.describe_source("sample") == ("sample", "builtin")
    assert D.describe_source("hub") == ("hub", "huggingface")
    assert D.describe_source(str(tmp_path)) == ("local", str(tmp_path))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert D.describe_source("~/data") == ("local", str(tmp_path / "data"))


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_describe_source_non_directory(tmp_path, kind):
    target = tmp_path / "nope"
    if kind == "file":
        target.write_text("x", encoding="utf-8")
    with pytest.raises(UserError) as info:
        D.describe_source(str(target))
    assert str(target) in str(info.value) and "--data" in str(info.value)
    with pytest.raises(UserError):
        D.load_split(discover(entry_points=False).tasks["sst2"], "validation", str(target))


# ---------------------------------------------------------------------------------------
# local JSON Lines
@pytest.mark.parametrize("gz", [False, True])
def test_local_jsonl(tasks, tmp_path, gz):
    write_jsonl(tmp_path / "sst2" / ("validation.jsonl" + (".gz" if gz else "")), SST2_ROWS, gz=gz)
    split = D.load_split(tasks["sst2"], "validation", str(tmp_path))
    assert split.rows == SST2_ROWS
    assert split.info.source == "local" and split.info.location == str(tmp_path)
    assert split.info.fingerprint == D.content_fingerprint(SST2_ROWS)
    assert split.info.num_examples == len(SST2_ROWS)


def test_local_jsonl_gz_and_plain_agree_and_two_files_for_one_split_are_refused(tasks, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_jsonl(a / "sst2" / "validation.jsonl.gz", SST2_ROWS, gz=True)
    write_jsonl(b / "sst2" / "validation.jsonl", SST2_ROWS)
    fa = D.load_split(tasks["sst2"], "validation", str(a)).info.fingerprint
    fb = D.load_split(tasks["sst2"], "validation", str(b)).info.fingerprint
    assert fa == fb
    write_jsonl(a / "sst2" / "validation.jsonl", SST2_ROWS[:2])  # an edited copy beside the original
    with pytest.raises(DataError, match=r"2 files for sst2 split 'validation' \(validation.jsonl.gz, "
                                        r"validation.jsonl\); keep one"):
        D.load_split(tasks["sst2"], "validation", str(a))


def test_labels_written_as_names_hash_like_ids_in_every_format(tasks, tmp_path):
    ids = D.load_split(tasks["sst2"], "validation", str(write_jsonl(
        tmp_path / "ids" / "sst2" / "validation.jsonl", SST2_ROWS).parent.parent))
    named = [{**r, "label": tasks["sst2"].labels[r["label"]]} for r in SST2_ROWS]
    names = D.load_split(tasks["sst2"], "validation", str(write_jsonl(
        tmp_path / "names" / "sst2" / "validation.jsonl", named).parent.parent))
    assert names.rows == ids.rows and names.info.fingerprint == ids.info.fingerprint


def test_parquet_as_the_hub_stores_it_gives_the_same_rows_and_fingerprint(tasks, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = D.load_split(tasks["sst2"], "validation", str(write_jsonl(
        tmp_path / "j" / "sst2" / "validation.jsonl", SST2_ROWS).parent.parent))
    one = tmp_path / "one" / "sst2"
    one.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(SST2_ROWS), one / "validation.parquet")
    shards = tmp_path / "shards" / "sst2"
    shards.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(SST2_ROWS[2:]), shards / "validation-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(SST2_ROWS[:2]), shards / "validation-00000-of-00002.parquet")
    for folder in (one, shards):
        split = D.load_split(tasks["sst2"], "validation", str(folder.parent))
        assert split.rows == jsonl.rows and split.info.fingerprint == jsonl.info.fingerprint
    (one / "validation.parquet").write_bytes((one / "validation.parquet").read_bytes()[:40])
    with pytest.raises(DataError, match="cannot read it as parquet"):
        D.load_split(tasks["sst2"], "validation", str(one.parent))


def test_a_byte_order_mark_a_gzip_file_named_plain_and_a_glue_folder_name(tasks, tmp_path):
    path = write_jsonl(tmp_path / "bom" / "sst2" / "validation.jsonl", SST2_ROWS)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert D.load_split(tasks["sst2"], "validation", str(tmp_path / "bom")).rows == SST2_ROWS
    tsv = tmp_path / "tsv" / "sst2" / "dev.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_bytes(b"\xef\xbb\xbfsentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n"
                                                             for r in SST2_ROWS).encode())
    assert [r["label"] for r in D.load_split(tasks["sst2"], "validation", str(tmp_path / "tsv")).rows] == \
        [r["label"] for r in SST2_ROWS]
    plain = write_jsonl(tmp_path / "plain" / "sst2" / "validation.jsonl", SST2_ROWS)
    plain.rename(plain.with_name("validation.jsonl.gz"))
    with pytest.raises(DataError, match="not gzip-compressed; name it validation.jsonl, or compress it"):
        D.load_split(tasks["sst2"], "validation", str(tmp_path / "plain"))
    gz = write_jsonl(tmp_path / "gz" / "sst2" / "validation.jsonl.gz", SST2_ROWS, gz=True)
    gz.rename(gz.with_name("validation.jsonl"))
    with pytest.raises(DataError, match="gzip-compressed; name it validation.jsonl.gz"):
        D.load_split(tasks["sst2"], "validation", str(tmp_path / "gz"))
    write_jsonl(tmp_path / "glue" / "SST-2" / "validation.jsonl", SST2_ROWS)
    with pytest.raises(DataError, match="SST-2/ is there: rename or link it as sst2/"):
        D.load_split(tasks["sst2"], "validation", str(tmp_path / "glue"))


def test_a_huge_tsv_field_and_a_hub_date_column_are_data_not_tracebacks(tasks, tmp_path):
    import datetime

    tsv = tmp_path / "sst2" / "dev.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text("sentence\tlabel\n" + "a" * 300_000 + "\t1\n")
    with pytest.raises(DataError, match=r"dev.tsv: row 1|has 300,000 characters"):
        D.load_split(tasks["sst2"], "validation", str(tmp_path))
    when = datetime.datetime(2020, 1, 2, 3, 4, 5)
    assert D.content_fingerprint([{"t": when, "b": b"\x00\x01"}]) == \
        D.content_fingerprint([{"t": when.isoformat(), "b": "0001"}])
    with pytest.raises(DataError, match="a set value"):
        D.content_fingerprint([{"s": {1}}])


def test_local_blank_lines_are_skipped(tasks, tmp_path):
    path = write_jsonl(tmp_path / "sst2" / "validation.jsonl", SST2_ROWS)
    path.write_text(path.read_text(encoding="utf-8").replace("\n", "\n\n"), encoding="utf-8")
    assert D.load_split(tasks["sst2"], "validation", str(tmp_path)).rows == SST2_ROWS


def test_local_uses_dataset_local_folder(tasks, tmp_path):
    rows = [{"question": "Who?", "answer": {"aliases": ["Ann", "Anne"]}},
            {"question": "What?", "answer": {"aliases": ["Thing"]}}]
    write_jsonl(tmp_path / "trivia_qa" / "validation.jsonl.gz", rows, gz=True)
    assert D.load_split(tasks["triviaqa"], "validation", str(tmp_path)).rows == rows


def test_local_limit(tasks, tmp_path):
    write_jsonl(tmp_path / "sst2" / "validation.jsonl", SST2_ROWS)
    full = D.load_split(tasks["sst2"], "validation", str(tmp_path))
    two = D.load_split(tasks["sst2"], "validation", str(tmp_path), limit=2)
    assert two.rows == SST2_ROWS[:2]
    assert two.info.fingerprint == D.chain(full.info.fingerprint, "limit", n=2)


# ---------------------------------------------------------------------------------------
# original formats convert to the HF schema: same rows, same fingerprint
def test_glue_tsv_sst2_matches_jsonl(tasks, tmp_path):
    write_tsv(tmp_path / "tsv" / "sst2" / "dev.tsv", ["sentence", "label"],
              [[r["sentence"], r["label"]] for r in SST2_ROWS])
    write_jsonl(tmp_path / "jsonl" / "sst2" / "validation.jsonl.gz", SST2_ROWS, gz=True)
    tsv = D.load_split(tasks["sst2"], "validation", str(tmp_path / "tsv"))
    ref = D.load_split(tasks["sst2"], "validation", str(tmp_path / "jsonl"))
    assert tsv.rows == SST2_ROWS
    assert tsv.info.fingerprint == ref.info.fingerprint


@pytest.mark.parametrize("split,filename", [("validation_matched", "dev_matched.tsv"),
                                            ("validation_mismatched", "dev_mismatched.tsv")])
def test_glue_tsv_mnli_label_names_match_jsonl(tasks, tmp_path, split, filename):
    write_tsv(tmp_path / "tsv" / "mnli" / filename, MNLI_HEADER, mnli_records(MNLI_ROWS))
    write_jsonl(tmp_path / "jsonl" / "mnli" / f"{split}.jsonl", MNLI_ROWS)
    tsv = D.load_split(tasks["mnli"], split, str(tmp_path / "tsv"))
    ref = D.load_split(tasks["mnli"], split, str(tmp_path / "jsonl"))
    assert tsv.rows == MNLI_ROWS
    assert all(isinstance(r["label"], int) for r in tsv.rows)
    assert tsv.info.fingerprint == ref.info.fingerprint


def test_glue_tsv_qqp_converts_texts_and_labels(tasks, tmp_path):
    write_tsv(tmp_path / "qqp" / "dev.tsv", QQP_HEADER, QQP_RECORDS)
    rows = D.load_split(tasks["qqp"], "validation", str(tmp_path)).rows
    assert [(r["question1"], r["question2"], r["label"]) for r in rows] == \
           [(r["question1"], r["question2"], r["label"]) for r in QQP_ROWS]
    assert all(set(r) == {"question1", "question2", "label", "idx"} for r in rows)
    assert all(isinstance(r["idx"], int) for r in rows)


def test_glue_tsv_qqp_matches_jsonl(tasks, tmp_path):
    write_tsv(tmp_path / "tsv" / "qqp" / "dev.tsv", QQP_HEADER, QQP_RECORDS)
    write_jsonl(tmp_path / "jsonl" / "qqp" / "validation.jsonl.gz", QQP_ROWS, gz=True)
    tsv = D.load_split(tasks["qqp"], "validation", str(tmp_path / "tsv"))
    ref = D.load_split(tasks["qqp"], "validation", str(tmp_path / "jsonl"))
    assert tsv.rows == QQP_ROWS
    assert tsv.info.fingerprint == ref.info.fingerprint


def test_squad_json_matches_jsonl(tasks, tmp_path):
    (tmp_path / "json" / "squad").mkdir(parents=True)
    (tmp_path / "json" / "squad" / "dev-v1.1.json").write_text(json.dumps(squad_document(SQUAD_ROWS)),
                                                               encoding="utf-8")
    write_jsonl(tmp_path / "jsonl" / "squad" / "validation.jsonl.gz", SQUAD_ROWS, gz=True)
    original = D.load_split(tasks["squad"], "validation", str(tmp_path / "json"))
    ref = D.load_split(tasks["squad"], "validation", str(tmp_path / "jsonl"))
    assert original.rows == SQUAD_ROWS
    assert original.info.fingerprint == ref.info.fingerprint


# ---------------------------------------------------------------------------------------
# data errors: DataError, one line, naming the file / example / field
def test_missing_split_file_lists_files_tried(tasks, tmp_path):
    (tmp_path / "sst2").mkdir()
    message = data_error(tasks["sst2"], "validation", tmp_path,
                         str(tmp_path / "sst2"), "validation.jsonl.gz", "validation.jsonl", "dev.tsv", "--data")
    assert "train.tsv" not in message
    data_error(tasks["mnli"], "validation_mismatched", tmp_path, "dev_mismatched.tsv")
    data_error(tasks["triviaqa"], "validation", tmp_path, str(tmp_path / "trivia_qa"))


def test_empty_split(tasks, tmp_path):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "validation.jsonl").write_text("\n\n", encoding="utf-8")
    data_error(tasks["sst2"], "validation", tmp_path, str(tmp_path), "sst2/validation", "empty")


def test_empty_tsv(tasks, tmp_path):
    write_tsv(tmp_path / "sst2" / "dev.tsv", ["sentence", "label"], [])
    data_error(tasks["sst2"], "validation", tmp_path, "empty")


def sst2_with(tmp_path: Path, bad: dict, position: int = 2) -> Path:
    rows = [dict(r) for r in SST2_ROWS]
    rows[position] = bad
    write_jsonl(tmp_path / "sst2" / "validation.jsonl", rows)
    return tmp_path


ROW_ERRORS = [
    ("missing-text", {"label": 1, "idx": 2}, "field 'sentence'", "missing"),
    ("null-text", {"sentence": None, "label": 1, "idx": 2}, "field 'sentence'", "NoneType"),
    ("number-text", {"sentence": 3, "label": 1, "idx": 2}, "field 'sentence'", "int"),
    ("long-text", {"sentence": "x" * 100_000, "label": 1, "idx": 2}, "field 'sentence'", "100,000 characters"),
    ("missing-label", {"sentence": "s", "idx": 2}, "field 'label'", "missing"),
    ("null-label", {"sentence": "s", "label": None, "idx": 2}, "field 'label'", "None"),
    ("bool-label", {"sentence": "s", "label": True, "idx": 2}, "field 'label'", "True"),
    ("float-label", {"sentence": "s", "label": 1.0, "idx": 2}, "field 'label'", "1.0"),
    ("label-too-big", {"sentence": "s", "label": 2, "idx": 2}, "field 'label'", "outside 0..1"),
    ("label-negative", {"sentence": "s", "label": -1, "idx": 2}, "field 'label'", "outside 0..1"),
    ("label-name", {"sentence": "s", "label": "maybe", "idx": 2}, "field 'label'", "not one of negative, positive"),
    ("missing-id", {"sentence": "s", "label": 1}, "field 'idx'", "missing"),
    ("duplicate-id", {"sentence": "s", "label": 1, "idx": 1}, "field 'idx'", "repeats id '1'"),
]


@pytest.mark.parametrize("bad,fieldname,text", [c[1:] for c in ROW_ERRORS], ids=[c[0] for c in ROW_ERRORS])
def test_row_errors(tasks, tmp_path, bad, fieldname, text):
    data_error(tasks["sst2"], "validation", sst2_with(tmp_path, bad),
               str(tmp_path), "sst2/validation", "example 2", fieldname, text)


def test_label_names_are_accepted_in_jsonl(tasks, tmp_path):
    rows = [{"sentence": "a", "label": "positive", "idx": 0}, {"sentence": "b", "label": "negative", "idx": 1}]
    write_jsonl(tmp_path / "sst2" / "validation.jsonl", rows)
    split = D.load_split(tasks["sst2"], "validation", str(tmp_path))
    assert [tasks["sst2"].label_index(r) for r in split.rows] == [1, 0]


def test_invalid_json_line(tasks, tmp_path):
    path = write_jsonl(tmp_path / "sst2" / "validation.jsonl", SST2_ROWS)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = '{"sentence": "broken", "label": 1,\n'
    path.write_text("".join(lines), encoding="utf-8")
    data_error(tasks["sst2"], "validation", tmp_path, str(path), "line 2", "invalid JSON")


def test_json_line_not_an_object(tasks, tmp_path):
    path = tmp_path / "sst2" / "validation.jsonl"
    write_jsonl(path, SST2_ROWS)
    path.write_text(path.read_text(encoding="utf-8") + '["a", 1]\n', encoding="utf-8")
    data_error(tasks["sst2"], "validation", tmp_path, str(path), f"line {len(SST2_ROWS) + 1}", "list")


@pytest.mark.parametrize("gz", [False, True])
def test_non_utf8_jsonl(tasks, tmp_path, gz):
    raw = b'{"sentence": "caf\xe9", "label": 1, "idx": 0}\n'
    path = tmp_path / "sst2" / ("validation.jsonl" + (".gz" if gz else ""))
    path.parent.mkdir()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    data_error(tasks["sst2"], "validation", tmp_path, str(path), "UTF-8")


def test_truncated_gzip(tasks, tmp_path):
    path = write_jsonl(tmp_path / "sst2" / "validation.jsonl.gz", SST2_ROWS * 50, gz=True)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    data_error(tasks["sst2"], "validation", tmp_path, str(path), "cannot read")


def test_not_gzip(tasks, tmp_path):
    path = tmp_path / "sst2" / "validation.jsonl.gz"
    path.parent.mkdir()
    path.write_text("plain text\n", encoding="utf-8")
    data_error(tasks["sst2"], "validation", tmp_path, str(path))


def test_non_utf8_position_is_right(tasks, tmp_path):
    lines = [json.dumps({"sentence": f"sentence number {i:05d} " + "x" * 40, "label": i % 2, "idx": i}) + "\n"
             for i in range(600)]
    raw = "".join(lines).encode("utf-8")
    line_no = 400
    offset = len("".join(lines[: line_no - 1]).encode("utf-8")) + 20
    raw = raw[:offset] + b"\xff" + raw[offset:]
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "validation.jsonl").write_bytes(raw)
    message = data_error(tasks["sst2"], "validation", tmp_path, "UTF-8")
    assert f"byte offset {offset}" in message or f"line {line_no}" in message


def test_lone_surrogate_is_a_data_error(tasks, tmp_path):
    path = tmp_path / "sst2" / "validation.jsonl"
    path.parent.mkdir()
    path.write_text('{"sentence": "ok", "label": 1, "idx": 0}\n'
                    '{"sentence": "broken emoji \\ud83d here", "label": 0, "idx": 1}\n', encoding="utf-8")
    data_error(tasks["sst2"], "validation", tmp_path, "example 1", "field 'sentence'")


def test_tsv_missing_column(tasks, tmp_path):
    path = write_tsv(tmp_path / "sst2" / "dev.tsv", ["text", "label"], [["a", 1]])
    data_error(tasks["sst2"], "validation", tmp_path, str(path), "missing TSV column", "sentence", "found text, label")


def test_tsv_label_not_a_label_name(tasks, tmp_path):
    records = mnli_records(MNLI_ROWS)
    records[1][-1] = "-"
    path = write_tsv(tmp_path / "mnli" / "dev_matched.tsv", MNLI_HEADER, records)
    data_error(tasks["mnli"], "validation_matched", tmp_path, str(path), "row 2", "'-'", "entailment")


def test_tsv_label_id_out_of_range(tasks, tmp_path):
    write_tsv(tmp_path / "sst2" / "dev.tsv", ["sentence", "label"], [["a", 1], ["b", 7]])
    data_error(tasks["sst2"], "validation", tmp_path, "example 1", "field 'label'", "outside 0..1")


def test_tsv_short_row(tasks, tmp_path):
    path = tmp_path / "sst2" / "dev.tsv"
    path.parent.mkdir()
    path.write_text("sentence\tlabel\ngood\t1\nno label column\n", encoding="utf-8")
    data_error(tasks["sst2"], "validation", tmp_path)


def test_tsv_non_utf8(tasks, tmp_path):
    path = tmp_path / "sst2" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    data_error(tasks["sst2"], "validation", tmp_path, str(path), "UTF-8")


def test_tsv_without_tsv_columns(tasks, tmp_path):
    spec = dataclasses.replace(tasks["sst2"], dataset=dataclasses.replace(tasks["sst2"].dataset, tsv_columns={}))
    path = write_tsv(tmp_path / "sst2" / "dev.tsv", ["sentence", "label"], [["a", 1]])
    data_error(spec, "validation", tmp_path, str(path), "tsv_columns")


def squad_with(tmp_path: Path, rows) -> Path:
    write_jsonl(tmp_path / "squad" / "validation.jsonl", rows)
    return tmp_path


def test_squad_answer_start_must_match_context(tasks, tmp_path):
    rows = [json.loads(json.dumps(r)) for r in SQUAD_ROWS]
    rows[1]["answers"]["answer_start"] = [rows[1]["answers"]["answer_start"][0] + 1]
    data_error(tasks["squad"], "validation", squad_with(tmp_path, rows),
               "example 1", "field 'answers.answer_start'", "American football game")


def test_squad_answer_start_count_must_match(tasks, tmp_path):
    rows = [json.loads(json.dumps(r)) for r in SQUAD_ROWS]
    rows[0]["answers"]["answer_start"] = rows[0]["answers"]["answer_start"][:1]
    data_error(tasks["squad"], "validation", squad_with(tmp_path, rows), "example 0", "answers.answer_start")


def test_squad_answers_must_be_non_empty(tasks, tmp_path):
    rows = [json.loads(json.dumps(r)) for r in SQUAD_ROWS]
    rows[3]["answers"] = {"text": [], "answer_start": []}
    data_error(tasks["squad"], "validation", squad_with(tmp_path, rows), "example 3", "field 'answers.text'")


def test_squad_duplicate_ids(tasks, tmp_path):
    rows = [json.loads(json.dumps(r)) for r in SQUAD_ROWS]
    rows[2]["id"] = "q1"
    data_error(tasks["squad"], "validation", squad_with(tmp_path, rows), "example 2", "field 'id'", "'q1'")


def test_squad_json_bad_offset_is_caught(tasks, tmp_path):
    doc = squad_document(SQUAD_ROWS)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text(json.dumps(doc), encoding="utf-8")
    data_error(tasks["squad"], "validation", tmp_path, "example 0", "answers.answer_start")


@pytest.mark.parametrize("content,needle", [('{"data": [{"title": "x"}]}', "SQuAD format"),
                                            ('{"data": [', "invalid JSON"),
                                            ('[1, 2]', "SQuAD format")])
def test_squad_json_malformed(tasks, tmp_path, content, needle):
    path = tmp_path / "squad" / "dev-v1.1.json"
    path.parent.mkdir()
    path.write_text(content, encoding="utf-8")
    data_error(tasks["squad"], "validation", tmp_path, str(path), needle)


def test_triviaqa_answers_must_be_strings(tasks, tmp_path):
    write_jsonl(tmp_path / "trivia_qa" / "validation.jsonl",
                [{"question": "q", "answer": {"aliases": ["a"]}}, {"question": "r", "answer": {"aliases": [1]}}])
    data_error(tasks["triviaqa"], "validation", tmp_path, "example 1", "field 'answer.aliases'")


def test_validate_rows_directly(tasks):
    spec = tasks["sst2"]
    D.validate_rows(spec, [dict(r) for r in SST2_ROWS], "here")  # valid: no error
    with pytest.raises(DataError, match=r"^here: example 0: field 'sentence'"):
        D.validate_rows(spec, [{"label": 0, "idx": 0}], "here")


# ---------------------------------------------------------------------------------------
# hub: fail fast, and say what to do
@pytest.fixture
def unknown_hub_spec(tasks):
    spec = tasks["sst2"]
    return dataclasses.replace(spec, dataset=dataclasses.replace(
        spec.dataset, hub="benchmark-tests/surely-not-cached-7f3a", config=None))


def test_hub_offline_fails_fast(unknown_hub_spec, monkeypatch):
    pytest.importorskip("datasets")  # import cost is paid once, outside the timed call
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(HubUnavailable) as info:
        D.load_split(unknown_hub_spec, "validation", "hub")
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, f"took {elapsed:.1f} s"
    message = str(info.value)
    assert "--data" in message and "HF_HUB_OFFLINE" in message
    assert "benchmark-tests/surely-not-cached-7f3a" in message
    assert "\n" not in message


def test_a_local_only_task_asked_for_from_the_hub_says_to_pass_data(tasks, monkeypatch):
    spec = tasks["sst2"]
    local_only = dataclasses.replace(spec, name="mine", dataset=dataclasses.replace(spec.dataset, hub=None))
    for online in (True, False):
        with pytest.raises(DataError, match=r"^task mine has no dataset on the hub .*--data <dir> holding sst2/"):
            D.load_split(local_only, "validation", "hub", hub=D.HubAccess(online))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline, --data hub falls back to the sample suite, saying why
    source, why = D.choose_source("hub", [local_only], D.HubAccess(False, "HF_HUB_OFFLINE is set"))
    assert source == "sample" and "mine (local data only)" in why


def test_hub_unreachable_fails_fast(tasks, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert not D.hub_offline()
    start = time.monotonic()
    with pytest.raises(HubUnavailable) as info:
        D.load_split(tasks["sst2"], "validation", "hub")
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, f"took {elapsed:.1f} s"
    message = str(info.value)
    assert "--data" in message and "nyu-mll/glue" in message and "sst2" in message
    assert isinstance(info.value, DataError) and isinstance(info.value, UserError)


def test_hub_probe_is_bounded_when_connect_hangs(monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(10)
        raise OSError("released")

    monkeypatch.setattr(D.socket, "create_connection", hang)
    try:
        start = time.monotonic()
        assert D.hub_reachable(timeout=0.2) is False
        assert time.monotonic() - start < 1.0
    finally:
        release.set()


def test_hub_probe_reads_endpoint(monkeypatch):
    seen = []

    class Conn:
        def close(self):
            pass

    def fake(address, timeout):
        seen.append(address)
        return Conn()

    monkeypatch.setattr(D.socket, "create_connection", fake)
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080")
    assert D.hub_reachable(timeout=1) is True
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example")
    assert D.hub_reachable(timeout=1) is True
    assert seen == [("mirror.example", 8080), ("hub.example", 443)]


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("YES", True), ("on", True),
                                            ("0", False), ("", False), ("false", False)])
def test_hub_offline_values(monkeypatch, value, expected):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert D.hub_offline() is expected


# ---------------------------------------------------------------------------------------
# real data (../shared/data)
@pytest.fixture(scope="module")
def real(tasks):
    if not HAS_DATA:
        pytest.skip(f"{SHARED_DATA} is absent or partial")
    cache = {}

    def load(name, split):
        if (name, split) not in cache:
            cache[name, split] = D.load_split(tasks[name], split, str(SHARED_DATA))
        return cache[name, split]

    return load


@needs_data
def test_real_sst2_validation(real):
    split = real("sst2", "validation")
    assert len(split.rows) == 872 and split.info.num_examples == 872
    assert Counter(r["label"] for r in split.rows) == {0: 428, 1: 444}
    assert [r["idx"] for r in split.rows] == list(range(872))
    assert split.info.source == "local"


@needs_data
def test_real_mnli_matched(real, tasks):
    split = real("mnli", "validation_matched")
    assert len(split.rows) == 9815
    assert Counter(r["label"] for r in split.rows) == {0: 3479, 1: 3123, 2: 3213}
    again = D.load_split(tasks["mnli"], "validation_matched", str(SHARED_DATA))
    assert again.info.fingerprint == split.info.fingerprint == D.content_fingerprint(split.rows)
    assert again.rows == split.rows and again.rows is not split.rows


@needs_data
def test_real_squad_validation_spans(real, tasks):
    split = real("squad", "validation")
    assert len(split.rows) == 10570
    assert len({r["id"] for r in split.rows}) == 10570
    answers = 0
    for r in split.rows:  # independent of validate_rows: every answer_start points at its text
        for text, start in zip(r["answers"]["text"], r["answers"]["answer_start"], strict=True):
            assert r["context"][start:start + len(text)] == text, r["id"]
            answers += 1
    assert answers == 34726


@needs_data
def test_real_sst2_as_tsv_gives_same_fingerprint(real, tasks, tmp_path):
    split = real("sst2", "validation")
    assert not any("\t" in r["sentence"] or "\n" in r["sentence"] for r in split.rows)
    write_tsv(tmp_path / "sst2" / "dev.tsv", ["sentence", "label"], [[r["sentence"], r["label"]] for r in split.rows])
    tsv = D.load_split(tasks["sst2"], "validation", str(tmp_path))
    assert tsv.info.fingerprint == split.info.fingerprint


@needs_data
def test_real_mnli_as_glue_tsv_gives_same_fingerprint(real, tasks, tmp_path):
    rows = real("mnli", "validation_matched").rows[:2000]  # a prefix keeps the test fast; idx stays the row number
    write_tsv(tmp_path / "mnli" / "dev_matched.tsv", MNLI_HEADER, mnli_records(rows))
    tsv = D.load_split(tasks["mnli"], "validation_matched", str(tmp_path))
    assert tsv.info.fingerprint == D.content_fingerprint(rows)


@needs_data
def test_real_squad_as_original_json_gives_same_fingerprint(real, tasks, tmp_path):
    all_rows = real("squad", "validation").rows
    titles = list(dict.fromkeys(r["title"] for r in all_rows))[:4]  # the first four articles keep it fast
    rows = [r for r in all_rows if r["title"] in titles]
    assert 1000 < len(rows) < len(all_rows)
    (tmp_path / "squad").mkdir()
    (tmp_path / "squad" / "dev-v1.1.json").write_text(json.dumps(squad_document(rows)), encoding="utf-8")
    original = D.load_split(tasks["squad"], "validation", str(tmp_path))
    assert original.info.fingerprint == D.content_fingerprint(rows)
