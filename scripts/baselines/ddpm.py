"""specs/ddpm.yaml's U-Net in PyTorch, as a speed baseline for the convolution path.

The same graph as the spec's eps_model: a 64-wide sinusoidal time embedding through
Linear(64, 128) and SiLU, added per channel after the first convolution of each block;
3x3 convolutions, 4x4 stride-2 convolutions down to 14x14 and 7x7, transposed ones back
up, skip connections by concatenation, GroupNorm(8) and SiLU after every convolution
but the last. The step is the spec's: t uniform in [0, 1000), x_t from the linear
schedule (1e-4 to 0.02), MSE against the noise, Adam 1e-3, then the EMA (0.995, with
warmup) of the weights. Batch 64 from the shuffled training split.

It trains --steps steps and prints one JSON line: steps, samples/s and the seconds of
the training loop (no evaluation, no sampling).

    /usr/bin/python3 scripts/baselines/ddpm.py --data data/mnist --steps 200 --threads 2
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def time_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class Block(nn.Module):
    """silu(group_norm(conv(x) [+ linear(temb) per channel], 8))"""

    def __init__(self, conv, channels, temb):
        super().__init__()
        self.conv = conv
        self.temb = nn.Linear(128, channels) if temb else None
        self.norm = nn.GroupNorm(8, channels)

    def forward(self, x, temb):
        h = self.conv(x)
        if self.temb is not None:
            h = h + self.temb(temb)[:, :, None, None]
        return F.silu(self.norm(h))


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.t1 = nn.Linear(64, 128)
        self.h1 = Block(nn.Conv2d(1, 32, 3, 1, 1), 32, True)
        self.h2 = Block(nn.Conv2d(32, 32, 3, 1, 1), 32, False)
        self.d1 = Block(nn.Conv2d(32, 64, 4, 2, 1), 64, True)
        self.d2 = Block(nn.Conv2d(64, 64, 3, 1, 1), 64, False)
        self.m1 = Block(nn.Conv2d(64, 64, 4, 2, 1), 64, True)
        self.m2 = Block(nn.Conv2d(64, 64, 3, 1, 1), 64, False)
        self.u1 = Block(nn.ConvTranspose2d(64, 64, 4, 2, 1), 64, True)
        self.u2 = Block(nn.Conv2d(128, 64, 3, 1, 1), 64, False)
        self.v1 = Block(nn.ConvTranspose2d(64, 32, 4, 2, 1), 32, True)
        self.v2 = Block(nn.Conv2d(64, 32, 3, 1, 1), 32, False)
        self.eps = nn.Conv2d(32, 1, 3, 1, 1)

    def forward(self, x, t):
        temb = F.silu(self.t1(time_embedding(t, 64)))
        h1 = self.h1(x, temb)
        h2 = self.h2(h1, temb)
        d1 = self.d1(h2, temb)
        d2 = self.d2(d1, temb)
        m1 = self.m1(d2, temb)
        m2 = self.m2(m1, temb)
        u1 = self.u1(m2, temb)
        u2 = self.u2(torch.cat([u1, d2], dim=1), temb)
        v1 = self.v1(u2, temb)
        v2 = self.v2(torch.cat([v1, h2], dim=1), temb)
        return self.eps(v2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, default_epochs=1)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    common.setup(args)

    train_x = common.to_signed(common.load_split(args.data, "train")[0]).reshape(-1, 1, 28, 28)
    betas = torch.linspace(1e-4, 0.02, 1000)
    alpha_bar = torch.cumprod(1 - betas, dim=0)

    model = UNet()
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = 0
    with common.Timer() as timer:
        while steps < args.steps:
            for x in common.Batches(train_x, args.batch, shuffle=True, seed=args.seed + steps):
                t = torch.randint(0, 1000, (x.shape[0],))
                noise = torch.randn_like(x)
                ab = alpha_bar[t][:, None, None, None]
                x_t = ab.sqrt() * x + (1 - ab).sqrt() * noise
                loss = F.mse_loss(model(x_t, t), noise)
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps += 1
                decay = min(0.995, (1 + steps) / (10 + steps))
                with torch.no_grad():
                    for e, p in zip(ema, model.parameters()):
                        e.mul_(decay).add_(p, alpha=1 - decay)
                if steps == args.steps:
                    break
    print(json.dumps({"steps": steps, "threads": args.threads,
                      "samples_per_second": round(steps * args.batch / timer.seconds, 1),
                      "train_seconds": round(timer.seconds, 3)}), flush=True)


if __name__ == "__main__":
    main()
