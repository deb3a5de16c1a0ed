"""Encoders on ONNX Runtime: the deployment runtime beside eager PyTorch.

A model with its task head is exported once with `torch.onnx` (the TorchScript exporter, opset 17,
dynamic batch and sequence axes) and cached under a hash of its weights, its config and the
recipe, so a fine-tuned head, a checkpoint and a random model each get their own file and a
re-run loads in milliseconds. Hugging Face Optimum's ONNX exporter was the other candidate; its
current release (optimum-onnx 0.1.0) requires transformers < 4.58, and this project runs 5.x.

The session runs with ONNX Runtime's full graph optimisation (`ORT_ENABLE_ALL`). On these BERT exports
its CPU pass fuses the bias into GELU (BiasGelu) and the attention scale into the query-key product
(FusedMatMul), and leaves attention, the residual adds and LayerNorm as separate ops. `fusions` adds
steps of the offline transformer optimiser (`onnxruntime.transformers.optimizer`, FUSION_STEPS);
`make perf` times them one at a time. On this project's CPU none made the pass more than 3% faster;
SkipLayerNormalization made it 5-10% slower (its kernel took 8-15% of the kernel time, every Add
and LayerNorm of the unfused pass together 3-6%), and the embedding LayerNorm fusion on top of attention
cost about as much. So an export has none by default.

`int8` is dynamic quantization of the weights of every MatMul/Gemm (ONNX Runtime's quantizer,
activations quantized per call): a different model, recorded as such. Weights get a scale per
output column and 7 bits (`per_channel`, `reduce_range`). One scale per matrix cost fine-tuned
MiniLM 0.9 to 1.5 points of SST-2 accuracy, depending on which sentences shared a batch; per-column
scales cost none at the same speed (make perf, backends). 7 bits keep the products clear of the int16
saturation of CPUs without VNNI that the quantizer's documentation warns of, so one file serves any
x86 CPU; on this project's VNNI CPU they measured the same as 8.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserError
from ..storage import stable_hash, write_folder_atomic
from . import hf

BACKENDS = ("torch", "onnxruntime")
QUANTIZATIONS = ("none", "int8")
OPSET = 17
INSTALL = "pip install onnxruntime onnx"
RECIPE_VERSION = 3  # bump when the export or quantization recipe changes: old cached files stop matching
# The offline optimiser's steps: step -> (its FusionOptions flags, the op it puts in the graph). GELU and
# LayerNorm recognition stay on under every step; the export already holds LayerNormalization ops.
FUSION_STEPS: dict[str, tuple[tuple[str, ...], str]] = {
    "bias_gelu": (("enable_bias_gelu",), "BiasGelu"),
    "attention": (("enable_attention",), "Attention"),
    "skip_layer_norm": (("enable_skip_layer_norm", "enable_bias_skip_layer_norm"), "SkipLayerNormalization"),
    "embed_layer_norm": (("enable_embed_layer_norm",), "EmbedLayerNormalization"),
}


def require() -> Any:
    """onnxruntime and onnx, or one line that names the install command."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as exc:
        raise UserError(f"--backend onnxruntime needs the '{exc.name}' package, which is not installed; "
                        f"install it: {INSTALL}") from None
    return onnxruntime


