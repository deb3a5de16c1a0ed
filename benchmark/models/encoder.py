"""Encoder checkpoints (BERT, RoBERTa, DistilBERT, ...) with a sequence-classification or an
extractive-QA head, run as they are (zero-shot).

* Classification: the head's labels are matched to the task's labels by name (case and
  punctuation ignored), because public checkpoints disagree on label order (some MNLI heads put
  contradiction first); generic LABEL_<i> heads of the right size fall back to position, and
  `label_map` overrides both. A prediction is the argmax over the head outputs that map to a
  task label.
* Extractive QA: question first, context second; long contexts become windows overlapping by
  `doc_stride` tokens, and `qa_spans` picks the best context-only span over all windows.
* `weights="random"`: the architecture from the config, seeded, with a WordPiece tokenizer
  trained on the task's own text (an architecture-only floor).

Modes: `zero-shot` runs the checkpoint as it is; `finetune` puts a new task head on it and trains
every weight (transformers' Trainer through `training`, cached); `frozen` is feature-based reuse:
the backbone runs once over the train split and a logistic-regression probe learns from the pooled
features (`probe`; extractive QA: a linear span head on token states, `span_probe`); `auto` runs a checkpoint whose head already fits the task as it is and
fine-tunes one without. torch and transformers are imported inside methods, so importing this
module stays light.
"""

from __future__ import annotations

import inspect
import sys
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import ModelError, UserError
from . import hf
from . import onnx_runtime
from . import training
from .base import MODES, Adapter, Fitted, option
from . import probe
from .features import classification_features, encode_ids, input_columns, qa_features, qa_windows
from .labels import map_head_labels, parse_label_map  # noqa: F401  (the encoder's label API)
from .training import TRAINING_OPTIONS, TrainingOptions

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec

# The BERT paper's fine-tuning recipe: 3 epochs, batch 32, learning rate 2e-5..5e-5 for base-size
# encoders. Compact encoders (hidden size <= 512: MiniLM-H384, BERT-mini/small) do better at a higher
# rate: Turc et al. 2019 ("Well-Read Students Learn Better") searched up to 1e-4 for them, and on
# all-MiniLM-L6-v2, 4,000 SST-2 sentences, one epoch, 1e-4 gave 81.0 against 79.7 at 5e-5 (one seed).
TRAIN_DEFAULTS = {"epochs": 3.0, "batch_size": 32}
BASE_LEARNING_RATE, COMPACT_LEARNING_RATE, COMPACT_HIDDEN = 5e-5, 1e-4, 512
RUNTIME_OPTIONS = ("compile", "backend", "quantize")  # how a model runs, not what it learns
MAX_LENGTH = {"classification": 512, "extractive_qa": 384}  # capped at the model's position limit
MAX_QUERY_TOKENS = 64        # longer questions are cut (as in the original BERT SQuAD recipe)
FALLBACK_POSITIONS = 512     # for configs that do not say how many positions they have
# Position ids start after the padding index in these families: two of their positions are unusable.
OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet", "longformer"})


@dataclass(frozen=True)
class EncoderOptions(TrainingOptions):
    weights: str = option("pretrained", "pretrained | random (architecture only: real size and latency)")
    label_map: Any = option(None, "head label -> task label, e.g. LABEL_0=negative,LABEL_1=positive")
    trust_remote_code: bool = option(False, "allow a checkpoint's own Python code to run")
    dtype: str = option("auto", "auto | fp32 | bf16 | fp16 (autocast, CUDA only; auto runs fp32 on the CPU)")
    max_length: int | None = option(None, "input tokens per window (default 512 classification, 384 QA)")
    doc_stride: int = option(128, "QA: tokens shared by overlapping context windows")
    max_answer_length: int = option(30, "QA: longest answer span in tokens")
    n_best: int = option(20, "QA: start/end candidates per window")
    compile: bool = option(False, "torch.compile the forward pass (dynamic shapes; pays off on long runs)")
    backend: str = option("torch", "torch | onnxruntime (exported once per weights, cached; zero-shot and finetune)")
    quantize: str = option("none", "none | int8 (dynamic int8 weights of the linear layers; needs --backend "
                                   "onnxruntime; a different model, reported as its own row)")
    pair_encoding: str = option("separate", "frozen: sentence pairs encoded apart as [u; v; |u-v|; u*v] "
                                            "(separate) or as one input (joint)")


@dataclass(frozen=True)
class Encoded:
    """One unpadded model input: a sentence, a sentence pair, or one QA window."""

    input_ids: Sequence[int]                     # unpadded: a list, or an int64 array for QA windows
    token_type_ids: Sequence[int] | None = None  # None: the model takes none, or every one is 0


@dataclass(frozen=True)
class QAExample:
    """All windows of one QA example; offsets are per-token character spans in `context`, -1 off it."""

    windows: tuple[Encoded, ...]
    offsets: tuple[np.ndarray, ...]
    context: str


