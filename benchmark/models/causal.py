"""Decoder-only checkpoints (Llama, SmolLM, Qwen, GPT-2): every task as a prompt, the way
lm-evaluation-harness scores them.

* Classification ranks the task's answer choices (`choices`, else the label names) by the summed
  log-likelihood of each continuation after the prompt: lm-eval's `multiple_choice` with `acc`
  (no length normalisation). The continuation's tokens are those of the prompt + continuation
  encoding past the prompt's own encoding, as lm-eval splits them.
* QA generates greedily with a KV cache from left-padded prompts, stopping at a newline or the
  end-of-sequence token, at most the task's `max_new_tokens`.
* Inputs fit `max_length` and the model's positions (`hf.position_limit`), less `max_new_tokens`
  where it generates: a longer prompt loses its start instead of overflowing the position table.
* Instruct models: when the tokenizer has a chat template the prompt is a user turn and the answer
  the assistant's (`chat_template: off` turns this off). Few-shot examples become earlier turns.
* `num_fewshot`: K solved examples drawn once per (task, seed) from the train split, never from
  an evaluated split, the same K before every question; recorded in the Result's settings.
* `finetune` trains every weight on the answer continuations (the label's choice, or the first
  reference answer followed by end-of-sequence) with the prompt tokens and the padding (end-of-
  sequence where the tokenizer has no pad token) masked out of the loss, through the same Trainer
  and trained-weights cache as the other adapters.
* A packaged GGUF checkpoint (packaged.py) is dequantized once and cached as safetensors under the
  file's hash, so later runs load in seconds.

torch and transformers are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import ModelError, UserError, choices_hint
from . import training
from .base import Adapter, Fitted, option
from .training import TRAINING_OPTIONS, TrainingOptions

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks import TaskSpec
    from .hf import Checkpoint

CHAT_TEMPLATE = ("auto", "off")
FEWSHOT_SEPARATOR = "\n\n"   # lm-eval's default between solved examples
TARGET_DELIMITER = " "       # lm-eval's default between a prompt and its answer
STOP = "\n"                  # generation ends at the first newline (and at end-of-sequence)
# Supervised fine-tuning of a small LM: a common starting recipe (not tuned here).
TRAIN_DEFAULTS = {"epochs": 3.0, "learning_rate": 2e-5, "batch_size": 16}


@dataclass(frozen=True)
class CausalOptions(TrainingOptions):
    trust_remote_code: bool = option(False, "allow a checkpoint's own Python code to run")
    dtype: str = option("auto", "auto | fp32 | bf16 | fp16 (autocast, CUDA only; auto runs fp32 on the CPU)")
    num_fewshot: int = option(0, "solved train examples before each prompt (a seeded draw; never the evaluated split)")
    chat_template: str = option("auto", "auto: an instruct model's chat template when its tokenizer has one | off")
    max_length: int = option(2048, "prompt + answer tokens kept, at most the model's positions (generation keeps room "
                                   "for the task's max_new_tokens); a longer prompt loses its start")


@dataclass(frozen=True)
class Prompt:
    """One example ready for the model: the prompt's ids, and for classification each choice's ids."""

    context: np.ndarray
    choices: tuple[np.ndarray, ...] = ()


class CausalAdapter(Adapter):
    """Decoder-only language models, zero- and few-shot."""

    name = "causal"
    kinds = frozenset({"classification", "extractive_qa", "closed_book_qa"})
    modes = ("auto", "zero-shot", "finetune")
    mode_notes = {"frozen": "a decoder-only model is scored by its own next-token predictions; there is no "
                            "separate head to train over frozen features; use --mode finetune or zero-shot"}
    Options = CausalOptions

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        from .hf import run_dtype

        o = self.options
        if o.chat_template not in CHAT_TEMPLATE:
            raise UserError(f"--chat-template {o.chat_template}; {choices_hint(str(o.chat_template), CHAT_TEMPLATE)}")
        if isinstance(o.num_fewshot, bool) or not isinstance(o.num_fewshot, int) or o.num_fewshot < 0:
            raise UserError(f"--num-fewshot {o.num_fewshot!r}: expected a whole number >= 0")
        if isinstance(o.max_length, bool) or not isinstance(o.max_length, int) or o.max_length < 8:
            raise UserError(f"{self.name}: max_length must be an integer >= 8 (prompt tokens), got {o.max_length!r}")
        self.dtype_ = run_dtype(self.name, self.device, str(o.dtype))
        self.ckpt_: Checkpoint | None = None
        self.model_: Any = None
        self.tokenizer_: Any = None
        self.revision_: str | None = None
        self.fitted_: Fitted | None = None
        self.max_length_: int = o.max_length   # the option, capped at the loaded model's position limit
        self.positions_: int | None = None      # that limit (None: relative positions, no limit)
        self.shots_: list[dict[str, Any]] = []
        self.chat_ = False
        self.load_seconds_: float | None = None
        self.stopping_: dict[str, Any] = {}  # generate()'s stop arguments, settled once per tokenizer

    def needs_train_split(self) -> bool:
        return self.mode == "finetune" or self.options.num_fewshot > 0  # K-shot draws from the train split

    # --- fit: load once, draw the few-shot examples per task -----------------------------------
    def fit(self, task: "TaskSpec", train: "Split | None") -> Fitted:
        reason = self.unsupported_reason(task)
        if reason:
            raise UserError(reason)
        self.shots_ = fewshot_rows(task, train, self.options.num_fewshot, self.seed)  # a bad K fails before loading
        if self.mode == "finetune" and train is None:
            raise UserError(f"--mode finetune: {task.name} has no train split to train on")
        if self.model_ is None or self.mode == "finetune":  # each task fine-tunes its own copy
            self._load()
        if self.mode != "finetune":
            self.fitted_ = Fitted(mode="zero-shot", weights="pretrained", revision=self.revision_,
                                  trainable_parameters=0, labelled_examples=len(self.shots_))
            return self.fitted_
        self.fitted_ = self._fit_trained(task, train)
        return self.fitted_

    def _fit_trained(self, task: "TaskSpec", train: "Split") -> Fitted:
        """Every weight trained on the answer continuations, cached under everything that shapes them."""
        from transformers import AutoModelForCausalLM

        budget = training.Budget.from_options(dataclasses.asdict(self.options), **TRAIN_DEFAULTS)

        def fit_new() -> dict[str, Any]:
            import time

            rows = training.subsample(train.rows, budget.max_examples, self.seed)
            start = time.perf_counter()
            features = self.training_features(task, rows)
            feature_seconds = round(time.perf_counter() - start, 4)
            # The padding _pad_id() gives (eos where the tokenizer has no pad token, as GPT-2 and Llama),
            # on the tokenizer's own side, as DataCollatorForSeq2Seq pads where a pad token exists.
            collator = functools.partial(pad_training_batch, pad_id=self._pad_id(),
                                         side=str(getattr(self.tokenizer_, "padding_side", "right")))
            self.model_.train()
            stats = training.train(self.model_, features, collator, budget, device=self.device, seed=self.seed,
                                   quiet=self.quiet)
            return {"train_seconds": stats.seconds, "feature_seconds": feature_seconds, "training": stats.record(),
                    "model": self.model, "task": task.name}

        def load(folder: Path) -> dict[str, Any] | None:
            meta = training.load_meta(folder)
            if meta is not None:
                self.model_ = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).float()
            return meta

        options = {k: v for k, v in dataclasses.asdict(self.options).items() if k not in TRAINING_OPTIONS}
        meta, from_cache = training.cached_fit(
            self.cache_dir() / "causal",
            dict(model=self.model, revision=self.revision_, task=task.name, task_version=task.version,
                 task_sha256=task.sha256, train=train.info.fingerprint, budget=budget, seed=self.seed,
                 options=options, chat=self.chat_),
            fit_new, lambda folder, meta: training.save_folder(folder, self.model_, self.tokenizer_, meta), load,
            world=self.world)
        self.model_.to(self.device).eval()
        return Fitted(mode="finetune", weights="trained", revision=self.revision_, train_seconds=meta["train_seconds"],
                      feature_seconds=meta.get("feature_seconds"), training=meta.get("training"),
                      trainable_parameters=self.parameter_counts()[1], from_cache=from_cache)

    def training_features(self, task: "TaskSpec", rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Prompt + answer token ids, the loss on the answer only: the label's choice for
        classification, the first reference answer and end-of-sequence for QA (so it learns to stop)."""
        items = self.encode(task, rows, answers=True)
        eos = self.tokenizer_.eos_token_id
        out = []
        for row, item in zip(rows, items):
            if task.kind == "classification":
                answer = item.choices[task.label_index(row)]
            else:
                answer = item.choices[0] if eos is None else np.concatenate([item.choices[0], [eos]])
            ids = np.concatenate([item.context, answer]).tolist()
            labels = [-100] * len(item.context) + [int(t) for t in answer]
            ids, labels = ids[-self.max_length_:], labels[-self.max_length_:]  # an answer longer than them all
            out.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
        return out

    def _load(self) -> None:
        import time

        from transformers import AutoModelForCausalLM

        from .hf import checkpoint_revision, float32, load_model, load_tokenizer, resolve_checkpoint

        remote = self.options.trust_remote_code
        ckpt = resolve_checkpoint(self.model, trust_remote_code=remote, online=self.online)
        if ckpt.is_seq2seq:
            raise ModelError(f"{self.model}: an encoder-decoder model; the text2text adapter runs it")
        start = time.perf_counter()
        packaged = ckpt.packaged
        if packaged is not None and packaged.gguf_file:
            ckpt = dataclasses.replace(ckpt, source=str(self._dequantized(ckpt)))
        self.tokenizer_ = load_tokenizer(ckpt, trust_remote_code=remote)
        self.model_ = load_model(AutoModelForCausalLM, ckpt, seed=self.seed, trust_remote_code=remote,
                                 dtype=float32()).float().to(self.device).eval()
        self.load_seconds_ = time.perf_counter() - start
        self._cap_length()
        self.ckpt_ = dataclasses.replace(ckpt, packaged=packaged)
        self.revision_ = checkpoint_revision(self.ckpt_)
        self.chat_ = self.options.chat_template == "auto" and bool(getattr(self.tokenizer_, "chat_template", None))
        self.stopping_ = self._stopping()
        if not self.quiet and self.world.is_main:
            import sys

            print(f"{self.model}: loaded in {self.load_seconds_:.1f} s"
                  + (f" ({packaged.weights_format})" if packaged is not None and packaged.gguf_file else ""),
                  file=sys.stderr)

    def _cap_length(self) -> None:
        """Prompt + answer within the model's positions (2048 is more than GPT-2's 1024). Settings keep
        the option's value; the cap follows from the model's revision in the resume key."""
        from .hf import capped_length

        self.positions_, self.max_length_ = capped_length(self.model, self.model_.config, self.options.max_length,
                                                          "max_length" in self.given_options())

    def _dequantized(self, ckpt: "Checkpoint") -> Path:
        """The GGUF dequantized to an ordinary safetensors folder, once, keyed by the file's sha256."""
        from ..storage import write_folder_atomic

        entry = ckpt.packaged
        folder = self.cache_dir() / "gguf" / entry.gguf_sha256[:24]
        if (folder / "dequantized.json").is_file():
            return folder
        if not self.quiet and self.world.is_main:
            import sys

            print(f"{self.model}: dequantizing {entry.gguf_file} once (cached in {folder})", file=sys.stderr)

        def fill(tmp: Path) -> None:
            from safetensors.torch import save_model

            from .hf import float32
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                model = AutoModelForCausalLM.from_pretrained(ckpt.source, gguf_file=entry.gguf_file, dtype=float32())
                tokenizer = AutoTokenizer.from_pretrained(ckpt.source, gguf_file=entry.gguf_file)
            except ImportError as exc:
                raise ModelError(f"{self.model}: {str(exc).splitlines()[0]}; install it: pip install gguf")
            save_model(model, str(tmp / "model.safetensors"))  # tied weights stored once
            config = model.config
            if hasattr(config, "quantization_config"):  # the weights are plain fp32 now: load them as such
                del config.quantization_config
            config.save_pretrained(tmp)
            model.generation_config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "dequantized.json").write_text(json.dumps(
                {"source": entry.hub_id, "gguf_file": entry.gguf_file, "sha256": entry.gguf_sha256,
                 "format": entry.weights_format}, indent=2))

        write_folder_atomic(folder, fill)
        return folder

    def variant(self) -> str:
        """'K-shot' and 'no chat template' where asked: each prompt format is its own row."""
        parts = [f"{self.options.num_fewshot}-shot" if self.options.num_fewshot else "",
                 "no chat template" if self.options.chat_template == "off" else ""]
        return ", ".join(p for p in parts if p)

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        entry = self._packaged_entry()
        if entry is not None and entry.gguf_file:
            out["weights_format"] = entry.weights_format
        return out

    def _packaged_entry(self) -> Any:
        if self.ckpt_ is not None:
            return self.ckpt_.packaged
        from .packaged import find

        return find(self.model)

    # --- prompts ----------------------------------------------------------------------------------
    def prompt_text(self, task: "TaskSpec", row: dict[str, Any]) -> str:
        """The full text before the answer: few-shot examples, then this example's prompt (as a chat
        for instruct models)."""
        if self.chat_:
            messages: list[dict[str, str]] = []
            for shot in self.shots_:
                messages += [{"role": "user", "content": task.render_prompt(shot)},
                             {"role": "assistant", "content": answer_text(task, shot)}]
            messages.append({"role": "user", "content": task.render_prompt(row)})
            return self.tokenizer_.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        blocks = [task.render_prompt(shot) + TARGET_DELIMITER + answer_text(task, shot) for shot in self.shots_]
        return FEWSHOT_SEPARATOR.join(blocks + [task.render_prompt(row)])

    def encode(self, task: "TaskSpec", rows: Sequence[dict[str, Any]], answers: bool = False) -> list[Prompt]:
        """Every prompt (and every prompt + choice) tokenised in batched calls, once per split.
        `answers`: QA prompts also carry their first reference answer as their one choice (training)."""
        if self.model_ is None:
            raise RuntimeError(f"{self.name}: call fit() before encode()")
        if not rows:
            return []
        contexts = [self.prompt_text(task, row) for row in rows]
        # No special tokens added, as lm-eval encodes for decoder-only models (a chat template writes its own)
        ctx_ids = self.tokenizer_(contexts, add_special_tokens=False)["input_ids"]
        if task.kind != "classification" and not answers:
            room = self._generation_room(task)
            return [Prompt(self._clip(np.asarray(ids, dtype=np.int64), room)) for ids in ctx_ids]
        delimiter = "" if self.chat_ else TARGET_DELIMITER
        options = [task.answer_choices] * len(rows) if task.kind == "classification" else \
            [(task.answer_list(row)[0],) for row in rows]
        wholes = [c + delimiter + choice for c, choices in zip(contexts, options) for choice in choices]
        whole_ids = self.tokenizer_(wholes, add_special_tokens=False)["input_ids"]
        k = len(options[0])
        out = []
        for i, ids in enumerate(ctx_ids):
            conts = tuple(np.asarray(whole_ids[i * k + j][len(ids):], dtype=np.int64) for j in range(k))
            if any(len(c) == 0 for c in conts):
                raise ModelError(f"{self.model}: an answer choice of {task.name} tokenises to nothing after the "
                                 "prompt; check the task's choices")
            longest = max(len(c) for c in conts)
            if task.kind != "classification":  # a training answer, and the eos training_features adds
                room = max(self.max_length_ - longest - (self.tokenizer_.eos_token_id is not None), 0)
            else:
                room = self.max_length_ - longest
                if room < 1:
                    raise UserError(f"{self.model}: a {longest}-token answer choice of {task.name} leaves no room for "
                                    f"the prompt in {self.max_length_} tokens; use a larger --max-length")
            out.append(Prompt(self._clip(np.asarray(ids, dtype=np.int64), room), conts))
        return out

    def _generation_room(self, task: "TaskSpec") -> int:
        """Prompt tokens a generating task keeps: --max-length, and the model's positions less the
        answer's max_new_tokens (a prompt clipped to the limit alone overflows while it answers)."""
        if self.positions_ is None:
            return self.max_length_
        room = min(self.max_length_, self.positions_ - task.max_new_tokens)
        if room < 1:
            raise ModelError(f"{self.model}: its {self.positions_} positions leave no room for a prompt before "
                             f"{task.name}'s {task.max_new_tokens} new tokens; use a model with more positions")
        return room

    def _clip(self, ids: np.ndarray, room: int) -> np.ndarray:
        """Keep the end of a prompt that is too long: the question sits there, few-shot examples first."""
        return ids[len(ids) - room:] if len(ids) > room else ids

    def length(self, item: Prompt) -> int:
        return len(item.context) + max((len(c) for c in item.choices), default=0)

    # --- predict ----------------------------------------------------------------------------------
    def predict(self, task: "TaskSpec", batch: Sequence[Prompt]) -> list[Any]:
        if not batch:
            return []
        if task.kind == "classification":
            scores = self.choice_log_likelihoods(batch)
            return [int(np.argmax(row)) for row in scores]  # the first of equal scores: the earlier label
        return self.generate(batch, task.max_new_tokens)

    def choice_log_likelihoods(self, batch: Sequence[Prompt], padding_side: str = "left") -> list[list[float]]:
        """log p(choice | prompt) for every (item, choice) of a batch: one forward over the prompts
        that keeps their KV cache, then one over every choice with that cache repeated per choice,
        so a prompt is computed once however many choices follow it. Positions come from the
        attention mask, so padding on either side gives the same numbers."""
        import torch

        from .hf import precision, sequence_log_probs

        k = len(batch[0].choices)
        if any(len(item.choices) != k for item in batch):
            raise ValueError("every item of a batch must have the same number of choices")
        ctx, ctx_mask = self._pad([item.context for item in batch], padding_side)
        cont, cont_mask = self._pad([c for item in batch for c in item.choices], "right")
        n, width = ctx.shape
        lengths = ctx_mask.sum(-1)
        last = width - 1 - ctx_mask.flip(-1).argmax(-1)             # each prompt's last real position
        steps = torch.arange(cont.shape[1], device=cont.device)
        with torch.inference_mode(), precision(self.device, self.dtype_):
            out = self.model_(input_ids=ctx, attention_mask=ctx_mask, position_ids=(ctx_mask.cumsum(-1) - 1).clamp(min=0),
                              use_cache=True)
            first = out.logits[torch.arange(n, device=ctx.device), last]   # predicts each choice's first token
            cache = out.cache  # transformers 5: `cache` (was past_key_values)
            cache.batch_repeat_interleave(k)
            logits = self.model_(input_ids=cont, attention_mask=torch.cat([ctx_mask.repeat_interleave(k, 0), cont_mask], 1),
                                 position_ids=lengths.repeat_interleave(k)[:, None] + steps[None, :],
                                 cache=cache, use_cache=True).logits
        predicting = torch.cat([first.repeat_interleave(k, 0)[:, None, :], logits[:, :-1, :]], dim=1)
        scores = sequence_log_probs(predicting, cont.masked_fill(cont_mask == 0, -100)).view(n, k)
        return scores.tolist()

    def generate(self, batch: Sequence[Prompt], max_new_tokens: int) -> list[str]:
        """Greedy answers from left-padded prompts, cut at the first newline; the KV cache is on."""
        import torch

        from .hf import precision

        ids, mask = self._pad([item.context for item in batch], "left")
        eos = [i for i in {self.tokenizer_.eos_token_id, getattr(self.model_.generation_config, "eos_token_id", None)}
               if isinstance(i, int)]
        with torch.inference_mode(), precision(self.device, self.dtype_):
            out = self.model_.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                                       max_new_tokens=max_new_tokens, pad_token_id=self._pad_id(),
                                       eos_token_id=eos or None, use_cache=True, **self.stopping_)
        texts = self.tokenizer_.batch_decode(out[:, ids.shape[1]:].tolist(), skip_special_tokens=True)
        return [text.split(STOP, 1)[0].strip() for text in texts]

    def _stopping(self) -> dict[str, Any]:
        """Stop at a newline, where the vocabulary can write one (otherwise the model never will)."""
        ids = self.tokenizer_(STOP, add_special_tokens=False)["input_ids"]
        if STOP not in self.tokenizer_.decode(ids):
            return {}
        return {"stop_strings": [STOP], "tokenizer": self.tokenizer_}

    def _pad_id(self) -> int:
        pad = self.tokenizer_.pad_token_id
        if pad is None:
            pad = self.tokenizer_.eos_token_id
        if pad is None:
            raise ModelError(f"{self.model}: the tokenizer defines neither a pad nor an end-of-sequence token")
        return int(pad)

    def _pad(self, rows: Sequence[np.ndarray], side: str, fill: int | None = None) -> tuple[Any, Any]:
        """Pad to the longest row on `side`; (ids, mask) on the device."""
        import torch

        fill = self._pad_id() if fill is None else fill
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), fill, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r)
            span = slice(width - n, width) if side == "left" else slice(0, n)
            ids[i, span] = torch.from_numpy(np.asarray(r, dtype=np.int64))
            mask[i, span] = 1
        return ids.to(self.device), mask.to(self.device)

    # --- facts for the Result -----------------------------------------------------------------
    def parameter_counts(self) -> tuple[int, int]:
        from .hf import count_parameters

        if self.model_ is None:
            return (0, 0)
        total, trainable = count_parameters(self.model_)
        return (total, trainable if self.mode == "finetune" else 0)

    def synchronize(self) -> None:
        from .hf import synchronize

        synchronize(self.device)

    def weights(self) -> str:
        return self.fitted_.weights if self.fitted_ is not None else "pretrained"

    def revision(self) -> str | None:
        """Which exact model ran (hf.checkpoint_revision); before it loads, a local folder's own hash."""
        from .hf import folder_revision

        return self.revision_ if self.ckpt_ is not None else folder_revision(self.model)

    def dtype(self) -> str | None:
        return self.dtype_


