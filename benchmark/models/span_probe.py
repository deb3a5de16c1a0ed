"""Frozen extractive QA: a linear start/end head trained on cached token states of a frozen encoder.

The feature-based counterpart of `probe` for span tasks: the backbone runs once over the train
windows and keeps each window's token states (fp16, unpadded); a linear layer from the hidden
size to (start, end) then trains on those arrays with Adam for a few epochs, in seconds, instead
of re-running the backbone at every step. Windows without the answer point at token 0, as in
`features.qa_features`. torch is imported inside functions.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

SPAN_EPOCHS = 3
SPAN_LEARNING_RATE = 1e-3
SPAN_BATCH = 32


def token_states(items: Sequence[Any], hidden: Callable[[list[Any]], Any], length: Callable[[Any], int],
                 batch_size: int = 64) -> list[np.ndarray]:
    """Every item's [tokens, hidden] states (fp16, padding cut off), one backbone pass in length order."""
    order = sorted(range(len(items)), key=lambda i: (length(items[i]), i))
    out: list[np.ndarray] = [np.zeros((0, 0), np.float16)] * len(items)
    for lo in range(0, len(order), batch_size):
        idx = order[lo:lo + batch_size]
        states = hidden([items[i] for i in idx])
        for row, i in enumerate(idx):
            out[i] = states[row, :length(items[i])].astype(np.float16)
    return out


def train_span_head(states: Sequence[np.ndarray], starts: Sequence[int], ends: Sequence[int], *, seed: int,
                    epochs: int = SPAN_EPOCHS, learning_rate: float = SPAN_LEARNING_RATE,
                    batch_size: int = SPAN_BATCH) -> Any:
    """A seeded linear (start, end) head: cross-entropy over each window's real tokens."""
    import torch

    torch.manual_seed(seed)
    dim = states[0].shape[1]
    head = torch.nn.Linear(dim, 2)
    optimiser = torch.optim.Adam(head.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    targets = torch.tensor(np.stack([starts, ends], axis=1), dtype=torch.long)
    for _ in range(epochs):
        order = rng.permutation(len(states))
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            width = max(len(states[i]) for i in idx)
            batch = torch.zeros(len(idx), width, dim)
            mask = torch.zeros(len(idx), width, dtype=torch.bool)
            for row, i in enumerate(idx):
                batch[row, :len(states[i])] = torch.from_numpy(states[i].astype(np.float32))
                mask[row, :len(states[i])] = True
            logits = head(batch).masked_fill(~mask.unsqueeze(-1), -1e4)  # [batch, tokens, 2]
            # rows: (window, start|end); classes: the window's tokens
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2).reshape(-1, width),
                                                     targets[idx].reshape(-1))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return head.eval()


def frozen_span_model(backbone: Any, head: Any) -> Any:
    """backbone + head as one module whose output has `start_logits` and `end_logits`, so the
    encoder's ordinary QA path (windows, n-best spans) predicts with it unchanged."""
    import torch
    from transformers.modeling_outputs import QuestionAnsweringModelOutput

    class FrozenSpanModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone, self.head = backbone, head
            self.config = backbone.config

        def forward(self, **inputs: Any) -> Any:
            scores = self.head(self.backbone(**inputs).last_hidden_state)
            return QuestionAnsweringModelOutput(start_logits=scores[..., 0], end_logits=scores[..., 1])

    return FrozenSpanModel()
