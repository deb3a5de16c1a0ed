"""Adapter plugins: a broken one (import fails, not a class, contract not met) is a warning in
`bench models` and a one-line error naming its package when used; the rest keeps working."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from benchmark.cli import main

GOOD = '''
from dataclasses import dataclass

from benchmark.models.base import Adapter, Fitted, option


class Good(Adapter):
    name = "good"
    kinds = frozenset({"classification"})

    def fit(self, task, train):
        return Fitted(mode="zero-shot", weights="none")

    def predict(self, task, batch):
        return [0] * len(batch)


class Described(Good):
    description = "counts the word 'good'; a floor for sentiment tasks"


class BadDescription(Good):
    description = 42


class NoKinds(Adapter):
    name = "nokinds"

    def fit(self, task, train):
        return Fitted(mode="zero-shot", weights="none")

    def predict(self, task, batch):
        return [0] * len(batch)


class UnknownKind(Good):
    kinds = frozenset({"translation"})


class NoModes(Good):
    modes = ()


class PlainOptions(Good):
    class Options:  # forgot @dataclass
        C = 1.0


class NoDefault(Good):
    @dataclass(frozen=True)
    class Options:
        C: float


class BadDefault(Good):
    @dataclass(frozen=True)
    class Options:
        C: float = option("abc", "inverse regularisation")


class Abstract(Adapter):
    name = "abstract"
    kinds = frozenset({"classification"})


def not_a_class():
    return 1
'''


@pytest.fixture
def install(tmp_path, monkeypatch):
    """install(package, {entry name: 'module:Class'}): a dist-info on sys.path, as pip would leave it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "plugmod.py").write_text(GOOD)
    (site / "plugbroken.py").write_text("import this_module_does_not_exist  # noqa\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delitem(sys.modules, "plugmod", raising=False)
    monkeypatch.delitem(sys.modules, "plugbroken", raising=False)

    def _install(package: str, entries: dict[str, str], version: str = "1.0") -> None:
        info = site / f"{package.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
        (info / "entry_points.txt").write_text(f"[benchmark.adapters]\n{lines}")

    yield _install
    sys.modules.pop("plugmod", None)


def _models(capsys, *argv: str) -> tuple[int, str, list[str]]:
    code = main(["models", *argv])
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def _run(capsys, tmp_path: Path, model: str) -> tuple[int, list[str]]:
    results = tmp_path / f"results-{model}"  # fresh per model: an error must leave no folder behind
    code = main(["run", "--model", model, "--data", "sample", "--tasks", "sst2", "--results-dir", str(results),
                 "--quiet"])
    assert not results.exists() or code == 0
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


BROKEN = {  # entry name: (target, words the one-line error must hold)
    "importfails": ("plugbroken:Thing", "ModuleNotFoundError: No module named 'this_module_does_not_exist'"),
    "notaclass": ("plugmod:not_a_class", "not a benchmark Adapter subclass"),
    "missing": ("plugmod:Nowhere", "AttributeError"),
    "nokinds": ("plugmod:NoKinds", "`kinds` must be a non-empty frozenset"),
    "unknownkind": ("plugmod:UnknownKind", "task kinds among classification"),
    "nomodes": ("plugmod:NoModes", "`modes` must be a non-empty tuple"),
    "plainoptions": ("plugmod:PlainOptions", "`Options` is not a dataclass"),
    "nodefault": ("plugmod:NoDefault", "option 'C' has no default"),
    "abstract": ("plugmod:Abstract", "does not define fit, predict"),
    "baddefault": ("plugmod:BadDefault", "option 'C' defaults to 'abc', not a float"),
    "baddescription": ("plugmod:BadDescription", "`description` must be a line of text (got 42)"),
}


def test_models_lists_what_loads_and_warns_once_per_broken_plugin(install, capsys):
    install("my-plugins", {"good": "plugmod:Good", **{name: target for name, (target, _) in BROKEN.items()}})
    code, out, err = _models(capsys)
    assert code == 0
    assert "good" in out and "majority" in out and "causal" in out
    assert len(err) == len(BROKEN), err
    for name, (target, cause) in BROKEN.items():
        line = next(line for line in err if f"'{name}'" in line)
        assert line.startswith(f"warning: skipped adapter plugin '{name}' ({target}) from my-plugins==1.0: ")
        assert cause in line and line.endswith("fix it or uninstall my-plugins")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_using_a_broken_plugin_is_one_line_naming_package_entry_point_and_cause(name, install, capsys, tmp_path):
    target, cause = BROKEN[name]
    install("my-plugins", {name: target})
    for code, lines in (_models(capsys, name)[::2], _run(capsys, tmp_path, name)):
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith(f"error: adapter plugin '{name}' ({target}) from my-plugins==1.0: ")
        assert cause in lines[0]


def test_a_good_plugin_still_runs_beside_a_broken_one(install, capsys, tmp_path):
    install("my-plugins", {"good": "plugmod:Good", "importfails": "plugbroken:Thing"})
    code, lines = _run(capsys, tmp_path, "good")
    assert code == 0, lines
    assert (tmp_path / "results-good" / "good" / "sst2.json").exists()


# --- names: two packages, one name; a plugin named like a known model ---------------------------
def test_a_name_two_packages_register_is_an_error_only_where_it_is_used(install, capsys, tmp_path):
    install("first-pkg", {"twice": "plugmod:Good", "good": "plugmod:Good"})
    install("second-pkg", {"twice": "plugmod:Good"}, version="2.0")
    code, lines = _run(capsys, tmp_path, "majority")
    assert code == 0, lines
    code, out, err = _models(capsys)
    assert code == 0 and "good" in out and "majority" in out
    assert len(err) == 1 and err[0].startswith("warning: skipped adapter plugin 'twice' "), err
    for code, lines in (_models(capsys, "twice")[::2], _run(capsys, tmp_path, "twice")):
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith("error: adapter plugin 'twice' ")
        assert "first-pkg==1.0" in lines[0] and "second-pkg==2.0" in lines[0] and "uninstall one" in lines[0]


@pytest.mark.parametrize("name, clash", [("gpt2", "a known model (run by causal)"),
                                         ("minilm", "an alias of sentence-transformers/all-MiniLM-L6-v2"),
                                         ("encoder", "a built-in adapter"), ("majority", "a built-in adapter")])
def test_a_plugin_named_like_a_known_model_is_refused_aloud(name, clash, install, capsys, tmp_path):
    install("shadow-pkg", {name: "plugmod:Good"})
    code, out, err = _models(capsys)
    assert code == 0 and "shadow-pkg" not in out
    assert err == [f"warning: skipped adapter plugin '{name}' (plugmod:Good) from shadow-pkg==1.0: '{name}' is "
                   f"{clash}, so the plugin would never run; rename its entry point"]
    code, out, err = _models(capsys, name)
    assert code == 0 and "plugin adapter" not in out and len(err) == 1 and f"'{name}' is {clash}" in err[0]
    assert _models(capsys, "causal")[2] == []  # the warning is for the name it concerns
    code, lines = _run(capsys, tmp_path, "majority")
    assert code == 0, lines


def test_a_plugin_describes_itself_with_a_description_class_attribute(install, capsys):
    install("my-plugins", {"good": "plugmod:Good", "described": "plugmod:Described"})
    code, out, err = _models(capsys)
    assert code == 0 and err == []
    assert re.search(r"^described .*counts the word 'good'", out, re.M)
    assert re.search(r"^good .*plugin adapter", out, re.M)  # none set: the registry's words
    assert "majority class of the train split" in out       # a built-in keeps its text
    assert _models(capsys, "described")[1].startswith("described: counts the word 'good'; a floor for sentiment")


# --- `bench models | head`: a reader that goes away ------------------------------------------------
def test_a_closed_stdout_pipe_exits_quietly():
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "models"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=root)
    proc.stdout.close()  # as `head` does once it has its lines: here before the first one
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141) and err == "", err


def test_a_plugin_adapter_on_local_data_never_asks_the_hub(install, capsys, tmp_path, monkeypatch):
    from benchmark import data

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(data, "hub_access", no_hub)
    install("my-plugins", {"good": "plugmod:Good"})
    code, err = _run(capsys, tmp_path, "good")
    assert code == 0, err
