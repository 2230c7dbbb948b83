#!/usr/bin/env python3
"""PyTorch's way of doing what haein's pack and unpack kernels do, on the same tensors.

DDP-style bucketing in PyTorch: torch.cat of a bucket's gradients (pack), the same with the
scale and a cast to bfloat16 (pack with cast), and copying the reduced flat buffer back
into the gradients (unflatten). The tensor list and the bucket cut are haein-bench kernel's:
a model's parameter list, consecutive tensors up to the cap. Bandwidth counts the f32
tensor bytes once, as haein-bench kernel does; medians of CUDA-event-timed repeats after a
warm-up, next to one device-to-device copy of the same bytes measured in the same run.
Exit 2 when there is no usable GPU (or no PyTorch with CUDA).
"""
import argparse
import statistics
import sys


def read_model(path):
    counts = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) < 2:
                sys.exit(f"{path}:{number}: '{line[0]}' has no shape")
            count = 1
            for dim in line[1].split("x"):
                count *= int(dim)
            counts.append(count)
    return counts


def buckets_of(counts, cap_elements):
    buckets, current, filled = [], [], 0
    for t, count in enumerate(counts):
        if filled > 0 and filled + count > cap_elements:
            buckets.append(current)
            current, filled = [], 0
        current.append(t)
        filled += count
    buckets.append(current)
    return buckets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="parameter list (benchmarks/models)")
    parser.add_argument("--bucket-mb", default="1,16,64")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch_pack: no PyTorch here (no GPU check possible)")
        return 2
    if not torch.cuda.is_available():
        print("torch_pack: no GPU visible to PyTorch")
        return 2
    counts = read_model(args.model)
    total = sum(counts)
    tensors = [torch.full((c,), 0.5, device="cuda") for c in counts]
    print(f"# torch {torch.__version__} on {torch.cuda.get_device_name()}: {len(counts)} tensors, "
          f"{total * 4 / 1e6:.1f} MB of f32, median of {args.repeats} repeats")

    def timed(body):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        body()  # warm-up (and the allocator's first allocations)
        samples = []
        for _ in range(args.repeats):
            start.record()
            body()
            stop.record()
            stop.synchronize()
            samples.append(start.elapsed_time(stop) / 1e3)
        return statistics.median(samples)

    for cap_mb in [float(x) for x in args.bucket_mb.split(",")]:
        buckets = buckets_of(counts, int(cap_mb * 1024 * 1024 / 4))
        flats = [torch.empty(sum(counts[t] for t in b), device="cuda") for b in buckets]
        source = torch.empty(max(f.numel() for f in flats), device="cuda")
        target = torch.empty_like(source)

        def copy():
            for f in flats:
                target[: f.numel()].copy_(source[: f.numel()])

        def cat():
            for b, f in zip(buckets, flats):
                torch.cat([tensors[t] for t in b], out=f)

        def cat_scale_bf16():
            for b in buckets:
                torch.cat([tensors[t] for t in b]).mul_(0.5).to(torch.bfloat16)

        def unflatten():
            for b, f in zip(buckets, flats):
                views = torch.split(f, [counts[t] for t in b])
                if hasattr(torch, "_foreach_copy_"):
                    torch._foreach_copy_([tensors[t] for t in b], list(views))
                else:
                    for t, view in zip(b, views):
                        tensors[t].copy_(view)

        rows = [("cudaMemcpy D2D (same bytes)", copy), ("torch.cat", cat),
                ("torch.cat, *0.5, to(bf16)", cat_scale_bf16), ("unflatten (_foreach_copy_)", unflatten)]
        results = [(name, timed(body)) for name, body in rows]
        base = results[0][1]
        print(f"#\n# buckets of {cap_mb:g} MiB ({len(buckets)})")
        print(f"# {'operation':<28} {'median ms':>10} {'GB/s':>10} {'vs copy':>9}")
        for name, seconds in results:
            print(f"  {name:<28} {seconds * 1e3:10.3f} {total * 4 / seconds / 1e9:10.1f} {base / seconds:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
