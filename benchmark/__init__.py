"""GLUE/SQuAD-style benchmark harness: task plugins, model adapters, one evaluator, leaderboards."""

__version__ = "0.1.0"
