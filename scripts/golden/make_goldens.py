#!/usr/bin/python3
"""Writes tests/golden/*.txt: what PyTorch computes, for the C tests to compare with.

Run by hand, from the top of the tree, with Debian's PyTorch (python3-torch, 1.13):

    /usr/bin/python3 scripts/golden/make_goldens.py          # every file below
    /usr/bin/python3 scripts/golden/make_goldens.py optim    # optim_*.txt only
    /usr/bin/python3 scripts/golden/make_goldens.py spectral # spectral_norm.txt only

It is not part of the build or of CI: the files it writes are committed, and the C
tests (tests/test_golden_*.c) only read them. Rerun it when a golden case changes.

Format (read by tests/golden.h): '#' starts a comment line; an entry is a header line
"name ndim d0 ... d{ndim-1}" followed by prod(d) numbers (1 for ndim 0), whitespace
separated. Tensor values are float32 printed with %.9g (exact round trip);
hyper-parameters are Python floats printed with %.17g.

Files:
  init.txt          per initializer case: the shape, the arguments, and the
                    distribution PyTorch draws from: [lo, hi, mean, std]
  loss.txt          per loss: inputs, the value for each reduction, gradients
  optim_<run>.txt   10 optimizer steps of a small MLP: initial weights, data,
                    hyper-parameters, every step's loss and the final weights
  spectral_norm.txt torch.nn.utils.spectral_norm on a Linear and a Conv2d: the
                    buffers u and v before and after training forwards, the
                    outputs, the gradients, an evaluation forward
"""

import math
import os
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden")


