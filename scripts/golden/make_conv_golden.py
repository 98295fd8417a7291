#!/usr/bin/python3
"""Writes tests/golden/conv.txt: PyTorch's conv2d, conv_transpose2d, avg_pool2d and
nearest upsampling on a few small cases, values and gradients, for tests/test_conv.c.

Run by hand, from the top of the tree, with Debian's PyTorch (python3-torch, 1.13):

    /usr/bin/python3 scripts/golden/make_conv_golden.py

Same format and writer as make_goldens.py; not part of the build or of CI.
"""

import torch
import torch.nn.functional as F

from make_goldens import Golden

# label: (function of (x, w, b), x shape, w shape or None, bias); w and b are None
# when the case has none.
CASES = {
    "conv2d_s2p1": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                    (2, 3, 7, 6), (4, 3, 3, 3), True),
    "conv2d_k1": (lambda x, w, b: F.conv2d(x, w, b), (2, 3, 4, 5), (2, 3, 1, 1), False),
    "conv_transpose2d_k4s2p1": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1),
                                (2, 3, 4, 5), (3, 2, 4, 4), True),
    "conv_transpose2d_k3s2p1op1": (lambda x, w, b: F.conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1), (1, 2, 3, 3), (2, 3, 3, 3), True),
    "avg_pool2d_k2": (lambda x, w, b: F.avg_pool2d(x, 2), (2, 3, 5, 6), None, False),
    "upsample_nearest2d_x2": (lambda x, w, b: F.interpolate(x, scale_factor=2, mode="nearest"),
                              (2, 2, 3, 4), None, False),
}


def main():
    torch.set_num_threads(1)
    g = Golden("conv.txt", """
Per case C: inputs C.x, C.w and C.b (those the op takes), the output C.y, a weight C.r
and the gradients C.grad_x, C.grad_w, C.grad_b of sum(C.y * C.r).""")
    g.lines[-1] = g.lines[-1].replace("make_goldens.py", "make_conv_golden.py")
    gen = torch.Generator().manual_seed(3)
    for label, (fn, xs, ws, bias) in CASES.items():
        ins = {"x": torch.randn(*xs, generator=gen)}
        if ws:
            ins["w"] = torch.randn(*ws, generator=gen)
            if bias:
                ins["b"] = torch.randn(ws[1] if label.startswith("conv_t") else ws[0],
                                       generator=gen)
        for k, t in ins.items():
            g.tensor("%s.%s" % (label, k), t)
            t.requires_grad_(True)
        y = fn(ins["x"], ins.get("w"), ins.get("b"))
        r = torch.randn(*y.shape, generator=gen)
        (y * r).sum().backward()
        g.tensor(label + ".y", y)
        g.tensor(label + ".r", r)
        for k, t in ins.items():
            g.tensor("%s.grad_%s" % (label, k), t.grad)
    g.write()


if __name__ == "__main__":
    main()
