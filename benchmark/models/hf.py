"""Hugging Face plumbing shared by the transformer adapters: finding a checkpoint (local path,
cache or hub, then an installed package's hash-checked copy) with a fast, clear failure offline;
architecture-only configs shipped with the package; tokenizers trained on the task's own text;
parameter counts; device precision.

transformers, tokenizers and torch are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ModelError, UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
WEIGHTS = ("pretrained", "random")
# model_type values whose checkpoints the encoder adapter can run (sequence classification / QA heads).
ENCODER_TYPES = frozenset({"bert", "distilbert", "roberta", "albert", "electra", "deberta", "deberta-v2",
                           "xlm-roberta", "mpnet", "camembert", "modernbert", "megatron-bert", "xlnet"})


def summary_is_last_token(config: Any) -> bool:
    """Whether a model's sequence summary is its last token, not its first: decoder-only models (each
    token sees only those before it) and XLNet (its <cls> comes last)."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    kind = str(getattr(config, "model_type", ""))
    return kind == "xlnet" or (kind not in ENCODER_TYPES and type(config) in MODEL_FOR_CAUSAL_LM_MAPPING)


@dataclass(frozen=True)
class Checkpoint:
    """Where a model's files come from and what its config says."""

    name: str                 # what the user typed
    source: str               # local folder or hub id handed to from_pretrained
    local_files_only: bool    # True when the hub must not (or cannot) be asked
    weights: str              # 'pretrained' | 'random'
    config: Any               # transformers.PretrainedConfig
    revision: str | None = None
    packaged: Any = None      # packaged.PackagedCheckpoint when an installed package supplied the files

    @property
    def model_type(self) -> str:
        return str(getattr(self.config, "model_type", ""))

    @property
    def is_seq2seq(self) -> bool:
        return bool(getattr(self.config, "is_encoder_decoder", False))


def builtin_config_names() -> list[str]:
    return sorted(p.stem.replace("--", "/") for p in CONFIG_DIR.glob("*.json"))


def _is_local(model: str) -> bool:
    return (Path(model).expanduser() / "config.json").is_file()


def resolve_checkpoint(model: str, *, weights: str = "pretrained", revision: str | None = None,
                       trust_remote_code: bool = False, online: bool | None = None) -> Checkpoint:
    """Find a model's config without waiting on an unreachable hub (fails in ~1.5 s offline).
    `online`: the run's decision about the hub (data.hub_access); None probes it here."""
    from transformers import AutoConfig

    if weights not in WEIGHTS:
        raise ModelError(f"--weights {weights}: expected one of {', '.join(WEIGHTS)}")
    if weights == "random":
        return Checkpoint(model, model, True, "random", random_config(model, trust_remote_code))
    if _is_local(model):
        path = str(Path(model).expanduser())
        try:
            config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        except ValueError as exc:
            raise ModelError(f"{model}: {str(exc).splitlines()[0]}; pass --trust-remote-code only if you trust it")
        except OSError as exc:
            raise ModelError(f"{model}: cannot read its config.json ({str(exc).splitlines()[0]})")
        return Checkpoint(model, path, True, "pretrained", config, revision)
    if Path(model).expanduser().exists():
        raise ModelError(f"{model}: a folder without config.json; save the model with save_pretrained() there")

    from ..data import hub_access

    offline = not (hub_access().online if online is None else online)
    try:
        config = AutoConfig.from_pretrained(model, revision=revision, local_files_only=offline,
                                            trust_remote_code=trust_remote_code)
    except ValueError as exc:
        raise ModelError(f"{model}: {str(exc).splitlines()[0]}; pass --trust-remote-code only if you trust it")
    except OSError:
        supplied = _packaged_checkpoint(model, trust_remote_code)
        if supplied is not None:
            return supplied
        if offline:
            known = ", ".join(builtin_config_names())
            raise ModelError(f"model '{model}' is not a local folder and not in the Hugging Face cache, and the hub "
                             f"is unreachable; pass a local checkpoint path, or --weights random for an "
                             f"architecture-only run ({known})")
        raise ModelError(f"model '{model}' was not found on the Hugging Face Hub; check the name or pass a local path")
    return Checkpoint(model, model, offline, "pretrained", config, revision)


