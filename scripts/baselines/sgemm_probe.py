"""Single-precision matmul throughput of this machine's OpenBLAS, at the GAN's shapes.

Times torch.mm (Debian's torch calls the system OpenBLAS) for the products one training
iteration of the MLP GAN makes at batch 64, and for one large square product, and prints
GFLOP/s for each, with `--threads` OpenBLAS threads. It gives the physical limit the GAN
timings in docs/baselines.md are compared against.

    /usr/bin/python3 scripts/baselines/sgemm_probe.py --threads 1
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# (M, K, N): x[M, K] @ w[K, N]; the GAN's largest layer in its three forms at batch 64.
SHAPES = [(64, 784, 512), (64, 512, 784), (784, 64, 512), (64, 512, 256), (1024, 1024, 1024)]


def gflops(m, k, n, seconds_min=0.5):
    a, b = torch.randn(m, k), torch.randn(k, n)
    c = torch.empty(m, n)
    for _ in range(5):
        torch.mm(a, b, out=c)
    reps, t = 0, 0.0
    t0 = time.perf_counter()
    while t < seconds_min:
        for _ in range(20):
            torch.mm(a, b, out=c)
        reps += 20
        t = time.perf_counter() - t0
    return 2.0 * m * k * n * reps / t / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    common.set_threads(args.threads)
    out = {"threads": args.threads}
    for m, k, n in SHAPES:
        out[f"{m}x{k}x{n}"] = round(max(gflops(m, k, n) for _ in range(3)), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
