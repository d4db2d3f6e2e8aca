"""Data-parallel training under torchrun: who am I, which batches are mine, sums across ranks.

Without torchrun (no WORLD_SIZE in the environment, or 1) everything here is a no-op, so the same
loop runs on one CPU, one GPU or N GPUs. Effective batch = batch_size x grad_accum_steps x world_size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, writes checkpoints and shows progress bars."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext()


def init_from_env(device_type: str) -> DistContext:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def shard(items: list, ctx: DistContext) -> list:
    """This rank's share of `items`: every world_size-th item from position rank, after repeating the
    first items so each rank gets the same count (as DistributedSampler does; ranks must step together)."""
    if not ctx.enabled:
        return items
    padded = items + items[: (-len(items)) % ctx.world_size]
    return padded[ctx.rank::ctx.world_size]


def all_reduce_sum(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Element-wise sum of `values` over all ranks (float64, so sums of many losses stay exact)."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
