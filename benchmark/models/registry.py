"""Model name or path -> adapter class, resolved lazily so `bench --help` imports no torch.

Adapters register as 'module:Class' strings; installed packages add more through the
`benchmark.adapters` entry-point group. A broken plugin is reported by name, and only when used or listed;
a plugin named like a known model is refused; a miss lists the valid names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, choices_hint
from .base import Adapter

ENTRY_POINT_GROUP = "benchmark.adapters"


@dataclass(frozen=True)
class AdapterEntry:
    name: str
    target: str            # 'module:Class'
    description: str
    provider: str = "builtin"
    problem: str | None = None  # why the name cannot be used (two packages register it), said on use

    def load(self) -> type[Adapter]:
        """The class, its contract checked here so a broken plugin is one line naming its package, not a
        traceback mid-run. A built-in that fails to import is a bug and raises as it is."""
        if self.problem:
            raise ModelError(self.problem)
        module, _, attr = self.target.partition(":")
        if self.provider == "builtin":
            cls = getattr(importlib.import_module(module), attr)
        else:
            try:
                if not attr:
                    raise ValueError("the entry point must name a class as 'module:Class'")
                cls = getattr(importlib.import_module(module), attr)
            except Exception as exc:  # a third-party plugin's own failure, whatever it is
                raise self._broken(f"{type(exc).__name__}: {exc}") from exc
        problem = contract_problem(cls)
        if problem:
            raise self._broken(problem)
        return cls

    def _broken(self, cause: str) -> ModelError:
        """One line naming the entry point, the package that registers it, the cause and the fix."""
        cause = " ".join(cause.split())
        if self.provider == "builtin":  # a bug in the harness, not the user's to fix
            return ModelError(f"built-in adapter '{self.name}' ({self.target}): {cause}")
        return ModelError(f"adapter plugin '{self.name}' ({self.target}) from {self.provider}: {cause}; "
                          f"fix it or uninstall {self.provider.split('==')[0]}")


def describe(entry: AdapterEntry, cls: type[Adapter]) -> str:
    """What `bench models` says an adapter is: a plugin's own `description` class attribute, where it
    sets one, since the registry knows nothing of it; a built-in's text stays the registry's."""
    text = getattr(cls, "description", None) if entry.provider != "builtin" else None
    return " ".join(text.split()) if isinstance(text, str) and text.strip() else entry.description


def contract_problem(cls: object) -> str | None:
    """What keeps `cls` from being an adapter (the class-level contract of base.Adapter), or None."""
    import dataclasses
    import inspect

    from ..tasks import KINDS
    from .base import MODES, checkable_types, fits, type_names

    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        what = f"the class {cls.__name__}" if isinstance(cls, type) else f"a {type(cls).__name__}"
        return f"the entry point names {what}, not a benchmark Adapter subclass"
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        return "the class sets no `name`; declare name = 'its-name'"
    kinds = getattr(cls, "kinds", None)
    if not isinstance(kinds, (set, frozenset)) or not kinds or not set(kinds) <= set(KINDS):
        got = "none" if kinds is None else repr(kinds)
        return (f"`kinds` must be a non-empty frozenset of task kinds among {', '.join(KINDS)} (got {got}); "
                "declare e.g. kinds = frozenset({'classification'})")
    modes = cls.modes
    if isinstance(modes, str) or not isinstance(modes, (tuple, list)) or not modes or not set(modes) <= set(MODES):
        return (f"`modes` must be a non-empty tuple of modes among {', '.join(MODES)} (got {modes!r}); "
                "declare e.g. modes = ('auto',)")
    options = cls.Options
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        return "`Options` is not a dataclass; decorate it with @dataclass(frozen=True)"
    types = checkable_types(options)
    for f in dataclasses.fields(options):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            return f"option '{f.name}' has no default; declare it with option(default, help)"
        if f.name in types and f.default not in (dataclasses.MISSING, None) and not fits(f.default, types[f.name]):
            return f"option '{f.name}' defaults to {f.default!r}, not a {type_names(types[f.name])}; fix its default"
    description = getattr(cls, "description", None)
    if description is not None and not (isinstance(description, str) and description.strip()):
        return f"`description` must be a line of text (got {description!r})"
    if inspect.isabstract(cls):
        return f"the class does not define {', '.join(sorted(cls.__abstractmethods__))}"
    return None


BUILTIN_ADAPTERS = (
    AdapterEntry("majority", "benchmark.models.majority:MajorityAdapter",
                 "majority class of the train split (classification only): the floor of every GLUE table"),
    AdapterEntry("bilstm", "benchmark.models.lstm:BiLSTMAdapter",
                 "GLUE-paper BiLSTM baseline with ELMo-style character features, trained from scratch"),
    AdapterEntry("bilstm-elmo", "benchmark.models.elmo:ElmoAdapter",
                 "the BiLSTM baseline over a biLM pre-trained on the run's train text (frozen or fine-tuned)"),
    AdapterEntry("encoder", "benchmark.models.encoder:EncoderAdapter",
                 "BERT-style encoders (BERT, DistilBERT, RoBERTa, ...): classification heads and extractive QA"),
    AdapterEntry("text2text", "benchmark.models.text2text:Text2TextAdapter",
                 "T5 and other seq2seq models: every task as text generation (or label ranking)"),
    AdapterEntry("causal", "benchmark.models.causal:CausalAdapter",
                 "decoder-only LMs (Llama, SmolLM, Qwen, GPT-2): choices ranked by log-likelihood, answers "
                 "generated; zero- and few-shot, chat templates"),
)

# Well-known model names and the adapter that runs them; any other checkpoint is resolved from its config.
KNOWN_MODELS = {
    "majority": "majority",
    "bilstm": "bilstm",
    "bilstm-elmo": "bilstm-elmo",
    "bert-base-uncased": "encoder",
    "bert-large-uncased": "encoder",
    "distilbert-base-uncased": "encoder",
    "prajjwal1/bert-tiny": "encoder",
    "prajjwal1/bert-mini": "encoder",
    "roberta-base": "encoder",
    "t5-small": "text2text",
    "t5-base": "text2text",
    "google/t5-efficient-tiny": "text2text",
    "google/flan-t5-small": "text2text",
    "sentence-transformers/all-MiniLM-L6-v2": "encoder",  # offline too: packaged.PACKAGED
    "HuggingFaceTB/SmolLM2-135M-Instruct": "causal",      # offline: the packaged Q4_1 GGUF
    "gpt2": "causal",
}
# Short names for long hub ids; a run records the hub id, so the leaderboard shows one name.
ALIASES = {
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
}
# Adapters that take no checkpoint: their name is the whole model.
CHECKPOINT_FREE = frozenset({"majority", "bilstm", "bilstm-elmo"})


def canonical(model: str) -> str:
    """The hub id behind an alias; any other name unchanged."""
    return ALIASES.get(model, model)


def adapters(entry_points: bool = True) -> dict[str, AdapterEntry]:
    """Every adapter by name (the classes are not loaded); see `scan` for the plugins refused."""
    return scan(entry_points)[0]


def scan(entry_points: bool = True) -> tuple[dict[str, AdapterEntry], list[tuple[str, str]]]:
    """(adapters by name, (name, one-line reason) per plugin refused for its name).

    A plugin named like a built-in adapter, a known model or an alias would never run, so it is
    refused rather than shadowed. A name two packages register stays in the table as an entry whose
    `load` says so: only using that name is an error, every other adapter still works.
    """
    found = {entry.name: entry for entry in BUILTIN_ADAPTERS}
    if not entry_points:
        return found, []
    from importlib.metadata import entry_points as eps

    plugins: dict[str, list[AdapterEntry]] = {}
    for ep in eps(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        provider = f"{dist.name}=={dist.version}" if dist else ep.value
        plugins.setdefault(ep.name, []).append(AdapterEntry(ep.name, ep.value, "plugin adapter", provider))
    refused: list[tuple[str, str]] = []
    for name, entries in plugins.items():
        clash = _name_clash(name)
        if clash:
            refused += [(name, f"adapter plugin '{name}' ({e.target}) from {e.provider}: '{name}' is {clash}, "
                               "so the plugin would never run; rename its entry point") for e in entries]
        elif len(entries) > 1:
            sources = " and ".join(f"from {e.provider} ({e.target})" for e in entries)
            found[name] = AdapterEntry(name, entries[0].target, "plugin adapter",
                                       " and ".join(e.provider for e in entries),
                                       problem=f"adapter plugin '{name}' {sources}: one name registered by "
                                               f"{len(entries)} packages; uninstall one or rename its entry point")
        else:
            found[name] = entries[0]
    return found, refused


def _name_clash(name: str) -> str | None:
    """What a plugin's name already means ('a known model (run by causal)'), or None when it is free."""
    if any(e.name == name for e in BUILTIN_ADAPTERS):
        return "a built-in adapter"
    if name in KNOWN_MODELS:
        return f"a known model (run by {KNOWN_MODELS[name]})"
    if name in ALIASES:
        return f"an alias of {ALIASES[name]}"
    return None


