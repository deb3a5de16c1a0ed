"""Command line: `bench run | tasks | models | leaderboard | score`.

Only argparse and the light task/result modules load at start-up; torch, transformers and
datasets are imported by the commands that need them, so `bench --help` is instant.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import UserError, choices_hint, require_folder

if TYPE_CHECKING:
    from .models.base import Adapter

BANNER = "!" * 78


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with the fix) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message}; see '{self.prog} --help'", file=sys.stderr)
        raise SystemExit(2)


def _at_least(minimum: int):
    """An argparse type: a whole number no smaller than `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} must be at least {minimum}")
        return value

    return parse


_positive_int = _at_least(1)
_whole_number = _at_least(0)


def _positive_float(text: str) -> float:
    """An argparse type: a finite number above zero (argparse's float takes 'inf' and 'nan')."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return value


def _sizes(text: str) -> list[int | None]:
    """--sizes 100,1000,all -> [100, 1000, None]: ascending, 'all' (the whole train split) last."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            sizes.append(None)
        elif part:
            sizes.append(_positive_int(part))
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given; e.g. --sizes 100,1000,all")
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a size; give each once")
    return sorted((s for s in sizes if s is not None)) + [None] * (None in sizes)


def _seeds(text: str) -> tuple[int, ...]:
    """--seed 3 -> (3,); --seed 0,1,2 -> (0, 1, 2): one run per seed, in the order given."""
    seeds = tuple(_whole_number(part.strip()) for part in text.split(",") if part.strip())
    if not seeds:
        raise argparse.ArgumentTypeError("no seed given; e.g. --seed 0 or --seed 0,1,2")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r} repeats a seed; give each once")
    return seeds


def _adapter_option(text: str) -> tuple[str, object]:
    """--option KEY=VALUE: the key as the adapter declares it (dashes read as underscores), the value JSON
    where it parses, else the text itself."""
    import json

    key, sep, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. --option C=0.5")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _label_map(text: str) -> dict[str, str]:
    from .models.labels import LABEL_MAP_FORMAT, parse_label_map

    try:
        pairs = parse_label_map(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc))
    if not pairs:
        raise argparse.ArgumentTypeError(f"--label-map is empty; expected {LABEL_MAP_FORMAT}")
    return pairs


def build_parser(parser_class: type[argparse.ArgumentParser] = _Parser) -> argparse.ArgumentParser:
    """`parser_class` decides what a usage error does: one line and exit 2 here, an exception in the API."""
    parser = parser_class(prog="bench", description="Evaluate models on GLUE/SQuAD-style task suites and "
                                                    "publish leaderboard tables.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=parser_class)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--tasks-dir", action="append", default=[], metavar="DIR",
                       help="extra folder of task plugin .yaml files (repeatable)")
        p.add_argument("--quiet", action="store_true", help="no progress bars or per-task lines")

    run = sub.add_parser("run", help="evaluate a model on tasks and write results")
    _run_arguments(run)
    common(run)

    curve = sub.add_parser("curve", help="learning curves: train and evaluate at several train sizes, then "
                                         "plot the metric against labelled examples")
    _run_arguments(curve, sizes=True)
    curve.add_argument("--sizes", required=True, type=_sizes,
                       help="comma-separated train sizes, 'all' for the whole train split, e.g. 100,1000,all")
    curve.add_argument("--target", type=float, default=80.0,
                       help="report the labelled examples each line needs to reach this score (default 80)")
    curve.add_argument("--out", help="folder for the curve tables and plots (default: <results-dir>/leaderboards)")
    common(curve)

    tasks = sub.add_parser("tasks", help="list task plugins")
    common(tasks)

    models = sub.add_parser("models", help="list model adapters, their modes and options, and known model names")
    models.add_argument("name", nargs="?", help="an adapter or known model: its modes and every option it takes")

    board = sub.add_parser("leaderboard", help="render your results into tables (never the published record)")
    board.add_argument("--results-dir", default="results")
    board.add_argument("--out", help="folder for the tables and plots (default: <results-dir>/leaderboards)")
    common(board)

    publish = sub.add_parser("publish", help="add real-data results to the published record (leaderboards/) "
                                             "and re-render its tables, page and plots")
    publish.add_argument("--results-dir", default="results", help="where your results are")
    publish.add_argument("--to", default="leaderboards", help="the published record's folder")
    publish.add_argument("--model", help="publish only this model's results (the name in the result files)")
    publish.add_argument("--tasks", default="", help="publish only these comma-separated tasks")
    action = publish.add_mutually_exclusive_group()
    action.add_argument("--render", action="store_true",
                        help="re-render the tables, page and plots from the record alone; add nothing")
    action.add_argument("--check", action="store_true",
                        help="exit 1 when a published file differs from what its record renders to")
    publish.add_argument("--force", action="store_true",
                         help="replace a published row even with a result evaluated on fewer examples (--limit)")

    compare = sub.add_parser("compare", help="our GLUE results beside the GLUE paper's BiLSTM baseline")
    compare.add_argument("--results-dir", default="results")
    compare.add_argument("--out", help="default: <results-dir>/leaderboards/glue-paper.md")
    compare.add_argument("--note", action="append", default=[],
                         help="a line for the 'how these numbers were made' section (repeatable)")

    score = sub.add_parser("score", help="score a predictions file made elsewhere")
    score.add_argument("--task", required=True)
    score.add_argument("--predictions", required=True, help="{id: answer} JSON or JSON Lines {id, prediction}")
    score.add_argument("--split", help="evaluation split (default: the task's first)")
    score.add_argument("--model", default="external", help="name shown on the leaderboard")
    score.add_argument("--data", default="hub", help="hub | sample | DIR")
    score.add_argument("--limit", type=_positive_int, help="score only the first N examples of the split")
    score.add_argument("--sample", type=_positive_int, help="score N examples drawn at random, as bench run --sample")
    score.add_argument("--results-dir", default="results")
    score.add_argument("--force", action="store_true",
                       help="replace a result of the same name that a run (or a fuller scoring) wrote")
    common(score)

    export = sub.add_parser("export", help="print a model's results as Hub model-card metadata (model-index YAML)")
    export.add_argument("--model", required=True, help="the model name as recorded in its result files")
    export.add_argument("--results-dir", default="results")
    export.add_argument("--mode", help="only results of this mode (needed when the model was run in several)")
    export.add_argument("--format", default="model-index", choices=["model-index"],
                        help="model-index: the block for the YAML header of a Hub model card (README.md)")
    export.add_argument("--tasks-dir", action="append", default=[], metavar="DIR",
                        help="extra folder of task plugin .yaml files (repeatable): dataset ids of plugin tasks")
    return parser


def _run_arguments(p: argparse.ArgumentParser, sizes: bool = False) -> None:
    """The flags of `bench run`, shared by `bench curve` (which sets --max-train-examples itself)."""
    from .models.base import MODES

    p.add_argument("--model", default="majority", help="model name, adapter name or local checkpoint path")
    p.add_argument("--tasks", default="", help="comma-separated task names (default: all)")
    p.add_argument("--data", default="hub", help="hub | sample | DIR laid out <task>/<split>.jsonl[.gz] "
                                                  "(default hub; falls back to sample when the hub is unreachable)")
    p.add_argument("--mode", default="auto", help=f"one of {', '.join(MODES)}")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--limit", type=_positive_int, help="evaluate only the first N examples of each split")
    p.add_argument("--sample", type=_positive_int,
                   help="evaluate N examples of each split drawn at random (one fixed draw, the same for every "
                        "model and seed) instead of the first N")
    p.add_argument("--batch-size", type=_positive_int,
                   help="evaluation batch size (default: automatic, batches filled to a token budget; "
                        "halved on OOM either way)")
    p.add_argument("--batch-tokens", type=_positive_int,
                   help="automatic batching: padded tokens per batch (default: 2048 on CPU, 65536 on CUDA)")
    p.add_argument("--seed", type=_seeds, default=(0,),
                   help="seed of every draw (default 0); several, as 0,1,2, run once per seed, and the tables show "
                        "their mean ± standard deviation")
    p.add_argument("--weights", default="pretrained", choices=["pretrained", "random"],
                   help="random: architecture only (real size and latency, meaningless accuracy)")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto: bf16 autocast on CUDA, fp32 on the CPU")
    p.add_argument("--compile", action="store_true",
                   help="encoders: torch.compile the forward pass (dynamic shapes; pays off on long runs)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"),
                   help="encoders: the runtime (default torch); onnxruntime exports the model once per weights "
                        "and caches it")
    p.add_argument("--quantize", choices=("none", "int8"),
                   help="encoders on --backend onnxruntime: dynamic int8 weights (a different model, its own row)")
    p.add_argument("--label-map", type=_label_map,
                   help="head label -> task label, e.g. LABEL_0=negative,LABEL_1=positive")
    p.add_argument("--scoring", choices=["generate", "rank"],
                   help="text-to-text classification: greedy generation (default) or label ranking")
    p.add_argument("--max-length", type=_positive_int, help="input truncation length in tokens")
    p.add_argument("--num-fewshot", type=_whole_number,
                   help="decoder-only models: solved train examples before each prompt (default 0)")
    p.add_argument("--chat-template", choices=["auto", "off"],
                   help="decoder-only models: auto uses an instruct model's chat template (default), off never")
    p.add_argument("--pair-encoding", choices=["separate", "joint"],
                   help="--mode frozen, sentence pairs: encoded apart as [u; v; |u-v|; u*v] (default) "
                        "or as one input")
    train = p.add_argument_group("training budget (mode finetune and models trained from scratch; "
                                 "frozen takes --max-train-examples only)")
    train.add_argument("--epochs", type=_positive_float, help="passes over the train split")
    if not sizes:  # a curve sets the train size of each of its points
        train.add_argument("--max-train-examples", type=_positive_int, help="use at most N train examples")
    train.add_argument("--learning-rate", type=_positive_float, help="optimiser learning rate")
    train.add_argument("--train-batch-size", type=_positive_int, help="training batch size")
    train.add_argument("--cache-dir", help="where trained weights are kept (default .cache/benchmark or $BENCH_CACHE)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", type=_adapter_option,
                   help="any option the adapter declares ('bench models NAME' lists them), repeatable; the value is "
                        "read as JSON where it parses (3, 0.5, true, null, [1, 2]) and as text otherwise")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a checkpoint's own Python code to run (off by default)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--force", action="store_true",
                   help="redo results that already exist for these settings, and let a result that holds less "
                        "(the sample suite, a --limit run) replace one that holds more (real data, a whole split)")


def quiet_env(args: argparse.Namespace) -> None:
    """--quiet: read by huggingface libraries at import, so set before any of them loads."""
    if getattr(args, "quiet", False):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_env(args)
    handler = {"run": cmd_run, "tasks": cmd_tasks, "models": cmd_models, "leaderboard": cmd_leaderboard,
               "score": cmd_score, "compare": cmd_compare, "publish": cmd_publish,
               "export": cmd_export, "curve": cmd_curve}[args.command]
    try:
        code = handler(args)
        sys.stdout.flush()  # a reader that went away (`bench models | head`) shows here, not at exit
        return code
    except BrokenPipeError:  # the reader has all it wanted: stop quietly, as other command-line tools do
        _discard_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a command its pipe cut off
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user named is a file, a folder, missing or locked: theirs to fix
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check the paths given on the command line", file=sys.stderr)
        return 2


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the flush at interpreter exit cannot fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no real file (captured, replaced): nothing is left to flush
        pass


# ---------------------------------------------------------------------------------------
def _catalog(args: argparse.Namespace, selected: Sequence[str] = ()):
    """Every task; a broken plugin is a warning, unless it is `selected` (then selecting it is the error)."""
    from .tasks import discover

    catalog = discover(args.tasks_dir)
    for source, message in catalog.broken.items():
        if not catalog.claims.get(source, frozenset()) & set(selected):
            print(f"warning: skipped broken task plugin: {message}", file=sys.stderr)
    return catalog


def _task_names(text: str) -> list[str]:
    """--tasks a,b -> ['a', 'b'] (empty: every task)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu") and not (device == "cuda" or device.startswith("cuda:")):
        raise UserError(f"unknown device '{device}'; {choices_hint(device, ['auto', 'cpu', 'cuda', 'cuda:0'])}")
    if device == "cpu":
        return "cpu"
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UserError(f"--device {device}: CUDA is not available on this machine; use --device cpu or auto")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s); use cuda:0..")
    return device


def _check_results_dir(path: Path) -> None:
    from .publish import enclosing_record

    require_folder(path, "--results-dir", "choose another path")
    record = enclosing_record(path)
    if record is not None:
        raise UserError(f"--results-dir {path}: is inside the published record {record}; write your results "
                        f"elsewhere (e.g. --results-dir results) and add them with 'bench publish --to {record}'")
    target = path if path.exists() else next((p for p in path.absolute().parents if p.exists()), Path("/"))
    if not os.access(target, os.W_OK | os.X_OK):
        raise UserError(f"--results-dir {path}: not writable; choose a folder you can write to")


def _results_to_read(text: str) -> Path:
    """A --results-dir a command only reads: it must exist, so a typo is an error, not an empty table
    written into a folder created for it."""
    path = Path(text)
    require_folder(path, "--results-dir", "pass the folder your runs wrote to")
    if not path.is_dir():
        raise UserError(f"--results-dir {text}: no such folder; pass the folder your 'bench run' wrote to "
                        "(default results), or run 'bench run' first")
    return path


def _warn_sample_fallback(reason: str) -> None:
    print("\n".join([BANNER,
                     f"WARNING: {reason}",
                     "Falling back to the built-in SAMPLE suite: synthetic data, NOT comparable to published",
                     "GLUE/SQuAD numbers. Use DATA=<dir> (e.g. DATA=../shared/data) or --data sample to choose.",
                     BANNER]), file=sys.stderr)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during evaluation, carrying the results already complete: `bench run` says where they are,
    and in a notebook `benchmark.evaluate` still stops like any interrupted cell."""

    def __init__(self, outcome, results_dir: Path) -> None:
        super().__init__()
        self.outcome = outcome
        self.results_dir = results_dir


def cmd_curve(args: argparse.Namespace) -> int:
    """One `bench run` per train size and seed (each resumes like `bench run`; all planned before the first
    trains), then the curves of every (model, mode) in the results folder, so curves made one model at a time
    share a plot."""
    from . import curve
    from .publish import guard_out
    from .results import iter_results
    from .storage import write_files

    results_dir = Path(args.results_dir)
    out = Path(args.out) if args.out else results_dir / "leaderboards"
    guard_out(out)  # before the training, not after it
    try:
        execute_run(argparse.Namespace(**{**vars(args), "max_train_examples": None}), sizes=args.sizes)
    except RunInterrupted as stop:
        print(f"\ninterrupted: the curve's finished points are in {stop.results_dir}; re-run the same command "
              "to finish the rest", file=sys.stderr)
        return 130
    files = curve.render_files(iter_results(results_dir), _catalog(args).tasks, target=args.target)
    written = write_files(out, files)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if not written:
        print(f"no learning curve to draw: every line needs two or more points under {results_dir}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        execute_run(args)
    except RunInterrupted as stop:
        print(f"\ninterrupted: {len(stop.outcome.written) + len(stop.outcome.unsupported)} result(s) from this run "
              f"are complete in {stop.results_dir}; re-run the same command to finish the rest", file=sys.stderr)
        return 130
    return 0


def execute_run(args: argparse.Namespace, *, command: str | None = None,
                sizes: Sequence[int | None] | None = None) -> "Outcome":
    """`bench run` minus the exit code: the one code path behind both the CLI and `benchmark.evaluate`.

    Raises UserError (and subclasses) for what the user can fix, RunInterrupted on Ctrl-C during evaluation.
    `command` is the re-runnable command recorded in provenance (default: this process's command line).
    `sizes`: `bench curve`'s train sizes (None: the whole split), one run per size and seed, all planned
    before the first trains.
    """
    from .data import choose_source, describe_source, hub_access
    from .distributed import init as init_world
    from .distributed import shutdown as shutdown_world
    from .evaluator import Outcome, RunConfig, run_seeds
    from .models.registry import canonical, names_a_checkpoint, resolve

    if not str(args.model).strip():
        raise UserError("--model is empty; pass a model name ('bench models' lists them) or a checkpoint folder")
    model = canonical(args.model)  # an alias runs, and is recorded, as its hub id
    if args.batch_size and args.batch_tokens:
        raise UserError("--batch-size fixes the batch and --batch-tokens sizes it automatically; pass one of them")
    catalog = _catalog(args, _task_names(args.tasks))
    tasks = catalog.select(_task_names(args.tasks))
    describe_source(args.data)
    # The hub is asked about once, here, for the data and the checkpoint alike; nothing probes it again.
    hub = hub_access() if args.data == "hub" or names_a_checkpoint(model) else None
    entry = resolve(model, weights=args.weights, trust_remote_code=args.trust_remote_code,
                    online=hub.online if hub else None)
    results_dir = Path(args.results_dir)
    _check_results_dir(results_dir)
    device = resolve_device(args.device)

    world = init_world(device)
    if world.distributed and device == "cuda":
        device = f"cuda:{world.local_rank}"  # one GPU per rank
    cls = entry.load()
    options = _options(args)
    if "cache_dir" in options and "cache_dir" not in {f.name for f in cls.option_fields()}:
        del options["cache_dir"]  # where trained weights go: nothing to say to an adapter that keeps none
    seeds = (args.seed,) if isinstance(args.seed, int) else tuple(args.seed)
    each = [(size, seed) for size in (sizes if sizes is not None else [options.get("max_train_examples")])
            for seed in seeds]  # one run per train size (a curve's, or the one asked for) and seed

    def make(size: int | None, seed: int) -> "Adapter":
        sized = {k: v for k, v in options.items() if k != "max_train_examples"}
        if size is not None:
            sized["max_train_examples"] = size
        return cls(model, device=device, seed=seed, mode=args.mode, options=sized, quiet=args.quiet, world=world,
                   online=hub.online if hub else None)  # validates

    adapters = [make(size, seed) for size, seed in each]
    require_folder(adapters[0].cache_dir(), "--cache-dir (or $BENCH_CACHE)", "choose a folder for trained weights")
    data, fallback = choose_source(args.data, tasks, hub) if hub else (args.data, None)
    if fallback and world.is_main:
        _warn_sample_fallback(fallback)
    speak = world.is_main and not args.quiet
    log = (lambda m: print(m, file=sys.stderr)) if speak else (lambda m: None)
    recorded = command or "bench " + shlex.join(sys.argv[1:])

    def config(seed: int) -> RunConfig:
        return RunConfig(model=model, data=data, results_dir=results_dir, limit=args.limit, sample=args.sample,
                         batch_size=args.batch_size, batch_tokens=args.batch_tokens, seed=seed, force=args.force,
                         quiet=args.quiet, hub=hub, data_fallback=fallback, adapter_provider=entry.provider, log=log,
                         world=world, command=one_seed(recorded, seed) if len(seeds) > 1 else recorded)

    runs = [(adapter, config(adapter.seed)) for adapter in adapters]
    del adapters  # `run_seeds` holds the only reference, so it can free each seed's model when it is done
    if sizes is not None:
        labels = [f"curve: {model} on {size or 'all'} train examples" + (f", seed {seed}" if len(seeds) > 1 else "")
                  for size, seed in each]
    else:
        labels = [f"seed {seed} ({i} of {len(seeds)})" if len(seeds) > 1 else "" for i, (_, seed) in enumerate(each, 1)]
    outcome = Outcome()
    try:  # one whole run per seed (and train size), each resuming on its own, all planned before the first trains
        run_seeds(runs, tasks, outcome, labels)
    except KeyboardInterrupt as exc:
        raise RunInterrupted(outcome, results_dir) from exc
    if world.is_main and len(seeds) > 1:
        for line in seed_lines(outcome.written + outcome.skipped):
            log(line)
    if world.is_main:
        size = f" ({world.size} processes)" if world.distributed else ""
        print(f"done: {len(outcome.written)} written, {len(outcome.unsupported)} unsupported, "
              f"{len(outcome.skipped)} already current in {results_dir}{size}", file=sys.stderr)
    shutdown_world(world)
    return outcome


def one_seed(command: str, seed: int) -> str:
    """The command that remakes one seed's results: `--seed 0,1,2` becomes `--seed 1`."""
    def is_seed(flag: str) -> bool:  # argparse takes any unambiguous prefix: '--se'
        return len(flag) >= 4 and "--seed".startswith(flag)

    words, out = shlex.split(command), []
    for i, word in enumerate(words):
        if i and is_seed(words[i - 1]):
            out.append(str(seed))
        elif "=" in word and is_seed(word.split("=", 1)[0]):
            out.append(f"{word.split('=', 1)[0]}={seed}")
        else:
            out.append(word)
    return shlex.join(out)


def seed_lines(paths: list[Path]) -> list[str]:
    """'sst2/validation: accuracy 79.7 ± 1.1 over seeds 0, 1, 2': what a run of several seeds comes to, per
    split and train size."""
    from .leaderboard import seeds_words
    from .results import combine_seeds, load, row_mode, seed_summary, train_cap

    groups: dict[tuple, list] = {}
    for r in (load(path) for path in sorted(set(paths))):
        groups.setdefault((r.model, row_mode(r), r.task, r.split, r.data.fingerprint, train_cap(r)), []).append(r)
    lines = []
    for (*_, cap), runs in groups.items():
        r = combine_seeds(runs)
        summary = seed_summary(r)
        if summary is None or (len(summary.seeds) < 2 and not summary.left_out):
            continue
        scores = ", ".join(f"{m} {v:.1f}" + (f" ± {summary.sd[m]:.1f}" if m in summary.sd else "")
                           for m, v in r.metrics.items())
        left = (f" ({seeds_words(summary.left_out)} left out: made otherwise than the newest run)"
                if summary.left_out else "")
        size = f" ({cap:,} train examples)" if cap else ""
        lines.append(f"{r.task}/{r.split}{size}: {scores} over {seeds_words(summary.seeds)}{left}")
    return lines


def _options(args: argparse.Namespace) -> dict:
    """Adapter options the user set; defaults stay out so they don't perturb the resume key."""
    options: dict = {}
    if args.weights != "pretrained":
        options["weights"] = args.weights
    if args.dtype != "auto":
        options["dtype"] = args.dtype
    if args.trust_remote_code:
        options["trust_remote_code"] = True
    if args.compile:
        options["compile"] = True
    for key in ("backend", "quantize", "scoring", "max_length", "pair_encoding", "num_fewshot", "chat_template", "epochs", "max_train_examples", "learning_rate",
                "train_batch_size", "cache_dir"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if args.label_map:
        options["label_map"] = args.label_map
    for key, value in args.option:
        if key in options:
            raise UserError(f"--option {key}: given twice (once by its own flag); pass it once")
        options[key] = value
    return options


def cmd_tasks(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    catalog = _catalog(args)
    rows = [[t.name, t.kind, t.suite, t.dataset.train or "—", ", ".join(e.split for e in t.dataset.eval),
             ", ".join(t.metrics), t.version, t.provider] for t in catalog.tasks.values()]
    print(tabulate(rows, headers=["task", "kind", "suite", "train", "eval splits", "metrics", "version", "from"]))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Every adapter's declared modes and options (the classes are loaded to read them)."""
    from tabulate import tabulate

    from .errors import ModelError
    from .models.registry import ALIASES, KNOWN_MODELS, canonical, describe, scan

    table, refused = scan()
    for plugin, why in refused:  # named like a known model: it would be shadowed, so it is refused aloud
        if not args.name or plugin == args.name:
            print(f"warning: skipped {why}", file=sys.stderr)
    if args.name:
        name = KNOWN_MODELS.get(canonical(args.name), args.name)
        if name not in table:
            raise UserError(f"unknown adapter or model '{args.name}'; "
                            f"{choices_hint(args.name, set(table) | set(KNOWN_MODELS) | set(ALIASES))}")
        cls = table[name].load()
        print(f"{name}: {describe(table[name], cls)}")
        print(f"task kinds: {', '.join(sorted(cls.kinds))}")
        print(f"modes: {', '.join(cls.modes)}\n")
        rows = [[f.name, f.type, f.default, f.metadata.get("help", "")] for f in cls.option_fields()]
        print(tabulate(rows, headers=["option", "type", "default", "meaning"]) if rows else "options: none")
        return 0
    rows = []
    for e in table.values():
        try:
            cls = e.load()
        except ModelError as exc:  # one broken plugin must not hide the others: a warning, as for tasks
            print(f"warning: skipped {exc}", file=sys.stderr)
            continue
        names = [f.name for f in cls.option_fields()]
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        rows.append([e.name, ", ".join(cls.modes), shown or "—", describe(e, cls), e.provider])
    print(tabulate(rows, headers=["adapter", "modes", "options", "what it is", "from"], maxcolwidths=[None, 20, 40, 50, None]))
    print("\n'bench models NAME' lists every option of one adapter with its type, default and meaning.")
    print()
    aliases = {hub_id: ", ".join(sorted(a for a, h in ALIASES.items() if h == hub_id)) for hub_id in KNOWN_MODELS}
    print(tabulate([[m, a, aliases[m]] for m, a in sorted(KNOWN_MODELS.items())],
                   headers=["known model", "adapter", "aliases"]))
    print("\nAny Hugging Face checkpoint name or local path is accepted too.")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import render
    from .publish import guard_out
    from .results import iter_results, locked

    catalog = _catalog(args)
    out = Path(args.out) if args.out else Path(args.results_dir) / "leaderboards"
    guard_out(out)
    results = list(iter_results(_results_to_read(args.results_dir)))  # a corrupt file stops here, before any write
    with locked(out / ".leaderboard.lock"):
        written = render(results, out, tasks=catalog.tasks, page=True)
    if not written:
        print(f"no results under {args.results_dir}; run 'bench run' first", file=sys.stderr)
        return 0
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    print(f"your tables are in {out}/ (the published leaderboards/ are unchanged; 'bench publish "
          f"--results-dir {args.results_dir}' adds real-data results to them)", file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from . import publish

    root = Path(args.to)
    publish.require_root(root)
    if args.check:
        differ, extra = publish.check_report(root)
        stale = differ + extra
        for name in differ:
            print(f"{root / name}: differs from what its records render to; run 'bench publish --render "
                  f"--to {root}' and commit, or restore the record", file=sys.stderr)
        for name in extra:
            print(f"{root / name}: no record renders it (its results were removed, or it was added by hand); "
                  "delete it, or restore its records", file=sys.stderr)
        if not stale:
            print(f"{root}: every published file matches its records", file=sys.stderr)
        return 1 if stale else 0
    if args.render:
        written = publish.rerender(root)
        print(f"re-rendered {len(written)} file(s) in {root} from its records", file=sys.stderr)
        return 0
    chosen = publish.select(_results_to_read(args.results_dir), args.model, _task_names(args.tasks))
    report = publish.publish(root, chosen, force=args.force)
    print(f"published {len(chosen)} result(s) to {root}: {report.added} new, {report.replaced} replacing a "
          f"published one; re-rendered its tables, page and plots", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import render, rows_from
    from .publish import guard_out
    from .results import iter_results

    out = Path(args.out) if args.out else Path(args.results_dir) / "leaderboards" / "glue-paper.md"
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; name the file to write, e.g. {out / 'glue-paper.md'}")
    guard_out(out.parent)
    results = list(iter_results(_results_to_read(args.results_dir)))
    if not rows_from(results):
        print(f"no real-data GLUE results under {args.results_dir} to compare (sample-suite, random-weight and "
              "prompted runs stay out); nothing written", file=sys.stderr)
        return 0
    path = render(results, out, notes=args.note)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from .evaluator import RunConfig
    from .external import score_file

    catalog = _catalog(args, [args.task])
    (task,) = catalog.select([args.task])
    split = args.split or task.dataset.eval[0].split
    _check_results_dir(Path(args.results_dir))
    cfg = RunConfig(model=args.model, data=args.data, results_dir=Path(args.results_dir), limit=args.limit,
                    sample=args.sample, force=args.force)
    path = score_file(task, split, Path(args.predictions), args.model, cfg)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import model_index

    catalog = _catalog(args)
    export = model_index(_results_to_read(args.results_dir), args.model, catalog.tasks, mode=args.mode)
    for line in export.warnings:
        print(f"warning: {line}", file=sys.stderr)
    sys.stdout.write(export.text)
    return 0