class Golden:
    def __init__(self, name, about):
        self.path = os.path.join(OUT, name)
        self.lines = ["# " + line for line in about.strip().split("\n")]
        self.lines.append("# written by scripts/golden/make_goldens.py, torch " + torch.__version__)

    def tensor(self, name, t):
        t = torch.as_tensor(t).detach().to(torch.float32)
        self.lines.append(" ".join([name, str(t.dim())] + [str(d) for d in t.shape]))
        vals = ["%.9g" % v for v in t.reshape(-1).tolist()]
        for k in range(0, len(vals), 8):
            self.lines.append(" ".join(vals[k:k + 8]))

    def scalars(self, name, values, shape=None):
        """Python floats, kept exact: the hyper-parameters PyTorch computes with."""
        values = [float(v) for v in values]
        shape = shape or [len(values)]
        self.lines.append(" ".join([name, str(len(shape))] + [str(d) for d in shape]))
        self.lines.append(" ".join("%.17g" % v for v in values))

    def scalar(self, name, value):
        self.lines.append("%s 0" % name)
        self.lines.append("%.17g" % float(value))

    def write(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")
        print("wrote %s (%d bytes)" % (os.path.relpath(self.path), os.path.getsize(self.path)))


# ---- initializers ---------------------------------------------------------------------
#
# Our draws come from our own generator, so only the distributions can match. Each case
# states PyTorch's distribution, computed with torch.nn.init's own helpers and formulas,
# and the script checks that formula against a large PyTorch sample before writing it.

def uniform_stats(lo, hi):
    return [lo, hi, (lo + hi) / 2, (hi - lo) / math.sqrt(12.0)]


def normal_stats(mean, std):
    return [-math.inf, math.inf, mean, std]


def init_case(shape, name, args):
    t = torch.empty(shape)
    fan_in, fan_out = (torch.nn.init._calculate_fan_in_and_fan_out(t) if t.dim() >= 2
                       else (0, 0))
    if name == "zeros":
        return [0.0, 0.0, 0.0, 0.0], lambda x: torch.nn.init.zeros_(x)
    if name == "uniform":
        return uniform_stats(*args), lambda x: torch.nn.init.uniform_(x, *args)
    if name == "normal":
        return normal_stats(*args), lambda x: torch.nn.init.normal_(x, *args)
    if name == "kaiming_uniform":
        std = torch.nn.init.calculate_gain("leaky_relu", args[0]) / math.sqrt(fan_in)
        b = math.sqrt(3.0) * std
        return uniform_stats(-b, b), lambda x: torch.nn.init.kaiming_uniform_(x, a=args[0])
    if name == "kaiming_normal":
        std = torch.nn.init.calculate_gain("leaky_relu", args[0]) / math.sqrt(fan_in)
        return normal_stats(0.0, std), lambda x: torch.nn.init.kaiming_normal_(x, a=args[0])
    if name == "xavier_uniform":
        b = math.sqrt(3.0) * args[0] * math.sqrt(2.0 / (fan_in + fan_out))
        return uniform_stats(-b, b), lambda x: torch.nn.init.xavier_uniform_(x, gain=args[0])
    if name == "xavier_normal":
        std = args[0] * math.sqrt(2.0 / (fan_in + fan_out))
        return normal_stats(0.0, std), lambda x: torch.nn.init.xavier_normal_(x, gain=args[0])
    raise ValueError(name)


def check_against_torch(label, shape, stats, draw):
    """Draws 2^20 or more values the PyTorch way and checks the stated distribution.
    The bounds are Python floats; PyTorch rounds them to float32 before drawing."""
    t = torch.empty(shape)
    reps = max(1, (1 << 20) // t.numel())
    xs = []
    for _ in range(reps):
        draw(t)
        xs.append(t.detach().double().reshape(-1).clone())
    x = torch.cat(xs)
    lo, hi, mean, std = stats
    n = x.numel()
    f32 = lambda v: torch.tensor(v, dtype=torch.float32).item()
    ok = x.min().item() >= f32(lo) and x.max().item() <= f32(hi)
    if std > 0:
        ok = ok and abs(x.mean().item() - mean) <= 6 * std / math.sqrt(n)
        ok = ok and abs(x.std().item() - std) <= 6 * std / math.sqrt(n)
        if math.isfinite(hi):   # a uniform's sample reaches close to its bounds
            ok = ok and hi - x.max().item() <= (hi - lo) * 1e-4
    else:
        ok = ok and x.abs().max().item() == 0
    if not ok:
        sys.exit("init case %s: PyTorch's draws disagree with %r" % (label, stats))


INIT_CASES = [
    # label, shape, initializer, arguments (torch.nn.init's, in its order)
    ("kaiming_uniform_a0", (256, 100), "kaiming_uniform", [0.0]),
    ("kaiming_uniform_a02", (64, 32, 3, 3), "kaiming_uniform", [0.2]),
    ("kaiming_normal_a0", (512, 784), "kaiming_normal", [0.0]),
    ("xavier_uniform", (512, 784), "xavier_uniform", [1.0]),
    ("xavier_uniform_gain2", (100, 256), "xavier_uniform", [2.0]),
    ("xavier_normal", (256, 100), "xavier_normal", [1.0]),
    ("normal", (100, 256), "normal", [0.5, 0.02]),
    ("uniform", (10000,), "uniform", [-2.0, 3.0]),
    ("zeros", (512,), "zeros", []),
]


def make_init():
    g = Golden("init.txt", """
Initializer distributions, as PyTorch draws them: per case, the tensor shape, the
arguments, and [lo, hi, mean, std] of the distribution (lo, hi = -inf, inf for normals).
linear_IN_OUT.* is nn.Linear(IN, OUT)'s default: weight by kaiming_uniform(a=sqrt(5)),
then bias by U(-1/sqrt(IN), 1/sqrt(IN)).""")
    torch.manual_seed(0)
    for fan_in, fan_out in [(784, 512), (100, 256)]:
        label = "linear_%d_%d" % (fan_in, fan_out)
        lin = torch.nn.Linear(fan_in, fan_out)
        reset = lambda: lin.reset_parameters() or lin
        std = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(fan_in)
        wb = math.sqrt(3.0) * std
        bb = 1 / math.sqrt(fan_in)
        check_against_torch(label + ".weight", (fan_out, fan_in), uniform_stats(-wb, wb),
                            lambda x: x.copy_(reset().weight))
        check_against_torch(label + ".bias", (fan_out,), uniform_stats(-bb, bb),
                            lambda x: x.copy_(reset().bias))
        g.scalars(label + ".shape", list(lin.weight.shape))
        g.scalars(label + ".weight", uniform_stats(-wb, wb))
        g.scalars(label + ".bias", uniform_stats(-bb, bb))
    for label, shape, name, args in INIT_CASES:
        stats, draw = init_case(shape, name, args)
        check_against_torch(label, shape, stats, draw)
        g.scalars(label + ".shape", list(shape))
        g.scalars(label + ".args", args if args else [0.0])
        g.scalars(label + ".stats", stats)
    g.write()


# ---- losses ---------------------------------------------------------------------------

def kl_normal(mu, logvar, reduction):
    e = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return {"mean": e.mean, "sum": e.sum, "none": lambda: e}[reduction]()


LOSSES = {
    # label: (function(a, b, reduction), which inputs take a gradient)
    "bce": (lambda a, b, r: F.binary_cross_entropy(a, b, reduction=r), (True, False)),
    "bce_with_logits": (lambda a, b, r: F.binary_cross_entropy_with_logits(a, b, reduction=r),
                        (True, False)),
    "mse": (lambda a, b, r: F.mse_loss(a, b, reduction=r), (True, True)),
    "l1": (lambda a, b, r: F.l1_loss(a, b, reduction=r), (True, True)),
    "cross_entropy": (lambda a, b, r: F.cross_entropy(a, b.long(), reduction=r), (True, False)),
    "kl_normal": (kl_normal, (True, True)),
}


def loss_inputs():
    gen = torch.Generator().manual_seed(1)
    u = lambda *s: torch.rand(*s, generator=gen)
    n = lambda *s: torch.randn(*s, generator=gen)
    # bce: probabilities at and next to the ends, where log is clamped at -100 and the
    # gradient's denominator p (1 - p) at 1e-12; targets hard and soft.
    p = torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1e-30, 1 - 1e-7],
                      [0.25, 0.5, 0.9, 0.01]])
    y = torch.tensor([[0.0, 1.0, 0.5, 1.0], [0.0, 0.3, 1.0, 0.0],
                      [1.0, 0.0, 0.7, 0.2]])
    logits = torch.tensor([[-30.0, -5.0, -0.5, 0.0], [0.5, 5.0, 30.0, 100.0],
                           [-100.0, 2.0, -2.0, 0.1]])
    a, b = n(3, 4), n(3, 4)
    b[1, 2] = a[1, 2]       # l1's gradient at a tie is 0 (sign(0))
    return {
        "bce": (p, y),
        "bce_with_logits": (logits, u(3, 4)),
        "mse": (a, b),
        "l1": (a, b),
        "cross_entropy": (3 * n(4, 5), torch.tensor([0.0, 4.0, 2.0, 2.0])),
        "kl_normal": (n(3, 4), n(3, 4)),
    }


