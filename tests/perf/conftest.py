"""Write leaderboards/perf.md once every benchmark has run (whatever order pytest chose)."""

import sys


def pytest_sessionfinish(session, exitstatus):
    for suffix, writer in (("test_perf", "write_table"), ("test_training_perf", "write_training_table"),
                           ("test_generative_perf", "write_generation_table"),
                           ("test_backend_perf", "write_backend_table")):
        module = next((m for name, m in sys.modules.items() if name.endswith(suffix) and hasattr(m, writer)), None)
        if module is not None:
            getattr(module, writer)()