def weights_hash(model: Any) -> str:
    """sha256 over every tensor of the state dict (name, dtype, shape, bytes) and the config."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update((t.float() if t.dtype == torch.bfloat16 else t).numpy().tobytes())
    h.update(model.config.to_json_string(use_diff=False).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Export:
    """What a session runs: the file, how it was made, and what making it cost."""

    path: Path
    weights_sha256: str
    quantization: str
    fusions: tuple[str, ...]  # offline optimiser steps applied (FUSION_STEPS), in FUSION_STEPS order
    seconds: float          # export (+ fusion + quantization); 0 when the file came from the cache
    from_cache: bool


def export(model: Any, inputs: Sequence[str], outputs: Sequence[str], cache_dir: Path, *,
           quantization: str = "none", fusions: Sequence[str] = ()) -> Export:
    """The model as an ONNX file in `cache_dir/onnx/<key>/`, made once per weights and recipe."""
    ort = require()
    unknown = sorted(set(fusions) - set(FUSION_STEPS))
    if unknown:
        raise ValueError(f"unknown fusion step(s) {', '.join(unknown)}; expected some of {', '.join(FUSION_STEPS)}")
    steps = tuple(step for step in FUSION_STEPS if step in fusions)
    digest = weights_hash(model)
    recipe = {"weights": digest, "inputs": list(inputs), "outputs": list(outputs), "opset": OPSET,
              "quantization": quantization, "fuse": list(steps) or False,  # False: the key unfused files always had
              "recipe": RECIPE_VERSION, "onnxruntime": ort.__version__}
    folder = cache_dir / "onnx" / stable_hash(recipe, 24)
    final = folder / "model.onnx"
    if final.is_file():
        return Export(final, digest, quantization, steps, 0.0, True)
    start = time.perf_counter()

    def fill(tmp: Path) -> None:
        path = _torch_export(model, inputs, outputs, tmp / "exported.onnx")
        if steps:
            path = _fuse(path, model.config, tmp / "fused.onnx", steps)
        if quantization == "int8":
            path = _quantize_int8(path, tmp / "int8.onnx", fused=bool(steps))
        path.rename(tmp / "model.onnx")
        (tmp / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
        for extra in tmp.glob("*.onnx*"):
            if extra.name != "model.onnx":
                extra.unlink()

    write_folder_atomic(folder, fill)
    return Export(final, digest, quantization, steps, round(time.perf_counter() - start, 3), False)


def _torch_export(model: Any, inputs: Sequence[str], outputs: Sequence[str], path: Path) -> Path:
    """TorchScript-based export with dynamic batch and sequence axes, traced on a two-row example
    of unequal lengths so the mask path is not specialised away."""
    import torch

    example = {"input_ids": torch.tensor([[101, 2023, 2003, 102], [101, 102, 0, 0]]),
               "attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),
               "token_type_ids": torch.zeros(2, 4, dtype=torch.long)}
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    if vocab:
        example["input_ids"] = example["input_ids"] % vocab
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    axes.update({name: {0: "batch", 1: "sequence"} if name != "logits" else {0: "batch"} for name in outputs})
    wrapped = _outputs_module()(model, list(inputs), list(outputs)).eval()
    # The eager attention graph (MatMul, Softmax) exports without SDPA's NaN guards and ran 2-3% faster
    # in ONNX Runtime than the SDPA export, at batch size 1 too, on all-MiniLM-L6-v2 (1 thread).
    with hf.eager_attention(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(wrapped, tuple(example[n] for n in inputs), str(path), input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return path


def _outputs_module() -> Any:
    import torch

    class Outputs(torch.nn.Module):
        """Positional inputs in, the named output fields out (ONNX has no ModelOutput objects)."""

        def __init__(self, model: Any, inputs: list[str], outputs: list[str]) -> None:
            super().__init__()
            self.model, self.inputs, self.outputs = model, inputs, outputs

        def forward(self, *args: Any) -> Any:
            out = self.model(**dict(zip(self.inputs, args)))
            return tuple(getattr(out, name) for name in self.outputs)

    return Outputs


def _fuse(path: Path, config: Any, out: Path, steps: Sequence[str]) -> Path:
    """ONNX Runtime's offline transformer optimiser with only the given FUSION_STEPS switched on."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    for step, (flags, _) in FUSION_STEPS.items():
        for flag in flags:
            setattr(options, flag, step in steps)
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
    optimizer.optimize_model(str(path), model_type="bert", num_heads=int(heads), hidden_size=int(hidden),
                             optimization_options=options).save_model_to_file(str(out))
    return out


def _quantize_int8(path: Path, out: Path, fused: bool) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # the quantizer's recommended pre-processing (ONNX shape inference and graph clean-up); its symbolic
    # shape inference is skipped: it failed on tiny BERT exports and left temporary files in the cwd
    prepared = out.with_name("prepared.onnx")
    quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    # the fused graph holds contrib ops that shape inference cannot type: say they are fp32
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT} if fused else {}
    quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     extra_options=extra)
    return out


class Session:
    """An InferenceSession fed padded numpy arrays; outputs come back as fp32 numpy."""

    def __init__(self, path: Path, inputs: Sequence[str], outputs: Sequence[str], device: str = "cpu",
                 threads: int | None = None, level: str = "all") -> None:
        ort = require()
        options = ort.SessionOptions()
        levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
        options.graph_optimization_level = levels[level]  # basic: constant folding only (make perf compares)
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            index = device.split(":", 1)[1] if ":" in device else "0"
            providers = [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.providers = self.session.get_providers()

    def run(self, arrays: dict[str, np.ndarray], fields: Sequence[str]) -> tuple[np.ndarray, ...]:
        got = self.session.run(list(fields), {name: arrays[name] for name in self.inputs})
        return tuple(np.asarray(g, dtype=np.float32) for g in got)
