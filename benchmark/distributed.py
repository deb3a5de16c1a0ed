"""Data-parallel evaluation under `torchrun` or `accelerate launch`.

Both launchers describe the job in the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR);
nothing here depends on which one started us. Each rank predicts a shard of every split, rank 0
gathers the predictions, scores them and is the only one that writes. Predictions do not depend
on batch composition, so the metrics equal a single-process run's.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def from_env() -> World:
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def init(device: str) -> World:
    """Join the launcher's process group (gloo on the CPU, nccl on CUDA); a no-op alone."""
    world = from_env()
    if not world.distributed:
        return world
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, timeout=_dt.timedelta(minutes=30))
    return world


def shard(indices: Sequence[int], world: World) -> list[int]:
    """Round-robin over the length-sorted order, so every rank gets a similar mix of lengths."""
    return list(indices[world.rank::world.size])


def gather(items: list[T], world: World) -> list[T] | None:
    """Every rank's list, concatenated on rank 0 (None elsewhere)."""
    if not world.distributed:
        return items
    import torch.distributed as dist

    parts: list[Any] | None = [None] * world.size if world.is_main else None
    dist.gather_object(items, parts, dst=0)
    return [x for part in parts for x in part] if parts is not None else None


def broadcast(value: T, world: World) -> T:
    """Rank 0's value on every rank: decisions (what to skip) must not diverge between ranks."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