def make_loss():
    g = Golden("loss.txt", """
Loss values and gradients, float32. Per loss L with inputs L.a and L.b: L.mean, L.sum
and L.none are the values for each reduction; L.mean.grad_a etc. are the gradients of
the reduced value w.r.t. each input that takes one. cross_entropy's b holds class
indices; kl_normal(mu=a, logvar=b) is -0.5 (1 + b - a^2 - exp(b)), reduced.""")
    for label, (a, b) in loss_inputs().items():
        fn, takes_grad = LOSSES[label]
        g.tensor(label + ".a", a)
        g.tensor(label + ".b", b)
        for red in ("mean", "sum", "none"):
            ins = [x.clone().requires_grad_(tg) for x, tg in zip((a, b), takes_grad)]
            out = fn(ins[0], ins[1], red)
            g.tensor("%s.%s" % (label, red), out)
            if red == "none":
                continue
            out.backward()
            for x, which in zip(ins, "ab"):
                if x.requires_grad:
                    g.tensor("%s.%s.grad_%s" % (label, red, which), x.grad)
    g.write()


# ---- optimizers -----------------------------------------------------------------------
#
# A Linear 6->5, tanh, Linear 5->3, sigmoid MLP under BCE (mean) against fixed targets,
# a batch of 4. Parameters in order: fc1.weight, fc1.bias, fc2.weight, fc2.bias.

STEPS = 10
PARAM_NAMES = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]

