"""Result records: JSON round trip, atomic writes, safe result paths, strict loading, settings keys."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from benchmark import results as R  # noqa: E402
from benchmark.errors import UserError  # noqa: E402
from benchmark.results import DataInfo, Efficiency, Result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def make_result(**changes) -> Result:
    base = Result(
        task="mnli", task_version=1, suite="glue", kind="classification", split="validation_matched",
        column="MNLI-m", model="google/t5-efficient-tiny", adapter="t5", mode="zero_shot", weights="pretrained",
        data=DataInfo(source="local", location="/data", fingerprint="ab" * 32, num_examples=9815),
        metrics={"accuracy": 81.25}, ci95={"accuracy": [80.5, 82.0]},
        efficiency=Efficiency(num_parameters=15_600_000, trainable_parameters=0,
                              latency_ms={"p50": 3.5, "p95": 7.25}, latency_samples=100,
                              throughput_per_s=812.5, batch_size=64, eval_seconds=12.0, encode_seconds=1.5,
                              train_seconds=None, peak_memory_mb=512.0, device="cuda:0", dtype="bfloat16"),
        provenance={"settings_key": "0123456789abcdef", "seed": 0, "nested": {"list": [1, "two", None]},
                    "unicode": "naïve ☃"},
        note="a note",
    )
    return dataclasses.replace(base, **changes)


def user_error(path: Path) -> str:
    with pytest.raises(UserError) as info:
        R.load(path)
    message = str(info.value)
    assert str(path) in message, message
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------
# round trip
def test_round_trip(tmp_path):
    result = make_result()
    path = tmp_path / "m" / "mnli-validation_matched.json"
    R.save(result, path)
    loaded = R.load(path)
    assert loaded == result
    assert isinstance(loaded.data, DataInfo) and isinstance(loaded.efficiency, Efficiency)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["schema"] == R.SCHEMA == 1
    assert raw["data"]["fingerprint"] == "ab" * 32
    assert "naïve ☃" in path.read_text(encoding="utf-8")  # stored as text, not \u escapes


def test_round_trip_defaults(tmp_path):
    result = Result(task="sst2", task_version=1, suite="glue", kind="classification", split="validation",
                    column="SST-2", model="majority", adapter="majority", mode="zero_shot", weights="none",
                    data=DataInfo("sample", "builtin", "0" * 64, 300))
    path = tmp_path / "r.json"
    R.save(result, path)
    assert R.load(path) == result
    assert R.load(path).status == "ok" and R.load(path).efficiency == Efficiency()


def test_round_trip_detects_changes(tmp_path):
    path = tmp_path / "r.json"
    R.save(make_result(), path)
    assert R.load(path) != make_result(metrics={"accuracy": 81.26})


def test_missing_efficiency_is_default(tmp_path):
    d = make_result().to_dict()
    del d["efficiency"]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    assert R.load(path).efficiency == Efficiency()


@pytest.mark.parametrize("changes,real", [
    ({}, True),
    ({"data": DataInfo("sample", "builtin", "0" * 64, 10)}, False),
    ({"weights": "random"}, False),
    ({"status": "unsupported"}, False),
    ({"weights": "trained"}, True),
])
def test_is_real(changes, real):
    assert make_result(**changes).is_real is real


# ---------------------------------------------------------------------------------------
# atomic writes
def test_write_atomic_writes_and_leaves_no_temp(tmp_path):
    path = tmp_path / "deep" / "er" / "file.json"
    R.write_atomic(path, "first ☃\n")
    assert path.read_text(encoding="utf-8") == "first ☃\n"
    R.write_atomic(path, "second\n")
    assert path.read_text(encoding="utf-8") == "second\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.json"]


def test_write_atomic_replaces_via_rename(tmp_path, monkeypatch):
    path = tmp_path / "file.json"
    R.write_atomic(path, "old\n")
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        calls.append((src, dst))
        assert src.parent == dst.parent == tmp_path  # same folder: the rename is atomic
        assert src.read_text(encoding="utf-8") == "new\n"  # complete before the rename
        assert dst.read_text(encoding="utf-8") == "old\n"  # the old file is whole until then
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    R.write_atomic(path, "new\n")
    assert len(calls) == 1 and calls[0][1] == path
    assert path.read_text(encoding="utf-8") == "new\n"


def test_write_atomic_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "file.json"
    R.write_atomic(path, "old\n")

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        R.write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json"]


def test_write_atomic_failure_during_write(tmp_path, monkeypatch):
    path = tmp_path / "file.json"
    R.write_atomic(path, "old\n")

    def boom(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        R.write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json"]


def test_save_failure_keeps_old_result(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    R.save(make_result(), path)
    monkeypatch.setattr(os, "replace", lambda s, d: (_ for _ in ()).throw(OSError("nope")))
    with pytest.raises(OSError):
        R.save(make_result(metrics={"accuracy": 1.0}), path)
    assert R.load(path) == make_result()
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_write_atomic_respects_umask(tmp_path, umask):
    # mkstemp creates 0600 files; a published result must get the mode a plain write would get
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x", encoding="utf-8")
        atomic = tmp_path / "atomic.txt"
        R.write_atomic(atomic, "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(atomic.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


def test_write_atomic_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    R.write_atomic(path, b"\x00\xffraw")
    assert path.read_bytes() == b"\x00\xffraw"
    R.write_atomic(path, "text ☃")
    assert path.read_bytes() == "text ☃".encode("utf-8")


# ---------------------------------------------------------------------------------------
# model slugs and result paths
def test_slug_of_hub_ids():
    assert R.model_slug("google/t5-efficient-tiny") == "google--t5-efficient-tiny"
    assert R.model_slug("t5-small") == "t5-small"
    assert R.model_slug("majority") == "majority"
    assert R.model_slug("  google/t5-efficient-tiny \n") == "google--t5-efficient-tiny"


def test_slug_of_local_paths(tmp_path):
    a = tmp_path / "runs" / "a" / "checkpoint"
    b = tmp_path / "runs" / "b" / "checkpoint"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    sa, sb = R.model_slug(str(a)), R.model_slug(str(b))
    assert re.fullmatch(r"checkpoint-[0-9a-f]{8}", sa), sa
    assert re.fullmatch(r"checkpoint-[0-9a-f]{8}", sb), sb
    assert sa != sb
    assert sa == R.model_slug(str(a))  # stable
    assert sa.endswith(hashlib.sha256(str(a).encode()).hexdigest()[:8])
    assert re.fullmatch(r"ckpt-[0-9a-f]{8}", R.model_slug("./ckpt"))
    assert re.fullmatch(r"ckpt-[0-9a-f]{8}", R.model_slug("~/models/ckpt"))


def test_slug_of_existing_relative_path(tmp_path, monkeypatch):
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert re.fullmatch(r"model-[0-9a-f]{8}", R.model_slug("org/model"))  # a folder here, not a hub id


HOSTILE = ["../../etc/passwd", "a/../../b", "../..", "..", ".", "...", "/", "~", "", "   ", "a b", "a|b",
           "a\nb", "a\x00b", "модель/тест", "名前", "😀", "C:\\Windows\\System32", "a/b/../../..", "-rf",
           ".hidden", "x" * 500, "a/" * 50 + "b", "$(rm -rf ~)", "a;b&&c", "%2e%2e%2f", "con", "a:b*c?d"]


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n)[:30] for n in HOSTILE])
def test_hostile_model_names_stay_inside_results_dir(tmp_path, name):
    results = tmp_path / "results"
    slug = R.model_slug(name)
    assert SAFE.match(slug), slug
    assert slug not in ("", ".", "..") and not slug.startswith((".", "-"))
    assert len(slug) <= 100
    for single in (True, False):
        path = R.result_path(results, name, "mnli", "validation_matched", single)
        assert path.parent.parent == results.resolve()
        assert path.parent.name == slug
        assert path.name == ("mnli.json" if single else "mnli-validation_matched.json")


def test_slugs_of_different_hostile_names_differ():
    names = ["a b", "a|b", "a\nb", "a_b", "a/b", "../a b", "модель", "名前", "", "..."]
    slugs = [R.model_slug(n) for n in names]
    assert len(set(slugs)) == len(names), dict(zip(names, slugs))


@pytest.mark.parametrize("task,split", [("../../x", "validation"), ("sst2", "../../../etc/passwd"),
                                        ("..", ".."), ("a/b", "c/d")])
def test_hostile_task_and_split_stay_inside(tmp_path, task, split):
    results = tmp_path / "results"
    for single in (True, False):
        path = R.result_path(results, "m", task, split, single)
        assert path.parent == (results / "m").resolve()
        assert SAFE.match(path.name)


def test_result_path_refuses_symlink_escape(tmp_path):
    results = tmp_path / "results"
    outside = tmp_path / "outside"
    results.mkdir()
    outside.mkdir()
    (results / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UserError, match="escapes the results directory"):
        R.result_path(results, "evil", "sst2", "validation", True)


def test_result_path_shape(tmp_path):
    path = R.result_path(tmp_path, "google/t5-efficient-tiny", "sst2", "validation", True)
    assert path == (tmp_path / "google--t5-efficient-tiny" / "sst2.json").resolve()
    assert R.result_path(tmp_path, "bert-base-uncased", "sst2", "validation", True, "auto") == \
        (tmp_path / "bert-base-uncased" / "sst2.json").resolve()


def test_explicit_modes_of_one_model_do_not_replace_each_other(tmp_path):
    paths = {mode: R.result_path(tmp_path, "bilstm-elmo", "sst2", "validation", True, mode)
             for mode in ("auto", "frozen", "finetune")}
    assert len(set(paths.values())) == 3
    assert paths["finetune"] == (tmp_path / "bilstm-elmo.finetune" / "sst2.json").resolve()
    hostile = R.result_path(tmp_path, "m", "sst2", "validation", True, "../../x")  # a mode is slugged, never a path
    assert hostile.parent.parent == tmp_path.resolve()


# ---------------------------------------------------------------------------------------
# strict loading
def test_load_corrupt_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json", encoding="utf-8")
    assert "not a valid result file" in user_error(path)


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.update(ci95=None), "ci95 is None, expected dict"),
    (lambda d: d.update(metrics=[1, 2]), "metrics is [1, 2], expected dict"),
    (lambda d: d["metrics"].update(accuracy="high"), "metrics.accuracy is 'high', expected a number"),
    (lambda d: d["data"].update(num_examples="872"), "data.num_examples is '872', expected int"),
    (lambda d: d["data"].update(fingerprint=None), "data.fingerprint is None, expected str"),
    (lambda d: d["efficiency"].update(latency_ms=[1, 2]), "efficiency.latency_ms is [1, 2], expected dict or null"),
    (lambda d: d["efficiency"].update(num_parameters="2M"), "efficiency.num_parameters is '2M', expected int or null"),
    (lambda d: d.update(task_version="2"), "task_version is '2', expected int"),
    (lambda d: d.update(model=7), "model is 7, expected str"),
])
def test_a_field_of_the_wrong_type_is_a_one_line_error_not_a_renderer_crash(tmp_path, edit, needle):
    import json

    path = tmp_path / "r.json"
    data = make_result().to_dict()
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    assert needle in user_error(path)


def test_load_partial_json(tmp_path):
    path = tmp_path / "r.json"
    R.save(make_result(), path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    user_error(path)


def test_load_empty_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("", encoding="utf-8")
    user_error(path)


def test_load_newer_schema(tmp_path):
    d = make_result().to_dict()
    d["schema"] = R.SCHEMA + 1
    d["future_field"] = {"x": 1}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    message = user_error(path)
    assert f"schema {R.SCHEMA + 1}" in message


@pytest.mark.parametrize("mutate", [
    lambda d: [1, 2, 3],
    lambda d: "a string",
    lambda d: {k: v for k, v in d.items() if k != "schema"},
    lambda d: {**d, "unknown": 1},
    lambda d: {k: v for k, v in d.items() if k != "data"},
    lambda d: {k: v for k, v in d.items() if k != "task"},
    lambda d: {**d, "data": "local"},
    lambda d: {**d, "data": {**d["data"], "extra": 1}},
    lambda d: {**d, "efficiency": {"warp_factor": 9}},
], ids=["list", "string", "no-schema", "unknown-field", "no-data", "no-task", "data-str", "data-extra",
        "efficiency-extra"])
def test_load_malformed_records(tmp_path, mutate):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(mutate(make_result().to_dict())), encoding="utf-8")
    user_error(path)


def test_load_non_utf8_and_missing(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b'{"task": "caf\xe9"}')
    user_error(path)
    user_error(tmp_path / "absent.json")


# ---------------------------------------------------------------------------------------
# iterating a results folder
def test_iter_results(tmp_path):
    results = tmp_path / "results"
    items = [make_result(model="google/t5-efficient-tiny", task="sst2", split="validation"),
             make_result(model="google/t5-efficient-tiny", task="mnli", split="validation_matched"),
             make_result(model="majority", task="sst2", split="validation")]
    for r in items:
        R.save(r, R.result_path(results, r.model, r.task, r.split, r.task == "sst2"))
    (results / "majority" / ".sst2.json.abc.tmp").write_text("{partial", encoding="utf-8")  # a crashed write
    (results / "README.md").write_text("not a result", encoding="utf-8")
    (results / "majority" / "notes.txt").write_text("not a result", encoding="utf-8")
    (results / "summary.json").write_text("{}", encoding="utf-8")  # only <model>/<file>.json are results
    (results / "majority" / "archive").mkdir()
    (results / "majority" / "archive" / "old.json").write_text("{}", encoding="utf-8")
    found = list(R.iter_results(results))
    assert found == [items[1], items[0], items[2]]  # sorted by path: folder, then file name


def test_iter_results_empty_and_missing(tmp_path):
    assert list(R.iter_results(tmp_path / "absent")) == []
    assert list(R.iter_results(tmp_path)) == []


def test_iter_results_corrupt_file_is_an_error(tmp_path):
    R.save(make_result(), tmp_path / "m" / "a.json")
    bad = tmp_path / "m" / "b.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(UserError) as info:
        list(R.iter_results(tmp_path))
    assert str(bad) in str(info.value)


# ---------------------------------------------------------------------------------------
# settings keys
def test_settings_key_stable_and_order_insensitive():
    a = {"mode": "zero_shot", "limit": 100, "seed": 0, "adapter": {"batch": 64, "dtype": "bf16"}}
    b = {"adapter": {"dtype": "bf16", "batch": 64}, "seed": 0, "limit": 100, "mode": "zero_shot"}
    key = R.settings_key(a)
    assert key == R.settings_key(b)
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    expected = hashlib.sha256(json.dumps(a, sort_keys=True).encode()).hexdigest()[:16]
    assert key == expected


@pytest.mark.parametrize("change", [{"limit": 101}, {"seed": 1}, {"mode": "finetune"}, {"extra": None},
                                    {"adapter": {"batch": 64, "dtype": "fp32"}}, {"limit": "100"}])
def test_settings_key_changes_with_settings(change):
    a = {"mode": "zero_shot", "limit": 100, "seed": 0, "adapter": {"batch": 64, "dtype": "bf16"}}
    assert R.settings_key(a) != R.settings_key({**a, **change})


def test_settings_key_same_in_another_process():
    settings = {"b": [1, 2], "a": {"y": Path("/x"), "x": 1.5}, "c": None}
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from benchmark.results import settings_key; "
            "print(settings_key({'c': None, 'a': {'x': 1.5, 'y': Path('/x')}, 'b': [1, 2]}))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, timeout=30)
    assert out.stdout.strip() == R.settings_key(settings)


def test_stale_temporary_files_of_killed_writers_are_swept(tmp_path):
    import time

    from benchmark.evaluator import RunConfig, run
    from benchmark.models.majority import MajorityAdapter
    from benchmark.tasks import discover

    folder = tmp_path / "majority"
    folder.mkdir()
    stale, live = folder / ".sst2.json.k1ll3d.tmp", folder / ".qqp.json.wr1t1ng.tmp"
    stale.write_text("{half", encoding="utf-8")
    live.write_text("{half", encoding="utf-8")
    old = time.time() - 2 * R.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    keep = folder / "notes.tmp"  # not ours: left alone however old
    keep.write_text("x", encoding="utf-8")
    os.utime(keep, (old, old))
    run(MajorityAdapter("majority"), [discover().tasks["sst2"]],
        RunConfig(model="majority", data="sample", results_dir=tmp_path, quiet=True, log=lambda m: None))
    assert not stale.exists() and live.exists() and keep.exists()
    assert (folder / "sst2.json").is_file()
