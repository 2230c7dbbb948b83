"""A small PyTorch DDP trainer as users write them for torchrun: reads RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT from the environment, trains on CPU over gloo,
touches $HAEIN_HEARTBEAT_FILE when it is set (haein run's hang watch, no haein library
needed), and prints a checksum of the final parameters that must not depend on the
launcher."""
import hashlib
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn


def heartbeat():
    path = os.environ.get("HAEIN_HEARTBEAT_FILE")
    if path:
        with open(path, "a"):
            os.utime(path, None)


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same initial model on every rank, as DDP expects
    model = nn.parallel.DistributedDataParallel(
        nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    data = torch.Generator().manual_seed(1234 + rank)  # each rank its own shard
    for _ in range(steps):
        x = torch.randn(64, 16, generator=data)
        y = torch.randint(0, 4, (64,), generator=data)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        heartbeat()
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().numpy().tobytes())
    print(f"ddp rank {rank} of {world} local {os.environ.get('LOCAL_RANK')} "
          f"loss {loss.item():.6f} checksum {digest.hexdigest()[:16]}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