RUNS = [
    # name, optimizer, its keyword arguments, groups (parameter indices, lr, weight
    # decay), and {step: [lr per group]} changes made before that step (1-based)
    ("adam", torch.optim.Adam, dict(lr=1e-2), [([0, 1, 2, 3], 1e-2, 0.0)], {}),
    ("adam_amsgrad_wd", torch.optim.Adam,
     dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, amsgrad=True),
     [([0, 1, 2, 3], 1e-2, 1e-2)], {}),
    ("adamw", torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1),
     [([0, 1, 2, 3], 1e-2, 0.1)], {}),
    ("sgd_nesterov", torch.optim.SGD,
     dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
     [([0, 1, 2, 3], 0.1, 1e-2)], {}),
    ("sgd_dampening", torch.optim.SGD, dict(lr=0.2, momentum=0.8, dampening=0.3),
     [([0, 1, 2, 3], 0.2, 0.0)], {}),
    ("sgd_plain", torch.optim.SGD, dict(lr=0.5, weight_decay=1e-2),
     [([0, 1, 2, 3], 0.5, 1e-2)], {}),
    # Two groups, the first over two separate runs of the store; new lrs from step 6.
    ("adam_groups", torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.99)),
     [([0, 1, 3], 1e-2, 0.0), ([2], 3e-2, 1e-3)], {6: [5e-3, 1e-2]}),
    ("rmsprop", torch.optim.RMSprop, dict(lr=1e-2), [([0, 1, 2, 3], 1e-2, 0.0)], {}),
    ("rmsprop_centered_momentum", torch.optim.RMSprop,
     dict(lr=5e-3, alpha=0.9, eps=1e-6, momentum=0.5, centered=True, weight_decay=1e-2),
     [([0, 1, 2, 3], 5e-3, 1e-2)], {}),
    ("rmsprop_momentum", torch.optim.RMSprop, dict(lr=5e-3, momentum=0.9),
     [([0, 1, 2, 3], 5e-3, 0.0)], {}),
    # The clips (the spec's clip_weights and clip_grad_norm), around PyTorch's step as a
    # training loop writes them; both bite from the first step.
    ("rmsprop_clip_weights", torch.optim.RMSprop, dict(lr=5e-3, clip_weights=0.25),
     [([0, 1, 2, 3], 5e-3, 0.0)], {}),
    ("adam_clip_grad_norm", torch.optim.Adam, dict(lr=1e-2, clip_grad_norm=0.05),
     [([0, 1, 2, 3], 1e-2, 0.0)], {}),
    ("sgd_clip_both", torch.optim.SGD, dict(lr=0.5, momentum=0.9, clip_grad_norm=0.1,
                                           clip_weights=0.3),
     [([0, 1, 2, 3], 0.5, 0.0)], {}),
]

CLIPS = ("clip_grad_norm", "clip_weights")


def hyper(kind, kw, clips):
    """The optimizer's own hyper-parameters, all of them, as PyTorch fills them in, and
    the clips (0: none)."""
    d = kind([torch.zeros(1, requires_grad=True)], **kw).defaults
    betas = d.get("betas", (0.0, 0.0))
    return [d["lr"], d["weight_decay"], d.get("momentum", 0.0), d.get("dampening", 0.0),
            float(d.get("nesterov", False)), betas[0], betas[1], d.get("eps", 0.0),
            float(d.get("amsgrad", False)), d.get("alpha", 0.0),
            float(d.get("centered", False)), clips.get("clip_grad_norm", 0.0),
            clips.get("clip_weights", 0.0)]


