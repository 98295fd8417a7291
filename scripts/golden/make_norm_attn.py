#!/usr/bin/python3
"""Writes tests/golden/norm_attn.txt: layer_norm, group_norm, batch_norm, causal
self-attention and the timestep embedding as PyTorch computes them, for
tests/test_norm_attn.c.

Run by hand, from the top of the tree, with Debian's PyTorch (python3-torch, 1.13):

    /usr/bin/python3 scripts/golden/make_norm_attn.py

Not part of the build or of CI: the file is committed. The format is make_goldens.py's.
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import Golden  # noqa: E402


class NormAttnGolden(Golden):
    def __init__(self, name, about):
        super().__init__(name, about)
        self.lines[-1] = "# written by scripts/golden/make_norm_attn.py, torch " + torch.__version__


def backward_with(g, label, out, r, inputs):
    """Gradients of sum(out * r) w.r.t. each named input."""
    g.tensor(label + ".r", r)
    (out * r).sum().backward()
    for name, x in inputs:
        g.tensor("%s.grad_%s" % (label, name), x.grad)


def leaf(t):
    return t.clone().requires_grad_(True)


def make_layer_norm(g, gen):
    x, w, b = leaf(2 * torch.randn(2, 3, 8, generator=gen) + 0.5), \
        leaf(1 + 0.3 * torch.randn(8, generator=gen)), leaf(0.3 * torch.randn(8, generator=gen))
    for n, t in (("x", x), ("w", w), ("b", b)):
        g.tensor("layer_norm." + n, t)
    y = F.layer_norm(x, (8,), w, b, eps=1e-5)
    g.tensor("layer_norm.y", y)
    backward_with(g, "layer_norm", y, torch.randn(y.shape, generator=gen),
                  (("x", x), ("w", w), ("b", b)))


def make_group_norm(g, gen):
    x, w, b = leaf(torch.randn(2, 6, 3, 3, generator=gen) - 0.3), \
        leaf(1 + 0.3 * torch.randn(6, generator=gen)), leaf(0.3 * torch.randn(6, generator=gen))
    for n, t in (("x", x), ("w", w), ("b", b)):
        g.tensor("group_norm." + n, t)
    y = F.group_norm(x, 3, w, b, eps=1e-5)
    g.tensor("group_norm.y", y)
    backward_with(g, "group_norm", y, torch.randn(y.shape, generator=gen),
                  (("x", x), ("w", w), ("b", b)))


def make_batch_norm(g, gen, label, shape):
    """Two training steps from given running statistics (momentum 0.1), then one
    evaluation step with the statistics they leave."""
    c = shape[1]
    bn = torch.nn.BatchNorm2d(c) if len(shape) == 4 else torch.nn.BatchNorm1d(c)
    with torch.no_grad():
        bn.weight.copy_(1 + 0.3 * torch.randn(c, generator=gen))
        bn.bias.copy_(0.3 * torch.randn(c, generator=gen))
        bn.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
        bn.running_var.copy_(1 + 0.5 * torch.rand(c, generator=gen))
    g.tensor(label + ".w", bn.weight)
    g.tensor(label + ".b", bn.bias)
    g.tensor(label + ".running_mean0", bn.running_mean)
    g.tensor(label + ".running_var0", bn.running_var)
    bn.train()
    for step in (1, 2):
        x = leaf(1.5 * torch.randn(shape, generator=gen) + 0.4)
        g.tensor("%s.x%d" % (label, step), x)
        bn.zero_grad()
        y = bn(x)
        g.tensor("%s.y%d" % (label, step), y)
    backward_with(g, label + ".train", y, torch.randn(y.shape, generator=gen),
                  (("x", x), ("w", bn.weight), ("b", bn.bias)))
    g.tensor(label + ".running_mean2", bn.running_mean)
    g.tensor(label + ".running_var2", bn.running_var)
    bn.eval()
    bn.zero_grad()
    x = leaf(torch.randn(shape, generator=gen))
    g.tensor(label + ".x_eval", x)
    y = bn(x)
    g.tensor(label + ".y_eval", y)
    backward_with(g, label + ".eval", y, torch.randn(y.shape, generator=gen),
                  (("x", x), ("w", bn.weight), ("b", bn.bias)))


def causal_attention(qkv, heads):
    """nanoGPT's CausalSelfAttention between c_attn and c_proj."""
    b, t, c3 = qkv.shape
    c = c3 // 3
    q, k, v = qkv.split(c, dim=2)
    q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
    return (att @ v).transpose(1, 2).contiguous().view(b, t, c)


def make_attention(g, gen, label, shape, heads):
    qkv = leaf(torch.randn(shape, generator=gen))
    g.tensor(label + ".qkv", qkv)
    y = causal_attention(qkv, heads)
    g.tensor(label + ".y", y)
    backward_with(g, label, y, torch.randn(y.shape, generator=gen), (("qkv", qkv),))


def timestep_embedding(t, dim, max_period=10000):
    """Sin half first, as DDPM's get_timestep_embedding; frequencies over half, not
    half - 1, as improved-diffusion's timestep_embedding (which puts cos first)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(7)
    g = NormAttnGolden("norm_attn.txt", """
Normalization, attention and timestep embedding, float32, eps 1e-5. Per case the inputs,
the output y, a random r and the gradients of sum(y * r) (grad_<input>).
batch_norm_2d [6, 4] and batch_norm_4d [3, 4, 2, 2]: running_mean0/var0, two training
steps (x1, y1, x2, y2; the gradients are of step 2) with momentum 0.1, the running
statistics after them (running_mean2/var2), then evaluation (x_eval, y_eval).
attention_a: qkv [2, 5, 3 * 12], 2 heads; attention_b: [1, 7, 3 * 16], 4 heads.
timestep: t, then its embedding at dim 16 and dim 9 (odd: a zero column last).""")
    make_layer_norm(g, gen)
    make_group_norm(g, gen)
    make_batch_norm(g, gen, "batch_norm_2d", (6, 4))
    make_batch_norm(g, gen, "batch_norm_4d", (3, 4, 2, 2))
    make_attention(g, gen, "attention_a", (2, 5, 36), 2)
    make_attention(g, gen, "attention_b", (1, 7, 48), 4)
    t = torch.tensor([0.0, 1.0, 7.0, 50.0, 500.0, 999.0])
    g.tensor("timestep.t", t)
    g.tensor("timestep.dim16", timestep_embedding(t, 16))
    g.tensor("timestep.dim9", timestep_embedding(t, 9))
    g.write()


if __name__ == "__main__":
    main()
