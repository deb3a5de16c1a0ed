"""Property tests for the loaders and the security boundary: whatever bytes a data file holds,
loading ends in rows or one clear DataError, never another exception; remote code stays off."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from benchmark.data import load_split  # noqa: E402
from benchmark.errors import DataError, ModelError, UserError  # noqa: E402
from benchmark.tasks import discover, parse_task  # noqa: E402

TASKS = discover().tasks
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
rows = st.lists(st.fixed_dictionaries({}, optional={
    "sentence": json_values, "label": json_values, "idx": json_values,
    "premise": json_values, "hypothesis": json_values,
}), max_size=6)


def _load_from(task: str, folder: str, content: bytes, name: str = "validation.jsonl"):
    root = Path(folder)
    (root / TASKS[task].dataset.local).mkdir(parents=True, exist_ok=True)
    (root / TASKS[task].dataset.local / name).write_bytes(content)
    return load_split(TASKS[task], "validation" if task != "mnli" else "validation_matched", str(root))


@FAST
@given(content=st.binary(max_size=400))
def test_any_bytes_give_rows_or_a_data_error(content):
    with tempfile.TemporaryDirectory() as folder:
        try:
            split = _load_from("sst2", folder, content)
        except DataError as exc:
            assert "\n" not in str(exc) and str(exc)
        else:
            assert split.info.num_examples == len(split.rows) > 0


@FAST
@given(data=rows)
def test_any_json_rows_give_valid_rows_or_a_data_error(data):
    content = "".join(json.dumps(r) + "\n" for r in data).encode()
    with tempfile.TemporaryDirectory() as folder:
        try:
            split = _load_from("sst2", folder, content)
        except DataError as exc:
            assert "\n" not in str(exc)
        else:  # whatever got through is usable by every later stage
            spec = TASKS["sst2"]
            for row in split.rows:
                assert isinstance(row["sentence"], str)
                assert 0 <= spec.label_index(row) < len(spec.labels)


@FAST
@given(text=st.text(max_size=300))
def test_any_task_file_text_gives_a_spec_or_a_task_error(text):
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return
    try:
        parse_task(data, "fuzz.yaml")
    except UserError as exc:
        assert str(exc).startswith("fuzz.yaml")


@FAST
@given(template=st.text(alphabet=st.sampled_from(list("{}text!r:0[]._ ab")), max_size=30))
def test_templates_fill_named_fields_only(template):
    """No format-string tricks: a template is refused, or renders exactly as plain substitution of
    {text} (with doubled braces unescaped) -- no attribute, index, conversion or format spec runs."""
    try:
        task = parse_task({**_toy(), "template": template}, "t.yaml")
    except UserError:
        return
    value = "<VALUE>"
    expected = template.replace("{{", "\x00").replace("}}", "\x01").replace("{text}", value) \
        .replace("\x00", "{").replace("\x01", "}")
    assert task.render({"text": value, "label": 0}) == expected


def _toy() -> dict:
    return {"name": "toy", "version": 1, "kind": "classification", "dataset": {"hub": "x", "eval": ["v"]},
            "inputs": ["text"], "label": "label", "labels": ["a", "b"], "metrics": ["accuracy"],
            "template": "{text}"}


def test_remote_code_stays_off_unless_asked(tmp_path):
    """A checkpoint whose config asks for its own Python code is refused without --trust-remote-code."""
    from benchmark.models.hf import resolve_checkpoint

    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "evil", "auto_map": {"AutoConfig": "evil_code.EvilConfig"}}))
    (tmp_path / "evil_code.py").write_text("open('PWNED', 'w').write('x')\n")
    with pytest.raises(ModelError, match="trust-remote-code"):
        resolve_checkpoint(str(tmp_path))
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_cli_does_not_pass_remote_code_by_default():
    from benchmark.cli import _options, build_parser

    args = build_parser().parse_args(["run", "--model", "x"])
    assert "trust_remote_code" not in _options(args)
    args = build_parser().parse_args(["run", "--model", "x", "--trust-remote-code"])
    assert _options(args)["trust_remote_code"] is True