def _packaged_checkpoint(model: str, trust_remote_code: bool) -> Checkpoint | None:
    """The last resort after the hub and its cache: an installed package's copy, hash-checked."""
    from transformers import AutoConfig

    from .packaged import find

    entry = find(model)
    folder = entry.verified() if entry is not None else None
    if folder is None:
        return None
    try:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code,
                                            **({"gguf_file": entry.gguf_file} if entry.gguf_file else {}))
    except ImportError as exc:  # reading a GGUF file needs the `gguf` package
        raise ModelError(f"{model}: {str(exc).splitlines()[0]}; install it: pip install gguf")
    return Checkpoint(model, str(folder), True, "pretrained", config, None, packaged=entry)


def random_config(model: str, trust_remote_code: bool = False):
    """The architecture of a known model from the package's own configs, or from a local folder."""
    from transformers import AutoConfig

    if _is_local(model):
        return AutoConfig.from_pretrained(str(Path(model).expanduser()), trust_remote_code=trust_remote_code)
    path = CONFIG_DIR / f"{model.replace('/', '--')}.json"
    if not path.is_file():
        raise ModelError(f"--weights random: no shipped architecture for '{model}'; "
                         f"known: {', '.join(builtin_config_names())}, or a local folder with config.json")
    data = json.loads(path.read_text())
    return AutoConfig.for_model(data.pop("model_type"), **data)


def load_model(auto_class: Any, ckpt: Checkpoint, *, seed: int, trust_remote_code: bool = False, **kwargs: Any):
    """Pre-trained weights through `from_pretrained`, or a random initialisation from the config.

    Either way the weights it draws come from `seed`: a pre-trained backbone under a new task head
    gets that head from torch's generator, so an unseeded load fine-tuned to other weights (and other
    scores) in every process. The caller's generator state is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if ckpt.weights == "random":
            for key, value in kwargs.items():  # e.g. num_labels for a fresh head
                setattr(ckpt.config, key, value)
            return auto_class.from_config(ckpt.config, trust_remote_code=trust_remote_code)
        try:
            return auto_class.from_pretrained(ckpt.source, revision=ckpt.revision,
                                              local_files_only=ckpt.local_files_only,
                                              trust_remote_code=trust_remote_code, **kwargs)
        except OSError as exc:
            raise ModelError(f"{ckpt.name}: cannot load weights ({str(exc).splitlines()[0]})")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def load_tokenizer(ckpt: Checkpoint, *, trust_remote_code: bool = False):
    """The checkpoint's own tokenizer. transformers 5 builds an empty one (every word unknown) for a
    folder holding no tokenizer files, which would score a model at chance with no error; that, and a
    tokenizer far smaller than the model's vocabulary, is refused here."""
    from transformers import AutoTokenizer

    folder = Path(ckpt.source).expanduser()
    fix = "save the tokenizer beside the model (tokenizer.save_pretrained(folder))"
    if (folder / "config.json").is_file() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"{ckpt.name}: the folder holds no tokenizer ({', '.join(TOKENIZER_FILES[:3])}, ...); {fix}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(ckpt.source, revision=ckpt.revision,
                                                  local_files_only=ckpt.local_files_only,
                                                  trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{ckpt.name}: cannot load its tokenizer ({str(exc).splitlines()[0]}); {fix}")
    vocab = getattr(ckpt.config, "vocab_size", None) if ckpt.config is not None else None
    if isinstance(vocab, int) and len(tokenizer) < vocab // 2:
        raise ModelError(f"{ckpt.name}: its tokenizer has {len(tokenizer):,} tokens for a model of {vocab:,}, so "
                         f"most words would be unknown; {fix}")
    return tokenizer


