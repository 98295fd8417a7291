"""The classic PyTorch MNIST VAE, as a baseline for specs/vae.yaml.

fc1 784->400 ReLU, fc21/fc22 400->20 (mu, logvar), z = mu + exp(0.5 logvar) * eps,
fc3 20->400 ReLU, fc4 400->784 Sigmoid; loss = BCE(sum) + KLD; Adam lr 1e-3; batch 64,
shuffled. Unlike the original example's Normalize((0.5,), (0.5,)) variant, x stays in
[0, 1] (pixels / 255), as BCE requires.

Prints one JSON line per epoch with the train and test loss per image and the epoch
time; the test loss per image is the sum of the test batch losses / number of test images.

    /usr/bin/python3 scripts/baselines/vae.py --data data/mnist --epochs 10 --seed 0
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


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, default_epochs=10)
    args = parser.parse_args()
    common.setup(args)

    train_x = common.to_unit(common.load_split(args.data, "train")[0])
    test_x = common.to_unit(common.load_split(args.data, "t10k")[0])
    train = common.Batches(train_x, args.batch, shuffle=True, seed=args.seed)
    test = common.Batches(test_x, args.batch, shuffle=False)

    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        with common.Timer() as t:
            model.train()
            train_sum = 0.0
            for x in train:
                opt.zero_grad()
                recon, mu, logvar = model(x)
                loss = loss_function(recon, x, mu, logvar)
                loss.backward()
                opt.step()
                train_sum += loss.item()
        model.eval()
        test_sum = 0.0
        with torch.no_grad():
            for x in test:
                recon, mu, logvar = model(x)
                test_sum += loss_function(recon, x, mu, logvar).item()
        print(json.dumps({
            "epoch": epoch,
            "train_loss_per_image": round(train_sum / train_x.shape[0], 4),
            "test_loss_per_image": round(test_sum / test_x.shape[0], 4),
            "train_seconds": round(t.seconds, 3),
        }), flush=True)


if __name__ == "__main__":
    main()
