"""Feature extraction sharded across processes with torch.distributed, merged exactly.

A sample set is cut into contiguous shards whose boundaries fall on multiples of the extraction batch
size, so every process sees exactly the batches one process would have seen (the same network on the
same batch gives the same bits). Each process extracts its shard, then:

- the sums over its samples of x and of x x^T, in float64, are all-reduced: the Gaussian statistics of the
  whole set follow without any process holding all features (as stylegan3's ``FeatureStats`` accumulates
  them), and they are exact up to float64 summation order;
- the features themselves are all-gathered in shard order, for the metrics that need every sample
  (KID, precision/recall, density/coverage, the mode and memorisation tests).

``extract_sharded(..., nproc=N)`` spawns N processes on this machine with the gloo backend. Under
``torchrun`` the process group already exists and every rank calls ``extract_in_group``. ganbench's
extractors run on the CPU, so the collectives carry CPU tensors (gloo); a group initialised with nccl
would need them moved to each rank's GPU, which ``device`` does.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist

from ganbench.features import ExtractorSpec, extract


def shard_bounds(n: int, world: int, batch_size: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) shards of ``n`` items, cut on multiples of ``batch_size``, as even as that allows."""
    batches = -(-n // batch_size)
    per, extra = divmod(batches, world)
    bounds, start = [], 0
    for rank in range(world):
        count = per + (1 if rank < extra else 0)
        lo, hi = min(start * batch_size, n), min((start + count) * batch_size, n)
        bounds.append((lo, hi))
        start += count
    return bounds


def _sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    return x.sum(dim=0), x.T @ x


def extract_in_group(spec: ExtractorSpec, samples: torch.Tensor, batch_size: int = 250,
                     device: torch.device | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Run by every rank of an initialised process group on the same ``samples``.

    Returns (features of all samples in order, {"n", "sum", "sum_outer"} of the feature layer, float64).
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    lo, hi = shard_bounds(len(samples), world, batch_size)[rank]
    local = extract(spec, samples[lo:hi], batch_size=batch_size, progress=rank == 0)
    comm = device or torch.device("cpu")
    layer = spec.feature_layer
    s1, s2 = _sums(local[layer]) if hi > lo else (None, None)
    if s1 is None:
        dim = _feature_dims(spec, samples[:1])[layer]
        s1, s2 = torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64)
    n = torch.tensor([hi - lo], dtype=torch.float64)
    for t in (n, s1, s2):
        t_dev = t.to(comm)
        dist.all_reduce(t_dev)
        t.copy_(t_dev.cpu())
    gathered: dict[str, torch.Tensor] = {}
    dims = {k: v.shape[1] for k, v in local.items()} if hi > lo else _feature_dims(spec, samples[:1])
    sizes = [b - a for a, b in shard_bounds(len(samples), world, batch_size)]
    for name in sorted(dims):
        mine = local[name] if hi > lo else torch.zeros(0, dims[name])
        parts = [torch.zeros(s, dims[name], dtype=mine.dtype, device=comm) for s in sizes]
        _all_gather_uneven(parts, mine.to(comm))
        gathered[name] = torch.cat([p.cpu() for p in parts])
    return gathered, {"n": n, "sum": s1, "sum_outer": s2}


def _feature_dims(spec: ExtractorSpec, one: torch.Tensor) -> dict[str, int]:
    return {k: v.shape[1] for k, v in extract(spec, one, progress=False).items()}


def _all_gather_uneven(parts: list[torch.Tensor], mine: torch.Tensor) -> None:
    """all_gather for shards of different lengths: pad to the longest, gather, trim."""
    longest = max(p.shape[0] for p in parts)
    padded = torch.zeros(longest, *mine.shape[1:], dtype=mine.dtype, device=mine.device)
    padded[:len(mine)] = mine
    out = [torch.zeros_like(padded) for _ in parts]
    dist.all_gather(out, padded)
    for p, o in zip(parts, out):
        p.copy_(o[:len(p)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, spec: ExtractorSpec, samples: torch.Tensor, batch_size: int,
            threads: int, out_dir: str) -> None:
    torch.set_num_threads(threads)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        feats, sums = extract_in_group(spec, samples, batch_size)
        if rank == 0:
            from safetensors.torch import save_file

            save_file({**{f"f/{k}": v.contiguous() for k, v in feats.items()},
                       **{f"s/{k}": v.contiguous() for k, v in sums.items()}}, str(Path(out_dir) / "merged.safetensors"))
    finally:
        dist.destroy_process_group()


def extract_sharded(spec: ExtractorSpec, samples: torch.Tensor, nproc: int, batch_size: int = 250
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Extract ``samples`` in ``nproc`` local processes (gloo); returns what ``extract_in_group`` returns.

    Each process gets an equal share of this process's torch threads (at least one).
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    from safetensors.torch import load_file

    threads = max(1, torch.get_num_threads() // nproc)
    with tempfile.TemporaryDirectory() as tmp:
        torch.multiprocessing.spawn(_worker, args=(nproc, _free_port(), spec, samples, batch_size, threads, tmp),
                                    nprocs=nproc, join=True)
        merged = load_file(str(Path(tmp) / "merged.safetensors"))
    feats = {k[2:]: v for k, v in merged.items() if k.startswith("f/")}
    sums = {k[2:]: v for k, v in merged.items() if k.startswith("s/")}
    return feats, sums