def default_learning_rate(config: Any) -> float:
    """Fine-tuning's default learning rate by encoder width (see TRAIN_DEFAULTS)."""
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None)  # DistilBERT calls it `dim`
    return COMPACT_LEARNING_RATE if isinstance(hidden, int) and hidden <= COMPACT_HIDDEN else BASE_LEARNING_RATE


# ---------------------------------------------------------------------------------------
class EncoderAdapter(Adapter):
    """BERT-style checkpoints, run as they are or with a new task head trained on the task."""

    name = "encoder"
    kinds = frozenset({"classification", "extractive_qa"})
    modes = MODES
    Options = EncoderOptions

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.opts_ = _resolve_options(dataclasses.asdict(self.options))
        if self.opts_["backend"] == "torch":
            hf.run_dtype(self.name, self.device, self.opts_["dtype"])  # bf16 asked of a CPU: an error, as elsewhere
        ignored = [k for k in ("epochs", "learning_rate", "train_batch_size") if self.opts_.get(k) is not None]
        if self.mode == "frozen" and ignored:
            raise UserError(f"--mode frozen fits a logistic-regression probe on frozen features, so "
                            f"{', '.join('--' + k.replace('_', '-') for k in ignored)} do not apply; drop them")
        if self.mode == "frozen" and self.opts_["backend"] != "torch":
            raise UserError("--backend onnxruntime runs models with a task head (zero-shot, finetune); "
                            "--mode frozen pools features on torch, drop --backend")
        self.fitted_: Fitted | None = None
        self.ckpt_: hf.Checkpoint | None = None
        self.model_: Any = None
        self.tokenizer_: Any = None
        self.kind_: str | None = None
        self.label_ids_: list[int] = []    # head output -> task label index (-1: ignored)
        self.max_length_: int | None = None
        self.pad_id_ = 0
        self.use_token_types_ = False
        self.compiled_: Any = None         # model_ through torch.compile (option `compile`)
        self.session_: Any = None          # backend onnxruntime: the exported model's session
        self.export_: Any = None           # ... and how its file was made (onnx_runtime.Export)
        self.probe_: Any = None            # frozen: the logistic regression on pooled features
        self.pooling_ = "cls"              # frozen: how token states become one vector
        self.heads_: tuple[str, ...] | None = None  # the checkpoint's architectures, read once (zero-shot)

    # --- capabilities ----------------------------------------------------------------------
    def unsupported_reason(self, task: "TaskSpec") -> str | None:
        reason = super().unsupported_reason(task)
        if reason is None and task.kind == "classification" and len(task.inputs) > 2:
            reason = f"encoder takes one or two input texts, {task.name} has {len(task.inputs)}"
        if reason is None and self.mode == "zero-shot":
            reason = self._head_mismatch(task)
        return reason

    def _head_mismatch(self, task: "TaskSpec") -> str | None:
        """Zero-shot runs the checkpoint's own head: a QA head cannot classify, nor a classifier find
        spans. Said per task, from the config's architectures, so a suite marks that task "—" and goes on."""
        if self.opts_["weights"] == "random":
            return None
        if self.heads_ is None:
            try:
                ckpt = hf.resolve_checkpoint(self.model, weights="pretrained", online=self.online,
                                             trust_remote_code=self.opts_["trust_remote_code"])
            except UserError:
                return None  # fit says what is wrong with the checkpoint itself
            self.heads_ = tuple(getattr(ckpt.config, "architectures", None) or ())
        heads = self.heads_
        if not heads:
            return None
        if task.kind == "classification" and all("ForQuestionAnswering" in a for a in heads):
            return f"zero-shot runs the checkpoint's own head, and {heads[0]} answers questions; it cannot classify"
        if task.kind == "extractive_qa" and all("ForSequenceClassification" in a for a in heads):
            return f"zero-shot runs the checkpoint's own head, and {heads[0]} classifies; it cannot find answer spans"
        return None

    def needs_train_split(self) -> bool:
        return self.mode in ("frozen", "finetune")  # auto runs a checkpoint's own head when it has one

    # --- fit: resolve, load, map labels, train when the mode asks ---------------------------
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        reason = self.unsupported_reason(task)
        if reason:
            raise UserError(reason)
        self.kind_ = task.kind
        self.probe_ = None  # one adapter fits task after task: nothing of the last task's head may stay
        self.ckpt_ = hf.resolve_checkpoint(self.model, weights=self.opts_["weights"],
                                           trust_remote_code=self.opts_["trust_remote_code"], online=self.online)
        if self.ckpt_.model_type == "xlnet" and self.mode != "frozen":
            raise ModelError(f"{self.model}: XLNet's head reads the last position, so its batches must be padded on "
                             "the left, and this adapter pads on the right (predictions would change with the batch); "
                             "use --mode frozen, which pools each text's last real token")
        revision = hf.checkpoint_revision(self.ckpt_)
        if self.mode == "frozen":
            fitted = self._fit_probe(task, train, revision)
        elif self.mode == "finetune":
            fitted = self._fit_trained(task, train, self.mode, revision)
        else:
            try:
                fitted = self._fit_as_is(task, train, revision)
            except UserError:
                if self.mode != "auto" or train is None:
                    raise
                fitted = self._fit_trained(task, train, "finetune", revision)  # auto: no usable head, so train one
        self.model_.to(self.device).eval()
        self.compiled_ = hf.compiled(self.model_, self.device) if self.opts_["compile"] else None
        self.session_ = self._onnx_session(task) if self.opts_["backend"] == "onnxruntime" else None
        self.fitted_ = dataclasses.replace(fitted, trainable_parameters=self.parameter_counts()[1])
        return self.fitted_

    def _onnx_session(self, task: "TaskSpec", fusions: Sequence[str] = (), level: str = "all") -> Any:
        """The fitted model (checkpoint head or trained one) exported and cached by its weights hash;
        `fusions` (offline optimiser steps) and `level` (graph optimisation) are for make perf."""
        import torch

        inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if self.use_token_types_ else [])
        outputs = ["start_logits", "end_logits"] if task.kind == "extractive_qa" else ["logits"]
        self.export_ = onnx_runtime.export(self.model_.cpu(), inputs, outputs, self.cache_dir(),
                                           quantization=self.opts_["quantize"], fusions=fusions)
        self.model_.to(self.device)
        if not self.quiet and self.world.is_main and not self.export_.from_cache:
            print(f"{self.model}: exported to ONNX{' (int8)' if self.opts_['quantize'] == 'int8' else ''} in "
                  f"{self.export_.seconds:.1f} s, cached in {self.export_.path.parent}", file=sys.stderr)
        return onnx_runtime.Session(self.export_.path, inputs, outputs, self.device,
                                    threads=torch.get_num_threads(), level=level)

    def _fit_as_is(self, task: "TaskSpec", train: "Split | None", revision: str | None) -> Fitted:
        self.model_ = self._load_model(task, self.ckpt_)
        self._use_tokenizer(self._load_tokenizer(task, self.ckpt_, train))
        self.label_ids_ = self._label_ids(task) if task.kind == "classification" else []
        self._finish_setup(task)
        return Fitted(mode="zero-shot", weights=self.ckpt_.weights, revision=revision, labelled_examples=0)

    def _finish_setup(self, task: "TaskSpec") -> None:
        self.max_length_ = self._max_length(task.kind)
        self.use_token_types_ = self._uses_token_types()
        if task.kind == "extractive_qa" and self.tokenizer_ is not None:
            self._question_budget()  # a doc_stride that leaves no room fails here, not mid-run

    # --- feature-based reuse: frozen backbone, one pass, a probe ----------------------------
    def _fit_probe(self, task: "TaskSpec", train: "Split | None", revision: str | None) -> Fitted:
        """Pool the frozen backbone's states over the train split once, then fit the probe on them."""
        import time

        from sklearn.linear_model import LogisticRegression  # noqa: F401  (loaded before the probe's clock starts)
        from transformers import AutoModel

        if train is None:
            raise UserError(f"--mode frozen: {task.name} has no train split to train on")
        self.model_ = hf.load_model(AutoModel, self.ckpt_, seed=self.seed,
                                    trust_remote_code=self.opts_["trust_remote_code"],
                                    **({} if self.ckpt_.weights == "random" else {"dtype": hf.float32()})).float()
        self.model_.requires_grad_(False)
        self.model_.to(self.device).eval()
        self._use_tokenizer(self._load_tokenizer(task, self.ckpt_, train))
        self.label_ids_ = list(range(len(task.labels))) if task.kind == "classification" else []
        self._finish_setup(task)
        rows = training.subsample(train.rows, self.opts_["max_train_examples"], self.seed)
        if task.kind == "extractive_qa":
            return self._fit_span_probe(task, rows, revision)
        self.pooling_ = probe.pooling_mode(self.ckpt_.source, local_files_only=self.ckpt_.local_files_only,
                                           revision=self.ckpt_.revision,
                                           default="last" if hf.summary_is_last_token(self.model_.config) else "cls")
        start = time.perf_counter()
        features = probe.embed(self._encode_for_probe(task, rows), self._pooled_batch, self.length)
        feature_seconds = round(time.perf_counter() - start, 4)
        start = time.perf_counter()
        self.probe_ = probe.fit_probe(features, [task.label_index(r) for r in rows], seed=self.seed)
        if not self.quiet and self.world.is_main:
            print(f"{task.name}: probe C={self.probe_.C} (cross-validated on {len(rows)} train examples)",
                  file=sys.stderr)
        return Fitted(mode="frozen", weights=self.ckpt_.weights, revision=revision,
                      train_seconds=round(time.perf_counter() - start, 4), feature_seconds=feature_seconds)

    def _fit_span_probe(self, task: "TaskSpec", rows: Sequence[dict[str, Any]], revision: str | None) -> Fitted:
        """Extractive QA: token states of every train window once, then a linear start/end head."""
        import time

        from . import span_probe

        start = time.perf_counter()
        windows = qa_features(self.tokenizer_, task, rows, max_length=self.max_length_,
                              doc_stride=self._doc_stride(), question_tokens=self._question_budget(),
                              token_types=self.use_token_types_)
        items = [Encoded(_ids(w["input_ids"]), _ids(w["token_type_ids"]) if self.use_token_types_ else None)
                 for w in windows]
        states = span_probe.token_states(items, self._hidden_batch, self.length)
        feature_seconds = round(time.perf_counter() - start, 4)
        start = time.perf_counter()
        head = span_probe.train_span_head(states, [w["start_positions"] for w in windows],
                                          [w["end_positions"] for w in windows], seed=self.seed)
        self.model_ = span_probe.frozen_span_model(self.model_, head)
        return Fitted(mode="frozen", weights=self.ckpt_.weights, revision=revision,
                      train_seconds=round(time.perf_counter() - start, 4), feature_seconds=feature_seconds)

    def _hidden_batch(self, items: list[Encoded]) -> np.ndarray:
        return self._outputs(self._tensors(items)).last_hidden_state.float().cpu().numpy()

    def _encode_for_probe(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[tuple[Encoded, ...]]:
        """One Encoded per input text (separate) or one for the whole pair (joint), as a tuple."""
        if self.opts_["pair_encoding"] == "joint" or len(task.inputs) == 1:
            return [(item,) for item in self._encode_texts(task, rows)]
        return list(zip(*(self._encoded([column]) for column in input_columns(task, rows))))

    def _pooled_batch(self, items: list[Encoded]) -> np.ndarray:
        return self._pooled(self._tensors(items))

    def _pooled(self, inputs: dict[str, Any]) -> np.ndarray:
        """One backbone forward pass, pooled: [batch, hidden] fp32."""
        hidden = self._outputs(inputs).last_hidden_state.float()
        return probe.pool(hidden, inputs["attention_mask"], self.pooling_).cpu().numpy()

    # --- training: finetune ------------------------------------------------------------------
    def _fit_trained(self, task: "TaskSpec", train: "Split | None", mode: str, revision: str | None) -> Fitted:
        """A new task head on the checkpoint, every weight trained, cached."""
        if train is None:
            raise UserError(f"--mode {mode}: {task.name} has no train split to train on")
        budget = training.Budget.from_options(self.opts_, **TRAIN_DEFAULTS,
                                              learning_rate=default_learning_rate(self.ckpt_.config))

        def ready(ckpt: hf.Checkpoint, load_tokenizer: Callable[[], Any]) -> None:
            self.model_ = self._new_head_model(task, ckpt)
            self._use_tokenizer(load_tokenizer())
            self.label_ids_ = list(range(len(task.labels))) if task.kind == "classification" else []
            self._finish_setup(task)

        def load(folder: Path) -> dict[str, Any] | None:
            meta = training.load_meta(folder)
            if meta is not None:
                cached = hf.Checkpoint(self.model, str(folder), True, "pretrained", None)
                ready(cached, lambda: hf.load_tokenizer(cached))
            return meta

        def fit_new() -> dict[str, Any]:
            ready(self.ckpt_, lambda: self._load_tokenizer(task, self.ckpt_, train))
            stats, feature_seconds = self._train(task, train, budget)
            return {"train_seconds": stats.seconds, "feature_seconds": feature_seconds, "training": stats.record(),
                    "mode": mode, "model": self.model}

        meta, from_cache = training.cached_fit(
            self.cache_dir() / "encoder",
            dict(model=self.model, revision=revision, task=task.name, task_version=task.version,
                 task_sha256=task.sha256, train=train.info.fingerprint, mode=mode, budget=budget, seed=self.seed,
                 # entries from before the new head was drawn from the seed hold an unrepeatable draw
                 head_init="seeded", options=self._training_key_options(), **_span_key(task, train)),
            fit_new, lambda folder, meta: training.save_folder(folder, self.model_, self.tokenizer_, meta), load,
            world=self.world)
        # trained from a random start stays 'random': it is not the named model
        weights = "random" if self.ckpt_.weights == "random" else "trained"
        return Fitted(mode=mode, weights=weights, revision=revision, train_seconds=meta["train_seconds"],
                      feature_seconds=meta.get("feature_seconds"), training=meta.get("training"),
                      from_cache=from_cache)

    def _training_key_options(self) -> dict[str, Any]:
        """The options in the trained-weights cache key. How the trained model later runs (backend,
        quantization, torch.compile) does not change training, so every runtime reuses one trained model;
        `compile` stays in as False because keys made before these options existed held it."""
        out = {k: v for k, v in self.opts_.items() if k not in TRAINING_OPTIONS and k not in RUNTIME_OPTIONS}
        out["compile"] = False
        return out

    def _new_head_model(self, task: "TaskSpec", ckpt: hf.Checkpoint) -> Any:
        """The backbone with a head sized for the task (a checkpoint's own head is replaced)."""
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

        qa = task.kind == "extractive_qa"
        auto = AutoModelForQuestionAnswering if qa else AutoModelForSequenceClassification
        # QA: a start and an end logit per token, whatever head (a 3-way NLI one) the checkpoint had
        kwargs: dict[str, Any] = {"num_labels": 2, "id2label": {0: "LABEL_0", 1: "LABEL_1"},
                                  "label2id": {"LABEL_0": 0, "LABEL_1": 1}} if qa else {
            "num_labels": len(task.labels), "id2label": dict(enumerate(task.labels)),
            "label2id": {label: i for i, label in enumerate(task.labels)}}
        if ckpt.weights != "random":
            kwargs.update(dtype=torch.float32, ignore_mismatched_sizes=True)
        try:
            model = hf.load_model(auto, ckpt, seed=self.seed, trust_remote_code=self.opts_["trust_remote_code"],
                                  **kwargs)
        except ValueError as exc:
            raise ModelError(f"{self.model}: no {task.kind.replace('_', ' ')} head for model type "
                             f"'{ckpt.model_type}' ({str(exc).splitlines()[0][:160]})")
        return model.float()

    def _train(self, task: "TaskSpec", train: "Split", budget: training.Budget) -> tuple[training.TrainStats, float]:
        """(what training processed and took, feature-building seconds)."""
        import time

        from transformers import DataCollatorWithPadding

        rows = training.subsample(train.rows, budget.max_examples, self.seed)
        start = time.perf_counter()
        if task.kind == "extractive_qa":
            features = qa_features(self.tokenizer_, task, rows, max_length=self.max_length_,
                                   doc_stride=self._doc_stride(), question_tokens=self._question_budget(),
                                   token_types=self.use_token_types_)
        else:
            features = classification_features(self.tokenizer_, task, rows, max_length=self.max_length_,
                                               token_types=self.use_token_types_)
        feature_seconds = round(time.perf_counter() - start, 4)
        collator = DataCollatorWithPadding(self.tokenizer_)
        return training.train(self.model_, features, collator, budget, device=self.device, seed=self.seed,
                              quiet=self.quiet), feature_seconds

    def _load_model(self, task: "TaskSpec", ckpt: hf.Checkpoint) -> Any:
        import torch
        from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

        qa = task.kind == "extractive_qa"
        auto = AutoModelForQuestionAnswering if qa else AutoModelForSequenceClassification
        if ckpt.weights == "random":
            kwargs: dict[str, Any] = {} if qa else {
                "num_labels": len(task.labels), "id2label": dict(enumerate(task.labels)),
                "label2id": {label: i for i, label in enumerate(task.labels)}}
        else:  # fp32 master weights: v5 would otherwise load a checkpoint's stored half precision
            kwargs = {"dtype": torch.float32, "output_loading_info": True}
        try:
            loaded = hf.load_model(auto, ckpt, seed=self.seed, trust_remote_code=self.opts_["trust_remote_code"],
                                   **kwargs)
        except ValueError as exc:
            raise ModelError(f"{self.model}: no {task.kind.replace('_', ' ')} head for model type "
                             f"'{ckpt.model_type}' ({str(exc).splitlines()[0][:160]})")
        model, info = loaded if isinstance(loaded, tuple) else (loaded, {})
        missing = sorted(info.get("missing_keys") or ())
        if missing:
            head = "question-answering" if qa else "classification"
            raise UserError(f"{self.model}: the checkpoint has no trained {head} head ({len(missing)} weights "
                            f"missing, e.g. {missing[0]}), so zero-shot would score random weights; use a "
                            f"checkpoint fine-tuned for {task.kind.replace('_', ' ')}, or --weights random")
        return model.float()

    def _load_tokenizer(self, task: "TaskSpec", ckpt: hf.Checkpoint, train: "Split | None") -> Any:
        """The checkpoint's tokenizer; for random weights one trained on the task's train text
        (without a train split: on the first split encoded, see `encode`)."""
        if ckpt.weights == "random":
            return self._train_tokenizer(task, train.rows) if train is not None else None
        tok = hf.load_tokenizer(ckpt, trust_remote_code=self.opts_["trust_remote_code"])
        if not getattr(tok, "is_fast", False):
            raise ModelError(f"{self.model}: the encoder adapter needs a fast (Rust) tokenizer for character "
                             f"offsets; {type(tok).__name__} is not one")
        return tok

    def _train_tokenizer(self, task: "TaskSpec", rows: Sequence[Mapping[str, Any]]) -> Any:
        texts = [text for row in rows for text in task.texts(row)]
        return hf.train_tokenizer(texts, family="wordpiece", vocab_size=int(self.model_.config.vocab_size))

    def _use_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer_ = tokenizer
        if tokenizer is not None:
            if getattr(tokenizer, "pad_token", None) is None and getattr(tokenizer, "eos_token", None) is not None:
                tokenizer.pad_token = tokenizer.eos_token  # GPT-style: the training collator pads too
            self.pad_id_ = _pad_id(tokenizer, self.model_.config)
            if getattr(self.model_.config, "pad_token_id", None) is None:
                # a decoder-only classifier finds each row's last token by its padding id; without one
                # it refuses batches larger than one
                self.model_.config.pad_token_id = self.pad_id_

    def _label_ids(self, task: "TaskSpec") -> list[int]:
        if self.ckpt_ is not None and self.ckpt_.weights == "random":
            return list(range(len(task.labels)))  # the head was built for this task
        return map_head_labels(self.model_.config.id2label, task.labels, self.opts_["label_map"],
                               model=self.model, task=task.name)

    def _max_length(self, kind: str) -> int:
        limit = self._position_limit()
        asked = self.opts_["max_length"]
        if asked is None:
            return min(MAX_LENGTH[kind], limit)
        if asked > limit:
            raise UserError(f"--max-length {asked}: {self.model} takes at most {limit} tokens")
        return asked

    def _position_limit(self) -> int:
        config = self.model_.config
        n = getattr(config, "max_position_embeddings", None)
        limit = n if isinstance(n, int) and n > 0 else FALLBACK_POSITIONS
        if str(getattr(config, "model_type", "")) in OFFSET_POSITIONS:
            limit -= 2
        tok_max = getattr(self.tokenizer_, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 100_000:  # huge means 'not set'
            limit = min(limit, tok_max)
        return limit

    def _uses_token_types(self) -> bool:
        """BERT-style segment ids only where the model takes them and has more than one segment."""
        params = inspect.signature(self.model_.forward).parameters
        return "token_type_ids" in params and int(getattr(self.model_.config, "type_vocab_size", 2) or 0) > 1

    # --- encode ----------------------------------------------------------------------------
    def encode(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[Any]:
        """Tokenise the whole split in one batched call (plus one for long questions in QA)."""
        if self.model_ is None:
            raise UserError("encoder: call fit() before encode()")
        if self.tokenizer_ is None:  # random weights without a train split: learn the vocabulary here
            self._use_tokenizer(self._train_tokenizer(task, rows))
        if not rows:
            return []
        if task.kind == "extractive_qa":
            return self._encode_qa(task, rows)
        if self.probe_ is not None:
            return self._encode_for_probe(task, rows)
        return self._encode_texts(task, rows)

    def _encode_texts(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[Encoded]:
        return self._encoded(input_columns(task, rows))

    def _encoded(self, columns: list[list[str]]) -> list[Encoded]:
        """One Encoded per row of one text column or a pair of them."""
        ids, types = encode_ids(self.tokenizer_, columns, max_length=self.max_length_,
                                token_types=bool(self.use_token_types_))
        if types is None:  # the ids stay Python lists: the collator flattens a batch of them in one call
            return [Encoded(row) for row in ids]
        return [Encoded(row, row_types) for row, row_types in zip(ids, types)]

    def _encode_qa(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[QAExample]:
        enc, contexts = qa_windows(self.tokenizer_, task, rows, max_length=self.max_length_,
                                   doc_stride=self._doc_stride(), question_tokens=self._question_budget(),
                                   token_types=self.use_token_types_)
        windows: list[list[tuple[Encoded, np.ndarray]]] = [[] for _ in rows]
        for w, owner in enumerate(enc["overflow_to_sample_mapping"]):
            types = enc["token_type_ids"][w] if self.use_token_types_ else None
            item = Encoded(_ids(enc["input_ids"][w]), None if types is None else _ids(types))
            windows[owner].append((item, _context_offsets(enc["offset_mapping"][w], enc.sequence_ids(w))))
        return [QAExample(tuple(i for i, _ in ws), tuple(o for _, o in ws), c) for ws, c in zip(windows, contexts)]

    def _room(self) -> int:
        return self.max_length_ - self.tokenizer_.num_special_tokens_to_add(pair=True)

    def _doc_stride(self) -> int:
        """The option when given; by default 128 tokens, or half the window where a model's positions
        make the window too short for that (a 128-position model: 62), so the question keeps room."""
        if "doc_stride" in self.given_options():
            return int(self.opts_["doc_stride"])
        return min(int(self.opts_["doc_stride"]), (self._room() - 1) // 2)

    def _question_budget(self) -> int:
        stride = self._doc_stride()
        budget = min(MAX_QUERY_TOKENS, self._room() - stride - 1)
        if budget < 1:
            raise UserError(f"doc_stride {stride} leaves no room for the question in {self.max_length_}-token "
                            f"windows; pass a smaller doc_stride (options={{'doc_stride': "
                            f"{max(0, (self._room() - 1) // 2)}}} from Python) or a larger --max-length")
        return budget

    def length(self, item: Any) -> int:
        if isinstance(item, QAExample):
            return sum(len(w.input_ids) for w in item.windows)
        if isinstance(item, tuple):  # frozen: one Encoded per text
            return sum(len(part.input_ids) for part in item)
        return len(item.input_ids)

    # --- predict ---------------------------------------------------------------------------
    def predict(self, task: "TaskSpec", batch: Sequence[Any]) -> list[Any]:
        return self.predict_collated(task, self.collate(task, batch))

    def collate(self, task: "TaskSpec", batch: Sequence[Any]) -> Any:
        """Classification: the padded batch, already on the device. QA batches its windows itself."""
        if task.kind == "extractive_qa" or not batch:
            return list(batch)
        if self.probe_ is not None:  # one padded batch per text of the pair
            return [self._tensors([item[k] for item in batch]) for k in range(len(batch[0]))]
        return self._tensors(list(batch))

    def predict_collated(self, task: "TaskSpec", collated: Any) -> list[Any]:
        if not collated:
            return []
        if task.kind == "extractive_qa":
            return [self._answer(ex, windows) for ex, windows in zip(collated, self.logits(task, collated))]
        if self.probe_ is not None:
            return self.probe_.predict(probe.combine([self._pooled(part) for part in collated])).tolist()
        (scores,) = self._run(collated, ("logits",))
        return self._labels(scores)

    def logits(self, task: "TaskSpec", batch: Sequence[Any]) -> list[Any]:
        """Raw scores per item: a head-output vector, or per QA window a (start, end) pair of arrays."""
        if task.kind == "extractive_qa":
            return self._qa_logits(batch)
        (scores,) = self._forward(list(batch), ("logits",))
        return list(scores)

    def _labels(self, scores: np.ndarray) -> list[int]:
        """Per row, the argmax over the head outputs that map to a task label (one numpy call per batch)."""
        ids = np.asarray(self.label_ids_)
        masked = np.where(ids >= 0, scores.astype(np.float64), -np.inf)
        return ids[masked.argmax(axis=1)].tolist()

    def _answer(self, example: QAExample, windows: list[tuple[np.ndarray, np.ndarray]]) -> str:
        from .qa_spans import best_answer

        text, _score = best_answer([s for s, _ in windows], [e for _, e in windows], example.offsets,
                                   example.context, max_answer_length=self.opts_["max_answer_length"],
                                   n_best=self.opts_["n_best"])
        return text

    def _qa_logits(self, batch: Sequence[QAExample]) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """Every window of the batch, length-sorted into chunks no larger than the batch itself."""
        flat = [(e, w) for e, ex in enumerate(batch) for w in range(len(ex.windows))]
        order = sorted(range(len(flat)), key=lambda i: len(batch[flat[i][0]].windows[flat[i][1]].input_ids))
        chunk = max(len(batch), max(len(ex.windows) for ex in batch))
        out: list[list[Any]] = [[None] * len(ex.windows) for ex in batch]
        for lo in range(0, len(order), chunk):
            part = [flat[i] for i in order[lo:lo + chunk]]
            items = [batch[e].windows[w] for e, w in part]
            start, end = self._forward(items, ("start_logits", "end_logits"))
            for row, ((e, w), item) in enumerate(zip(part, items)):
                n = len(item.input_ids)
                out[e][w] = (start[row, :n], end[row, :n])
        return out

    def _forward(self, items: list[Encoded], fields: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        """One padded forward pass; the named outputs as fp32 numpy arrays."""
        return self._run(self._tensors(items), fields)

    def _run(self, inputs: dict[str, Any], fields: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        if self.session_ is not None:
            return self.session_.run(inputs, fields)
        out = self._outputs(inputs)
        return tuple(getattr(out, f).float().cpu().numpy() for f in fields)

    def _outputs(self, inputs: dict[str, Any]) -> Any:
        import torch

        with torch.inference_mode(), hf.precision(self.device, self.dtype()):
            return (self.model_ if self.compiled_ is None else self.compiled_)(**inputs)

    def _tensors(self, items: Sequence[Encoded]) -> dict[str, Any]:
        """Dynamic padding to the longest item of this batch, with its attention mask."""
        if self.model_ is None:
            raise UserError("encoder: call fit() before predict()")
        ids, mask = hf.padded([it.input_ids for it in items], self.pad_id_)
        out = {"input_ids": ids, "attention_mask": mask}
        if self.use_token_types_:
            out["token_type_ids"] = np.zeros_like(ids) if items[0].token_type_ids is None else \
                hf.padded([it.token_type_ids for it in items], 0)[0]
        if self.session_ is not None:
            return out  # ONNX Runtime takes the numpy arrays as they are
        return hf.to_device(out, self.device)

    # --- facts for the Result ---------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable); frozen: the backbone plus the probe, of which only the probe trains."""
        total, trainable = hf.count_parameters(self.model_) if self.model_ is not None else (0, 0)
        head = probe.probe_parameters(self.probe_)
        return total + head, trainable + head

    def synchronize(self) -> None:
        hf.synchronize(self.device)

    def weights(self) -> str:
        return self.fitted_.weights if self.fitted_ is not None else self.opts_["weights"]

    def revision(self) -> str | None:
        """Which exact model ran (hf.checkpoint_revision); before fit, a local folder's own hash."""
        if self.fitted_ is not None:
            return self.fitted_.revision
        return hf.folder_revision(self.model, self.opts_["weights"])

    def dtype(self) -> str | None:
        """What runs: bf16/fp16 autocast on CUDA when asked (auto: bf16), fp32 on CPU and on ONNX Runtime."""
        if self.opts_["backend"] == "onnxruntime":
            return "fp32"
        return hf.default_dtype(self.device, self.opts_["dtype"]) if self.device.startswith("cuda") else "fp32"

    def runtime(self) -> tuple[str, str | None]:
        return self.opts_["backend"], None if self.opts_["quantize"] == "none" else self.opts_["quantize"]

    def settings(self) -> dict[str, Any]:
        """The options with every default filled in (max_length per task kind when not set)."""
        out = super().settings()
        out.update({k: v for k, v in self.opts_.items() if k in self.shaping_options()})
        out["dtype"] = self.dtype()
        out["max_length"] = self.opts_["max_length"] or dict(MAX_LENGTH)
        for key, default in (("backend", "torch"), ("quantize", "none")):  # the defaults keep older resume keys
            if out.get(key) == default:
                out.pop(key)
        if self.mode == "frozen":
            out["probe"] = (f"logistic regression on pooled features, C by {probe.PROBE_FOLDS}-fold CV over "
                            f"{list(probe.PROBE_CS)}, max_iter={probe.PROBE_MAX_ITER}")
        else:
            out.pop("pair_encoding")
        return out


# ---------------------------------------------------------------------------------------
# helpers
def _resolve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in and types checked, so a bad value fails before any model loads."""
    opts = dict(options)
    if opts["weights"] not in hf.WEIGHTS:
        raise ModelError(f"--weights {opts['weights']}: expected one of {', '.join(hf.WEIGHTS)}")
    hf.default_dtype("cpu", opts["dtype"])  # validates the name
    for key, low in (("doc_stride", 0), ("max_answer_length", 1), ("n_best", 1)):
        opts[key] = _int_option(key, opts[key], low)
    if opts["max_length"] is not None:
        opts["max_length"] = _int_option("max_length", opts["max_length"], 8)
    opts["label_map"] = parse_label_map(opts["label_map"])
    opts["trust_remote_code"] = bool(opts["trust_remote_code"])
    opts["compile"] = bool(opts["compile"])
    for key, allowed in (("backend", onnx_runtime.BACKENDS), ("quantize", onnx_runtime.QUANTIZATIONS)):
        if opts[key] not in allowed:
            raise UserError(f"--{key} {opts[key]!r}: expected one of {', '.join(allowed)}")
    if opts["quantize"] != "none" and opts["backend"] != "onnxruntime":
        raise UserError(f"--quantize {opts['quantize']} runs on ONNX Runtime; add --backend onnxruntime")
    if opts["compile"] and opts["backend"] != "torch":
        raise UserError("--compile is torch.compile; ONNX Runtime optimises its own graph, drop --compile")
    if opts["pair_encoding"] not in probe.PAIR_ENCODINGS:
        raise UserError(f"--pair-encoding {opts['pair_encoding']!r}: expected one of {', '.join(probe.PAIR_ENCODINGS)}")
    return opts


def _int_option(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit() \
            or int(value) < low:
        raise UserError(f"--{key.replace('_', '-')} {value!r}: expected an integer >= {low}")
    return int(value)


def _ids(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _pad_id(tokenizer: Any, config: Any) -> int:
    """The padding id; a GPT-style tokenizer without one pads with its end-of-text token (never inside
    a text it encodes), as transformers' own examples do."""
    for value in (getattr(tokenizer, "pad_token_id", None), getattr(config, "pad_token_id", None),
                  getattr(tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None)):
        if isinstance(value, int) and value >= 0:
            return value
    return 0  # padded positions are masked out anyway


def _context_offsets(offsets: Sequence[Sequence[int]], sequence_ids: Sequence[int | None]) -> np.ndarray:
    """(n_tokens, 2) character offsets, -1 on every token that is not context (question, specials)."""
    arr = np.asarray(offsets, dtype=np.int64).reshape(-1, 2).copy()
    arr[np.asarray([s != 1 for s in sequence_ids], dtype=bool)] = -1
    return arr


def _span_key(task: "TaskSpec", train: "Split") -> dict[str, str]:
    """QA train data without answer offsets: its spans are found by the answer text since this key, and a
    cache entry from before, trained on 'no answer' in every window, must not be reused. Data with offsets
    keeps the key it had."""
    if task.kind == "extractive_qa" and any(task.answer_starts(r) is None for r in train.rows):
        return {"answer_spans": "by-text"}
    return {}