# ---------------------------------------------------------------------------------------
# tokenizers trained on the task's own text (architecture-only runs: the hub has the real ones)
def train_tokenizer(texts: Iterable[str], *, family: str, vocab_size: int):
    """A deterministic fast tokenizer: WordPiece (BERT-style, lower-cased) or Unigram (T5-style).

    The `tokenizers` trainers break frequency ties in hash order, so two runs give different ids;
    here the vocabulary is every character plus the most frequent words, ties broken by spelling.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if family not in ("wordpiece", "unigram"):
        raise ValueError(f"unknown tokenizer family {family!r}")
    wordpiece = family == "wordpiece"
    normalizer = normalizers.BertNormalizer(lowercase=True) if wordpiece else normalizers.NFKC()
    pre = pre_tokenizers.BertPreTokenizer() if wordpiece else pre_tokenizers.Metaspace()
    # Normalise once over the joined text, then count words with a regex: per-sentence calls into
    # Rust, or a million (word, offsets) tuples back from it, cost more than the counting.
    joined = normalizer.normalize_str(" ".join(texts))
    if wordpiece:  # BERT splits on whitespace and on every punctuation character
        words: Counter[str] = Counter(re.findall(r"[^\W_]+|[^\w\s]|_", joined))
    else:          # Metaspace: words are space-separated and carry the '▁' prefix
        words = Counter("\u2581" + w for w in joined.split())
    chars = sorted({c for w in words for c in w})
    if wordpiece:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab = specials + chars + [f"##{c}" for c in chars]
        seen = set(vocab)
        vocab += [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if w not in seen]
        tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab[:vocab_size])}, unk_token="[UNK]"))
        tok.normalizer, tok.pre_tokenizer = normalizer, pre
        cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
        tok.decoder = decoders.WordPiece()
        return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]",
                                       model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    import math

    extra = [f"<extra_id_{i}>" for i in range(100)]
    total = sum(words.values()) or 1
    char_counts: Counter[str] = Counter()
    for w, n in words.items():
        for c in w:
            char_counts[c] += n
    pieces = {c: math.log(char_counts[c] / total) - 10.0 for c in chars}  # characters: the fallback
    for w, n in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(pieces) >= vocab_size - 3 - len(extra):
            break
        pieces.setdefault(w, math.log(n / total))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0]))
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.add_special_tokens(extra)
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", eos)])
    tok.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>",
                                   additional_special_tokens=extra)


# ---------------------------------------------------------------------------------------
# revisions: which exact model a result came from
def local_revision(folder: str | Path, *, with_weights: bool = True) -> str:
    """'sha256:<12 hex>' over the content of every file in the folder (config, tokenizer, weights;
    hidden folders such as .git are left out), so a re-saved checkpoint of the same shape, a new
    tokenizer or a changed config is a new revision. Without weights (`--weights random`, which
    trains its own tokenizer too): config.json alone.

    Hashing runs at about 1.7 GB/s on one core (bert-base: a quarter of a second), less than loading
    the same weights costs; names and sizes alone missed weights re-saved after more training.
    """
    import hashlib

    root = Path(folder).expanduser()
    if not with_weights:
        return "sha256:" + hashlib.sha256((root / "config.json").read_bytes()).hexdigest()[:12]
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    for path in files:
        digest.update(json.dumps(path.relative_to(root).as_posix()).encode())
        with path.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return "sha256:" + digest.hexdigest()[:12]


def folder_revision(model: str, weights: str = "pretrained") -> str | None:
    """Before anything loads: a local folder's `local_revision` (what `checkpoint_revision` will say
    for it), so a resumed run notices a changed folder; None for a hub name, resolved when it loads."""
    folder = Path(model).expanduser()
    if not (folder / "config.json").is_file():
        return None
    return local_revision(folder, with_weights=weights == "pretrained")


def checkpoint_revision(ckpt: Checkpoint) -> str | None:
    """A packaged copy: the hub revision its hashes match; a local folder: `local_revision`; a
    shipped architecture: its config's hash; a hub model: the commit its branch or tag resolved
    to (transformers 5 no longer keeps `_commit_hash`)."""
    import hashlib

    if ckpt.packaged is not None:  # its files were checked against this hub revision's hashes
        return ckpt.packaged.revision
    folder = Path(ckpt.source).expanduser()
    if (folder / "config.json").is_file():
        return local_revision(folder, with_weights=ckpt.weights == "pretrained")
    if ckpt.weights == "random":
        shipped = CONFIG_DIR / f"{ckpt.source.replace('/', '--')}.json"
        return "sha256:" + hashlib.sha256(shipped.read_bytes()).hexdigest()[:12] if shipped.is_file() else None
    from transformers.utils.hub import resolve_revision

    resolved = resolve_revision(ckpt.source, ckpt.revision, local_files_only=ckpt.local_files_only)
    return getattr(resolved, "resolved", None) or ckpt.revision


# ---------------------------------------------------------------------------------------
# small facts
def count_parameters(module: Any) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


@contextlib.contextmanager
def precision(device: str, dtype: str | None) -> Iterator[None]:
    """bf16/fp16 autocast on CUDA when asked; plain fp32 otherwise."""
    if device.startswith("cuda") and dtype in ("bf16", "fp16"):
        import torch

        with torch.autocast("cuda", dtype=torch.bfloat16 if dtype == "bf16" else torch.float16):
            yield
    else:
        yield


def padded(rows: Sequence[Sequence[int]], fill: int) -> tuple[Any, Any]:
    """Right-pad integer rows (lists or arrays) to the longest: (values, mask) as int64 numpy arrays of
    [rows, width]. One masked assignment fills the whole batch; no Python loop over rows or tokens."""
    import numpy as np

    lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    real = np.arange(int(lengths.max(initial=0))) < lengths[:, None]  # row-major: the rows' tokens in order
    values = np.full(real.shape, fill, dtype=np.int64)
    if real.any():
        values[real] = np.concatenate(rows) if isinstance(rows[0], np.ndarray) else \
            np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    return values, real.astype(np.int64)


def to_device(arrays: dict[str, Any], device: str) -> dict[str, Any]:
    """numpy arrays to torch tensors on `device`. On CUDA the copy goes through pinned memory and
    does not block, so the next batch's copy can be queued while the device still works on this one."""
    import torch

    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    if device.startswith("cuda"):
        return {k: t.pin_memory().to(device, non_blocking=True) for k, t in tensors.items()}
    return {k: t.to(device) for k, t in tensors.items()}


