"""The majority-class baseline: the floor every GLUE table starts from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import UserError
from .base import Adapter, Fitted, option
from .training import subsample


@dataclass(frozen=True)
class MajorityOptions:
    max_train_examples: int | None = option(None, "the majority of at most N train examples (a seeded sample): "
                                                  "the floor of a learning curve")


class MajorityAdapter(Adapter):
    name = "majority"
    kinds = frozenset({"classification"})
    Options = MajorityOptions

    def needs_train_split(self) -> bool:
        return True

    def fit(self, task, train) -> Fitted:
        if train is None:
            raise UserError(f"majority needs the train split of {task.name}, and the task declares none")
        rows = subsample(train.rows, self.options.max_train_examples, self.seed)
        counts = Counter(task.label_index(row) for row in rows)
        # Ties go to the lowest label id, so the choice never depends on row order.
        self.label_ = min(counts, key=lambda label: (-counts[label], label))
        return Fitted(mode="scratch", weights="trained", trainable_parameters=0)

    def predict(self, task, batch: Sequence[Any]) -> list[int]:
        return [self.label_] * len(batch)

    def weights(self) -> str:
        return "trained"
