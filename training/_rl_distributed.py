"""Data parallelism for the RL trainers under `torchrun` / `accelerate launch`: each process samples and scores its
share of a step's prompt groups, every process sees the whole step's rewards (global std, solved prompts, the
history), and LoRA gradients are averaged before each update, so the replicas stay identical. Without a launcher
(WORLD_SIZE unset) everything here is a no-op."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


class Ranks:
    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str) -> torch.device:
        if requested != "auto":
            return torch.device(requested)
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank if self.world > 1 else torch.cuda.current_device())
        return torch.device("cpu")

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share: every `world`-th item from its rank on."""
        return list(items[self.rank :: self.world])

    def gather(self, values: list[T]) -> list[list[T]]:
        """Every process's list, in rank order."""
        if self.world == 1:
            return [values]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, values)
        return gathered

    def max(self, value: int) -> int:
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.long)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def average_gradients(self, parameters: Sequence[torch.Tensor]) -> None:
        if self.world == 1:
            return
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= self.world

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()
