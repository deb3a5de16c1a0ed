"""Text-to-text adapter: T5 and any other encoder-decoder checkpoint (AutoModelForSeq2SeqLM).

Every task is posed the way T5 was trained on it: the task plugin's template renders the input
("sst2 sentence: ..."), the model writes the answer. Classification maps the generated string to
a label name (T5's GLUE targets are exactly the label names), or, with `scoring="rank"`, picks the
label string the model finds most likely; QA returns the generated string. Generation writes at
most the task's `max_new_tokens`, for classification at least the longest label as the model's own
tokenizer spells it (`generation_budget`). Inputs, targets and decoder steps keep within a model's
learned positions (BART's; T5's are relative and unlimited).

torch and transformers are imported inside functions only, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ModelError, UserError, choices_hint
from .base import Adapter, Fitted, option
from .features import encode_ids, seq2seq_features
from .hf import checkpoint_revision, folder_revision
from .training import TRAINING_OPTIONS, TrainingOptions

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec
    from .hf import Checkpoint

SCORINGS = ("generate", "rank")


@dataclass(frozen=True)
class Text2TextOptions(TrainingOptions):
    weights: str = option("pretrained", "pretrained | random (architecture only: real size and latency)")
    trust_remote_code: bool = option(False, "allow a checkpoint's own Python code to run")
    dtype: str = option("auto", "auto | fp32 | bf16 | fp16 (autocast, CUDA only; auto runs fp32 on the CPU)")
    scoring: str = option("generate", "classification: generate (greedy) | rank (label strings by likelihood)")
    max_length: int = option(512, "input truncation in tokens (the default capped at the model's positions)")
    revision: str | None = option(None, "hub branch, tag or commit of the checkpoint")


def match_label(text: str, labels: Sequence[str]) -> int:
    """Index of the label name `text` spells (stripped, case-insensitive); -1, counted wrong, otherwise."""
    wanted = text.strip().casefold()
    for i, name in enumerate(labels):
        if name.casefold() == wanted:
            return i
    return -1


class Text2TextAdapter(Adapter):
    """Seq2seq checkpoints run as they are (zero-shot) or fine-tuned on the text-to-text targets."""

    name = "text2text"
    kinds = frozenset({"classification", "extractive_qa", "closed_book_qa"})
    modes = ("auto", "zero-shot", "finetune")
    mode_notes = {"frozen": "it trains a task head over a frozen backbone, and a text-to-text model has no "
                            "separate head; use --mode finetune (or zero-shot)"}
    Options = Text2TextOptions

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        # Resolved here, not in fit: the evaluator reads settings() for the resume key before fit.
        self.options_ = self._resolve_options(dataclasses.asdict(self.options))
        self.fitted_: Fitted | None = None
        self.ckpt_: Checkpoint | None = None
        self.model_: Any = None
        self.tokenizer_: Any = None
        self.commit_: str | None = None  # the hub commit a pre-trained load resolved to
        self._label_ids: dict[tuple[str, ...], Any] = {}
        self._budgets: dict[tuple[str, ...], int] = {}  # generation_budget per label set, per tokenizer
        self.max_length_: int = self.options_["max_length"]  # capped at the loaded model's positions
        self.positions_: int | None = None                    # those positions (None: relative, as T5's)

    # --- options -----------------------------------------------------------------------------
    def _resolve_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate user options once, so a typo fails before any model is loaded."""
        from .hf import WEIGHTS, run_dtype

        out = dict(options)
        if out["weights"] not in WEIGHTS:
            raise UserError(f"{self.name}: weights {out['weights']!r}; {choices_hint(str(out['weights']), WEIGHTS)}")
        if out["scoring"] not in SCORINGS:
            raise UserError(f"{self.name}: scoring {out['scoring']!r}; {choices_hint(str(out['scoring']), SCORINGS)}")
        if not isinstance(out["trust_remote_code"], bool):
            raise UserError(f"{self.name}: trust_remote_code must be true or false, got {out['trust_remote_code']!r}")
        length = out["max_length"]
        if isinstance(length, bool) or not isinstance(length, int) or length < 2:
            raise UserError(f"{self.name}: max_length must be an integer >= 2 (input tokens), got {length!r}")
        if out["revision"] is not None and not isinstance(out["revision"], str):
            raise UserError(f"{self.name}: revision must be a branch, tag or commit, got {out['revision']!r}")
        out["dtype"] = run_dtype(self.name, self.device, str(out["dtype"]))
        return out

    def settings(self) -> dict[str, Any]:
        shaping = self.shaping_options()
        return {"mode": self.mode, "seed": self.seed, **{k: v for k, v in self.options_.items() if k in shaping}}

    def needs_train_split(self) -> bool:
        return self.mode == "finetune"

    # --- fit -----------------------------------------------------------------------------------
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        """Load (or build) the model for `task`, then fine-tune it when the mode asks (`_train`)."""
        if not self._reusable():
            self._load(task, train)
        self.fitted_ = self._train(task, train)
        return self.fitted_

    def _reusable(self) -> bool:
        """Pre-trained weights used as-is serve every task; random or fine-tuned ones are per task."""
        return self.model_ is not None and self.options_["weights"] == "pretrained" and self.mode != "finetune"

    def _train(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        """auto/zero-shot: T5 already does the tasks. finetune: train on the text-to-text targets
        (label names, first answers) with Trainer; the weights are cached for the next run."""
        from .hf import count_parameters

        base = self.ckpt_.weights
        if self.mode != "finetune":
            return Fitted(mode="zero-shot", weights=base, revision=self.commit_,
                          trainable_parameters=count_parameters(self.model_)[1], labelled_examples=0)
        from . import training

        if train is None:
            raise UserError(f"{self.name}: --mode finetune needs a train split, and {task.name} declares none")
        budget = training.Budget.from_options(self.options_, epochs=3.0, learning_rate=3e-4, batch_size=16)

        def load(folder: Path) -> dict[str, Any] | None:
            meta = training.load_meta(folder)
            if meta is not None:
                self._load_trained(folder)
            return meta

        def fit_new() -> dict[str, Any]:
            import time

            from transformers import DataCollatorForSeq2Seq

            rows = training.subsample(train.rows, budget.max_examples, self.seed)
            start = time.perf_counter()
            features = seq2seq_features(self.tokenizer_, task, rows, max_length=self.max_length_)
            if self.positions_ is not None:  # a target past the decoder's positions keeps its end (eos)
                for f in features:
                    if len(f["labels"]) > self.positions_:
                        f["labels"] = f["labels"][:self.positions_ - 1] + f["labels"][-1:]
            feature_seconds = round(time.perf_counter() - start, 4)
            collator = DataCollatorForSeq2Seq(self.tokenizer_, model=self.model_, label_pad_token_id=-100)
            self.model_.train()
            stats = training.train(self.model_, features, collator, budget, device=self.device, seed=self.seed,
                                   quiet=self.quiet)
            return {"train_seconds": stats.seconds, "feature_seconds": feature_seconds, "training": stats.record(),
                    "model": self.model, "task": task.name}

        meta, from_cache = training.cached_fit(
            self.cache_dir() / "text2text",
            dict(model=self.model, revision=self.revision(), task=task.name, task_version=task.version,
                 task_sha256=task.sha256, train=train.info.fingerprint, budget=budget, seed=self.seed,
                 options={k: v for k, v in self.options_.items() if k not in TRAINING_OPTIONS}),
            fit_new, lambda folder, meta: training.save_folder(folder, self.model_, self.tokenizer_, meta), load,
            world=self.world)
        self.model_.to(self.device).eval()
        self._label_ids = {}
        self._budgets = {}
        return Fitted(mode="finetune", weights="random" if base == "random" else "trained", revision=self.commit_,
                      train_seconds=meta["train_seconds"], feature_seconds=meta.get("feature_seconds"),
                      training=meta.get("training"), trainable_parameters=count_parameters(self.model_)[1], from_cache=from_cache)

    def _load_trained(self, folder: Path) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer_ = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model_ = AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True)

    def _load(self, task: "TaskSpec", train: "Split | None") -> None:
        from transformers import AutoModelForSeq2SeqLM

        from .hf import load_model, load_tokenizer, resolve_checkpoint

        remote = self.options_["trust_remote_code"]
        ckpt = resolve_checkpoint(self.model, weights=self.options_["weights"], revision=self.options_["revision"],
                                  trust_remote_code=remote, online=self.online)
        if not ckpt.is_seq2seq:
            raise ModelError(f"{self.model}: a {ckpt.model_type or 'non-seq2seq'} model is not an encoder-decoder; "
                             f"the {self.name} adapter runs seq2seq checkpoints such as t5-small")
        if ckpt.weights == "random":
            tokenizer = self._random_tokenizer(ckpt, task, train)
        else:
            tokenizer = load_tokenizer(ckpt, trust_remote_code=remote)
        model = load_model(AutoModelForSeq2SeqLM, ckpt, seed=self.seed, trust_remote_code=remote)
        if ckpt.weights == "random":
            _align_special_tokens(model, tokenizer)
        elif _decoder_start(model) is None:
            raise ModelError(f"{self.model}: its config defines no decoder_start_token_id, so the decoder cannot "
                             "start; add it to config.json (T5 uses the pad token id, 0)")
        self.ckpt_, self.tokenizer_ = ckpt, tokenizer
        self._cap_length(model)
        self.commit_ = checkpoint_revision(ckpt)
        self.model_ = model.to(self.device).eval()
        self._label_ids = {}
        self._budgets = {}

    def _cap_length(self, model: Any) -> None:
        """Inputs (and decoder steps) within the model's learned positions (BART's 1024, a small one's
        fewer; T5's are relative, unlimited). Settings keep the option's value: the cap follows from
        the model's revision, which is in the resume key."""
        from .hf import capped_length

        self.positions_, self.max_length_ = capped_length(self.model, model.config, self.options_["max_length"],
                                                          "max_length" in self.given_options())

    def _random_tokenizer(self, ckpt: "Checkpoint", task: "TaskSpec", train: "Split | None") -> Any:
        """A random model has no tokenizer of its own: train one on the task's train text."""
        from .hf import train_tokenizer

        if train is None:
            raise UserError(f"{self.name}: weights random needs a tokenizer trained on the train split of "
                            f"{task.name}, and the task declares none")
        vocab = int(ckpt.config.vocab_size)
        tokenizer = train_tokenizer(training_texts(task, train.rows), family="unigram", vocab_size=vocab)
        if len(tokenizer) > vocab:
            raise ModelError(f"{self.model}: vocab_size {vocab} is too small for a tokenizer of the task's text "
                             f"({len(tokenizer)} tokens: every character plus 103 special tokens)")
        return tokenizer

    # --- encode ----------------------------------------------------------------------------------
    def encode(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[list[int]]:
        """Render every row with the task template and tokenise the split in one batched call."""
        tokenizer = self._ready()
        if not rows:
            return []
        ids, _ = encode_ids(tokenizer, [[task.render(r) for r in rows]], max_length=self.max_length_,
                            token_types=False)
        return ids

    def length(self, item: list[int]) -> int:
        return len(item)

    def _ready(self) -> Any:
        if self.model_ is None or self.tokenizer_ is None:
            raise RuntimeError(f"{self.name}: call fit() before encode() or predict()")
        return self.tokenizer_

    # --- predict ---------------------------------------------------------------------------------
    def predict(self, task: "TaskSpec", batch: Sequence[list[int]]) -> list[Any]:
        """Label indices (classification) or answer strings (QA), one per item, in order."""
        return self.predict_collated(task, self.collate(task, batch))

    def collate(self, task: "TaskSpec", batch: Sequence[list[int]]) -> Any:
        """The padded inputs and their mask, already on the device (None for an empty batch)."""
        self._ready()
        return self._pad(batch) if batch else None

    def predict_collated(self, task: "TaskSpec", collated: Any) -> list[Any]:
        if collated is None:
            return []
        if task.kind == "classification" and self.options_["scoring"] == "rank":
            # argmax keeps the first of equal scores: ties go to the earlier label, whatever the batch
            return self._log_likelihoods(task, *collated).argmax(dim=1).tolist()
        texts = self._generate(*collated, self.generation_budget(task))
        if task.kind == "classification":
            return [match_label(text, task.labels) for text in texts]
        return texts

    def generation_budget(self, task: "TaskSpec") -> int:
        """New tokens a task's answer may take: its `max_new_tokens`, raised for classification to the
        longest label as this tokenizer writes it, with what the decoder emits around it (BART's bos,
        and its eos, which generate forces into the last slot), else without eos (the cap ends an
        unfinished answer too). A fixed count written for T5's vocabulary cannot hold 'positive' in
        ByT5's bytes (8) or between BART's bos and eos."""
        # the decoder start token takes the first of the decoder's positions
        cap = None if self.positions_ is None else max(self.positions_ - 1, 1)
        if task.kind != "classification":
            return task.max_new_tokens if cap is None else min(task.max_new_tokens, cap)
        budget = self._budgets.get(task.labels)
        if budget is None:
            tokenizer = self._ready()
            config = self.model_.generation_config
            first, last = getattr(config, "forced_bos_token_id", None), getattr(config, "forced_eos_token_id", None)
            eos = tokenizer.eos_token_id
            need = 0
            for ids in tokenizer(list(task.labels))["input_ids"]:
                ids = list(ids)
                if eos is not None and ids[-1:] == [eos]:
                    ids = ids[:-1]
                need = max(need, len(ids) + (first is not None and ids[:1] != [first]) + (last is not None))
            budget = max(task.max_new_tokens, need)
            budget = self._budgets[task.labels] = budget if cap is None else min(budget, cap)
        return budget

    def generate(self, batch: Sequence[list[int]], max_new_tokens: int) -> list[str]:
        """Greedy decoding; each output decoded up to its first end-of-sequence token, stripped."""
        return self._generate(*self._pad(batch), max_new_tokens)

    def _generate(self, input_ids: Any, mask: Any, max_new_tokens: int) -> list[str]:
        import torch

        from .hf import precision

        with torch.inference_mode(), precision(self.device, self.options_["dtype"]):
            out = self.model_.generate(input_ids=input_ids, attention_mask=mask, do_sample=False, num_beams=1,
                                       max_new_tokens=max_new_tokens)
        # Encoder-decoder generate returns the decoder start token first (pad for T5, eos for BART):
        # drop it before cutting at eos, so BART's start token is not read as the end.
        return [self._decode(row[1:]) for row in out.tolist()]

    def _decode(self, ids: list[int]) -> str:
        eos = self.tokenizer_.eos_token_id
        if eos is not None and eos in ids:
            ids = ids[:ids.index(eos)]
        return self.tokenizer_.decode(ids, skip_special_tokens=True).strip()

    def label_log_likelihoods(self, task: "TaskSpec", batch: Sequence[list[int]]) -> list[list[float]]:
        """log p(label string + eos | input) for every (item, label): one encoder and one decoder pass.

        Scores are sums of token log-probabilities, not length-normalised: the label strings are
        the model's exact training targets, and a per-token mean would favour a long label whose
        later tokens are near-certain once its first token is chosen (not_duplicate vs duplicate).
        """
        return self._log_likelihoods(task, *self._pad(batch)).tolist()

    def _log_likelihoods(self, task: "TaskSpec", input_ids: Any, mask: Any) -> Any:
        """[items, labels] tensor of label log-likelihoods for padded inputs already on the device."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        from .hf import precision, sequence_log_probs

        labels = self._label_tensor(task)                    # [L, T], -100 past each label's end
        n, k = input_ids.shape[0], labels.shape[0]
        with torch.inference_mode(), precision(self.device, self.options_["dtype"]):
            hidden = self.model_.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state
            targets = labels.repeat(n, 1)                    # item-major: row i*k + j is (item i, label j)
            logits = self.model_(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden.repeat_interleave(k, dim=0)),
                attention_mask=mask.repeat_interleave(k, dim=0),
                decoder_input_ids=self._decoder_inputs(targets),
                use_cache=False,
            ).logits
        return sequence_log_probs(logits, targets).view(n, k)

    def _decoder_inputs(self, targets: Any) -> Any:
        """Targets shifted right behind the decoder start token, the way the model was trained."""
        shift = getattr(self.model_, "prepare_decoder_input_ids_from_labels", None)
        if shift is None:
            raise ModelError(f"{self.model}: {type(self.model_).__name__} cannot build decoder inputs from labels; "
                             "use scoring generate")
        return shift(targets)

    def _label_tensor(self, task: "TaskSpec") -> Any:
        """The task's label strings tokenised (each ending in eos), right-padded with -100, on the device:
        built once per label set, not once per batch."""
        from .hf import padded, to_device

        tensor = self._label_ids.get(task.labels)
        if tensor is None:
            eos = self.tokenizer_.eos_token_id
            ids = [list(row) for row in self.tokenizer_(list(task.labels))["input_ids"]]
            ids = [row if eos is None or (row and row[-1] == eos) else row + [eos] for row in ids]
            tensor = self._label_ids[task.labels] = to_device({"ids": padded(ids, -100)[0]}, self.device)["ids"]
        return tensor

    def _pad(self, batch: Sequence[list[int]]) -> tuple[Any, Any]:
        """Right-pad to the batch's longest input; the attention mask hides the padding."""
        from .hf import padded, to_device

        pad = self.tokenizer_.pad_token_id
        if pad is None:
            pad = getattr(self.model_.config, "pad_token_id", None)
        if pad is None:
            raise ModelError(f"{self.model}: the tokenizer and config define no pad token")
        ids, mask = padded(batch, int(pad))
        tensors = to_device({"ids": ids, "mask": mask}, self.device)
        return tensors["ids"], tensors["mask"]

    # --- facts for the Result ------------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        from .hf import count_parameters

        return count_parameters(self.model_) if self.model_ is not None else (0, 0)

    def synchronize(self) -> None:
        from .hf import synchronize

        synchronize(self.device)

    def weights(self) -> str:
        return self.fitted_.weights if self.fitted_ is not None else self.options_["weights"]

    def revision(self) -> str | None:
        """Which exact model ran (hf.checkpoint_revision); before fit, a local folder's own hash."""
        if self.ckpt_ is not None:
            return self.commit_
        return folder_revision(self.model, self.options_["weights"])

    def dtype(self) -> str | None:
        return self.options_["dtype"]


# ---------------------------------------------------------------------------------------
# helpers
def training_texts(task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[str]:
    """What a task-trained tokenizer must cover: rendered inputs and the target strings."""
    texts = [task.render(row) for row in rows]
    if task.kind == "classification":
        texts += list(task.labels)
        texts += [task.labels[task.label_index(row)] for row in rows]
    else:
        texts += [answer for row in rows for answer in task.answer_list(row)]
    return texts


def _decoder_start(model: Any) -> int | None:
    """The token every decoder sequence starts from: generation config first, then model config."""
    start = getattr(model.generation_config, "decoder_start_token_id", None)
    return start if start is not None else getattr(model.config, "decoder_start_token_id", None)


def _align_special_tokens(model: Any, tokenizer: Any) -> None:
    """A random model speaks its trained tokenizer's pad/eos ids (the same as T5's: 0 and 1)."""
    for config in (model.config, model.generation_config):
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.eos_token_id
        if getattr(config, "decoder_start_token_id", None) is None:
            config.decoder_start_token_id = tokenizer.pad_token_id