# ---------------------------------------------------------------------------------------
def pad_training_batch(features: Sequence[dict[str, Any]], pad_id: int, side: str = "right") -> dict[str, Any]:
    """Training rows padded to the longest: ids with `pad_id`, mask 0, labels -100 so padding never
    trains. Not the tokenizer's own pad(), which refuses a tokenizer without a pad token."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    fills = {"input_ids": pad_id, "attention_mask": 0, "labels": -100}
    out = {}
    for key, fill in fills.items():
        rows = []
        for f in features:
            row, gap = list(f[key]), [fill] * (width - len(f[key]))
            rows.append(row + gap if side == "right" else gap + row)
        out[key] = torch.tensor(rows, dtype=torch.int64)
    return out


def fewshot_rows(task: "TaskSpec", train: "Split | None", k: int, seed: int) -> list[dict[str, Any]]:
    """K solved examples from the train split, drawn once per (task, seed): the same K before every
    question, so a prediction never depends on which others share its batch."""
    if k == 0:
        return []
    if train is None:
        raise UserError(f"--num-fewshot {k}: {task.name} has no train split to draw examples from")
    if k > len(train.rows):
        raise UserError(f"--num-fewshot {k}: {task.name}'s train split has only {len(train.rows)} examples; "
                        "ask for fewer")
    picks = random.Random(f"fewshot:{task.name}:{seed}").sample(range(len(train.rows)), k)
    return [train.rows[i] for i in picks]


def answer_text(task: "TaskSpec", row: dict[str, Any]) -> str:
    """A solved example's answer: its label's choice, or its first reference answer."""
    if task.kind == "classification":
        return task.answer_choices[task.label_index(row)]
    return task.answer_list(row)[0]