def make_optim_run(name, kind, kw, groups, changes):
    clips = {k: kw[k] for k in CLIPS if k in kw}
    kw = {k: v for k, v in kw.items() if k not in CLIPS}
    g = Golden("optim_%s.txt" % name, """
%d steps of %s on a Linear 6->5, tanh, Linear 5->3, sigmoid MLP under BCE (mean).
hyper: lr weight_decay momentum dampening nesterov beta1 beta2 eps amsgrad alpha
centered clip_grad_norm clip_weights: before each step, torch.nn.utils.clip_grad_norm_
with clip_grad_norm, after it, every parameter clamped to [-clip_weights, clip_weights]
(0: not done)
group_of: the group of each parameter (fc1.weight fc1.bias fc2.weight fc2.bias);
group_wd: each group's weight decay; lrs: the lr of each group at each step.
loss: the loss at each step, before its update; final.*: the weights after the last.""" %
               (STEPS, kind.__name__))
    torch.manual_seed(42)
    fc1, fc2 = torch.nn.Linear(6, 5), torch.nn.Linear(5, 3)
    params = [fc1.weight, fc1.bias, fc2.weight, fc2.bias]
    x = torch.randn(4, 6)
    y = torch.tensor([[1.0, 0.0, 0.3], [0.0, 1.0, 0.8], [1.0, 1.0, 0.0], [0.2, 0.0, 1.0]])
    g.scalars("hyper", hyper(kind, kw, clips))
    g.scalars("group_of", [next(k for k, gr in enumerate(groups) if i in gr[0])
                           for i in range(len(params))])
    g.scalars("group_wd", [gr[2] for gr in groups])
    g.tensor("x", x)
    g.tensor("y", y)
    for pn, p in zip(PARAM_NAMES, params):
        g.tensor("init." + pn, p)
    opt = kind([dict(params=[params[i] for i in gr[0]], lr=gr[1], weight_decay=gr[2])
                for gr in groups], **kw)
    lrs, losses = [], []
    for step in range(1, STEPS + 1):
        for gi, lr in enumerate(changes.get(step, [])):
            opt.param_groups[gi]["lr"] = lr
        lrs.append([pg["lr"] for pg in opt.param_groups])
        opt.zero_grad()
        loss = F.binary_cross_entropy(torch.sigmoid(fc2(torch.tanh(fc1(x)))), y)
        loss.backward()
        if "clip_grad_norm" in clips:
            torch.nn.utils.clip_grad_norm_(params, clips["clip_grad_norm"])
        opt.step()
        if "clip_weights" in clips:
            with torch.no_grad():
                for p in params:
                    p.clamp_(-clips["clip_weights"], clips["clip_weights"])
        losses.append(loss.item())
    g.scalars("lrs", [lr for row in lrs for lr in row], [STEPS, len(groups)])
    g.tensor("loss", torch.tensor(losses))
    for pn, p in zip(PARAM_NAMES, params):
        g.tensor("final." + pn, p)
    g.write()


# ---- spectral normalization -------------------------------------------------------------
#
# u and v start from PyTorch's own draws, stored here: the C test sets its buffers to them.

def spectral_case(g, label, layer, x):
    m = torch.nn.utils.spectral_norm(layer)
    g.tensor(label + ".weight", m.weight_orig)
    g.tensor(label + ".bias", m.bias)
    g.tensor(label + ".u0", m.weight_u)
    g.tensor(label + ".v0", m.weight_v)
    g.tensor(label + ".x", x)
    m.train()
    y = m(x)                        # one power iteration, then W / sigma
    r = torch.linspace(-1.0, 1.0, y.numel()).reshape(y.shape)
    (y * r).sum().backward()
    g.tensor(label + ".r", r)
    g.tensor(label + ".y1", y)
    g.tensor(label + ".u1", m.weight_u)
    g.tensor(label + ".v1", m.weight_v)
    g.tensor(label + ".grad_weight", m.weight_orig.grad)
    g.tensor(label + ".grad_bias", m.bias.grad)
    with torch.no_grad():
        g.tensor(label + ".y2", m(x))   # a second iteration
        g.tensor(label + ".u2", m.weight_u)
        m.eval()
        g.tensor(label + ".y_eval", m(x))   # none: u and v stay
        g.tensor(label + ".u_eval", m.weight_u)


def make_spectral():
    g = Golden("spectral_norm.txt", """
torch.nn.utils.spectral_norm (one power iteration, eps 1e-12). Per layer L: its weight
(weight_orig), bias, buffers u0 and v0, an input x; training forward y1 = L(x) with the
buffers after it (u1, v1), and the gradients of sum(y1 * r); a second training forward
y2 (u2 after it); an evaluation forward y_eval, after which u is still u2 (u_eval).""")
    torch.manual_seed(7)
    spectral_case(g, "linear", torch.nn.Linear(5, 4), torch.randn(3, 5))
    spectral_case(g, "conv", torch.nn.Conv2d(2, 3, 3), torch.randn(2, 2, 5, 5))
    g.write()


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1] if len(sys.argv) > 1 else None   # "optim" or "spectral": those only
    if only is None:
        make_init()
        make_loss()
    if only in (None, "optim"):
        for run in RUNS:
            make_optim_run(*run)
    if only in (None, "spectral"):
        make_spectral()


if __name__ == "__main__":
    main()