@contextlib.contextmanager
def eager_attention(model: Any, when: bool = True) -> Iterator[None]:
    """The model's eager attention graph for the duration, then its own implementation back.

    For an ONNX export (MatMul and Softmax without SDPA's guards), and for CPU training with
    attention dropout, where SDPA falls back to the same math and draws its mask inside the kernel,
    out of reach of `fast_dropout`."""
    before = getattr(getattr(model, "config", None), "_attn_implementation", None)
    switch = when and before not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(before)


def attention_dropout(model: Any) -> float:
    """The attention-probability dropout a config declares (BERT and DistilBERT spellings)."""
    config = getattr(model, "config", None)
    return max(float(getattr(config, key, 0.0) or 0.0)
               for key in ("attention_probs_dropout_prob", "attention_dropout"))


def compiled(model: Any, device: str) -> Any:
    """`torch.compile` for inference: dynamic shapes, since length-sorted batches change width every
    step; on the CPU also inductor's freezing, which folds the weights into prepacked oneDNN kernels."""
    import torch

    options = None if device.startswith("cuda") else {"freezing": True}
    return torch.compile(model, dynamic=True, options=options)


def default_dtype(device: str, requested: str = "auto") -> str:
    if requested not in ("auto", "fp32", "bf16", "fp16"):
        raise ModelError(f"--dtype {requested}: expected auto, fp32, bf16 or fp16")
    if requested != "auto":
        return requested
    return "bf16" if device.startswith("cuda") else "fp32"


def run_dtype(adapter: str, device: str, requested: str = "auto") -> str:
    """The precision a generating adapter runs in; half precision is autocast, so CUDA only."""
    dtype = default_dtype(device, requested)
    if dtype != "fp32" and not device.startswith("cuda"):
        raise UserError(f"{adapter}: dtype {dtype} needs a CUDA device; on {device} use fp32 or auto")
    return dtype


def float32() -> Any:
    """torch.float32, for from_pretrained: fp32 master weights (v5 would load a checkpoint's stored half precision)."""
    import torch

    return torch.float32


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(torch.device(device))


def sequence_log_probs(logits: Any, targets: Any) -> Any:
    """Sum of log p(target token) over each row's real (non -100) positions, in fp32.

    logit - logsumexp, gathered first: no second [rows, steps, vocab] tensor of log-probabilities.
    """
    import torch

    logits = logits.float()
    keep = targets != -100
    picked = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return picked.masked_fill(~keep, 0.0).sum(dim=-1)


def position_limit(config: Any) -> int | None:
    """Positions a model can index (max_position_embeddings, GPT-2's n_positions or n_ctx); None for
    relative positions (T5), where only memory limits the length. A longer input fails inside the
    embedding lookup with an IndexError, so the adapters cap their inputs here."""
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def capped_length(model: str, config: Any, asked: int, given: bool) -> tuple[int | None, int]:
    """(the model's position limit, the length to use): a default `asked` past the limit is capped
    silently, as the encoder adapter caps its windows; one the user gave is a one-line error."""
    limit = position_limit(config)
    if limit is not None and asked > limit and given:
        raise UserError(f"--max-length {asked}: {model} takes at most {limit} tokens; use --max-length {limit} or less")
    return limit, asked if limit is None else min(asked, limit)
