"""The seed MLP GAN in PyTorch, as a baseline for specs/gan.yaml.

G: Linear 100->256 ReLU, 256->512 ReLU, 512->784 Tanh.
D: Linear 784->512 LeakyReLU(0.2), 512->256 LeakyReLU(0.2), 256->1 Sigmoid.
BCE loss; Adam lr 2e-4 for both (betas (0.9, 0.999) unless --beta1); batch 64, shuffled; x in [-1, 1].
Each iteration: D step on real (label 1) and detached fake (label 0), then a G step on
D(fake) with label 1 (D as it is after its update).

Prints one JSON line per epoch with the mean losses and the epoch's training seconds.

    /usr/bin/python3 scripts/baselines/gan.py --data data/mnist --epochs 1 --threads 1
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def generator():
    return nn.Sequential(
        nn.Linear(100, 256), nn.ReLU(),
        nn.Linear(256, 512), nn.ReLU(),
        nn.Linear(512, 784), nn.Tanh())


def discriminator():
    return nn.Sequential(
        nn.Linear(784, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1), nn.Sigmoid())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, default_epochs=1)
    parser.add_argument("--beta1", type=float, default=0.9,
                        help="Adam beta1 for both (default 0.9, torch's default; "
                             "specs/gan.yaml uses 0.5, as the classic example)")
    args = parser.parse_args()
    common.setup(args)

    train_x = common.to_signed(common.load_split(args.data, "train")[0])
    train = common.Batches(train_x, args.batch, shuffle=True, seed=args.seed)

    G, D = generator(), discriminator()
    betas = (args.beta1, 0.999)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=betas)
    for epoch in range(1, args.epochs + 1):
        sum_D = sum_G = 0.0
        steps = 0
        with common.Timer() as t:
            for x in train:
                n = x.shape[0]
                ones = torch.ones(n, 1)
                zeros = torch.zeros(n, 1)
                z = torch.randn(n, 100)
                fake = G(z)

                opt_D.zero_grad()
                loss_D = (F.binary_cross_entropy(D(x), ones)
                          + F.binary_cross_entropy(D(fake.detach()), zeros))
                loss_D.backward()
                opt_D.step()

                opt_G.zero_grad()
                loss_G = F.binary_cross_entropy(D(fake), ones)
                loss_G.backward()
                opt_G.step()

                sum_D += loss_D.item()
                sum_G += loss_G.item()
                steps += 1
        print(json.dumps({
            "epoch": epoch,
            "images": train_x.shape[0],
            "threads": args.threads,
            "blas_threads": args.threads if args.blas_threads is None else args.blas_threads,
            "loss_D": round(sum_D / steps, 4),
            "loss_G": round(sum_G / steps, 4),
            "train_seconds": round(t.seconds, 3),
        }), flush=True)


if __name__ == "__main__":
    main()