def names_a_checkpoint(model: str) -> bool:
    """Whether running `model` means finding a checkpoint (on the hub, in its cache or on disk): not for
    the checkpoint-free built-ins, nor for a plugin adapter's name, which asks the hub itself if it must."""
    if model in CHECKPOINT_FREE:
        return False
    entry = adapters().get(model)
    return entry is None or entry.provider == "builtin"


def resolve(model: str, *, weights: str = "pretrained", trust_remote_code: bool = False,
            online: bool | None = None) -> AdapterEntry:
    """The adapter for a model name or a local checkpoint path.

    Checkpoints are located here, before any data is loaded, so a model that is neither local nor
    cached fails in seconds offline (hf.resolve_checkpoint) rather than after a long run.
    """
    table = adapters()
    name = KNOWN_MODELS.get(model, model if model in table else None)
    if name in CHECKPOINT_FREE:
        return table[name]
    if name in table and table[name].provider != "builtin":
        table[name].load()  # a broken plugin fails here, in one line, before any data or results folder
        return table[name]
    if name is None and not _looks_like_checkpoint(model):
        raise ModelError(f"unknown model '{model}'; {choices_hint(model, set(KNOWN_MODELS) | set(table))}")

    from .hf import ENCODER_TYPES, resolve_checkpoint

    try:
        ckpt = resolve_checkpoint(model, weights=weights, trust_remote_code=trust_remote_code, online=online)
    except ModelError as exc:
        if name is not None or Path(model).expanduser().exists() or "unreachable" not in str(exc):
            raise
        raise ModelError(f"unknown model '{model}': not a local folder, not in the Hugging Face cache, and the hub "
                         f"could not confirm it; {choices_hint(model, set(KNOWN_MODELS))}") from exc
    if name is not None:
        return table[name]
    if ckpt.is_seq2seq:
        return table["text2text"]
    architectures = " ".join(getattr(ckpt.config, "architectures", None) or [])
    if ckpt.model_type in ENCODER_TYPES or "ForSequenceClassification" in architectures \
            or "ForQuestionAnswering" in architectures:
        return table["encoder"]
    if "ForCausalLM" in architectures or "LMHeadModel" in architectures:
        return table["causal"]
    heads = f" ({architectures})" if architectures else ""
    raise ModelError(f"{model}: model_type '{ckpt.model_type}'{heads} has no adapter: the encoder adapter needs a "
                     "classification or QA head or a BERT-style encoder, text2text an encoder-decoder, causal a "
                     "language-model head")


def _looks_like_checkpoint(model: str) -> bool:
    """A local path, or a hub id of the form owner/name or name (letters, digits, -_.)."""
    import re

    return Path(model).expanduser().exists() or bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?", model))
