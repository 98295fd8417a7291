#!/usr/bin/python3
"""PyTorch interop fixtures for checkpoints, in tests/golden/generator/.

Run by hand, from anywhere, with Debian's PyTorch (python3-torch, 1.13):

    /usr/bin/python3 scripts/golden/pytorch_generator.py            # write, then verify
    /usr/bin/python3 scripts/golden/pytorch_generator.py --verify   # verify only

It is not part of the build or of CI: the files are committed, and tests/test_ckpt.c
reads them.

Names. aigc-run names a parameter MODEL.INDEX.weight (or .bias), INDEX being the
layer's position in the spec's `layers:` list, activations counted, which is how
nn.Sequential numbers its children. The seed GAN's generator G,

    nn.Sequential(Linear(100, 256), ReLU(), Linear(256, 512), ReLU(),
                  Linear(512, 784), Tanh())

has the state_dict key "0.weight" where aigc-run has "G.0.weight". To load an
aigc-run checkpoint into the Sequential, keep the keys that start with "G." and strip
that prefix (load_model below). Shapes need no change: a Linear weight is [out, in] in
both.

Writes, from PyTorch (torch.manual_seed(0), then the generator, then z):
  generator.safetensors       G's state_dict as "G.0.weight" ..., __metadata__
                              {"format": "pt"}; tests/test_ckpt.c loads it with
                              ck_load_weights and runs G forward on the engine
  generator_io.safetensors    z [4, 100] and G(z) [4, 784], which it compares with

Verifies, from aigc-run (tests/test_ckpt.c writes these two when run as
`AIGC_WRITE_GOLDEN=1 ./build/tests/test_ckpt.t` from the top of the tree, and checks
otherwise that its ck_save still writes written_by_aigc.safetensors byte for byte):
  written_by_aigc.safetensors     a ck_save checkpoint of M = nn.Sequential(Linear(8, 4),
                                  Tanh(), Linear(4, 2)), as M.0.* and M.2.*
  written_by_aigc_io.safetensors  x [3, 8] and M(x) as aigc-run computed it
The check: both load, with safetensors.torch.load_file when the safetensors package
is installed and with the reader below in any case; the metadata is {"format": "pt",
...}; the weights load into M with strict=True; PyTorch's M(x) matches aigc-run's.

The safetensors package is not in Debian 12, so this script writes and reads the
format by hand with json and struct, following the layout documented in
include/aigc/safetensors.h.
"""

import json
import os
import struct
import sys

import torch
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden",
                   "generator")


def save_safetensors(path, tensors, metadata):
    """tensors: (name, tensor) pairs, written in that order; metadata: str -> str."""
    header, blobs, at = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors:
        t = t.detach().to(torch.float32).contiguous()
        data = struct.pack("<%df" % t.numel(), *t.reshape(-1).tolist())
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-(8 + len(head)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    """(tensors by name, metadata), with the checks a loader needs for our own files."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "%s: data section not 8-aligned" % path
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors, covered = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        assert info["dtype"] == "F32", "%s: %s is %s" % (path, name, info["dtype"])
        begin, end = info["data_offsets"]
        assert begin == covered, "%s: %s does not start where the last tensor ended" % (path, name)
        numel = 1
        for d in info["shape"]:
            numel *= d
        assert end - begin == 4 * numel, "%s: %s has the wrong byte size" % (path, name)
        vals = struct.unpack("<%df" % numel, data[begin:end])
        tensors[name] = torch.tensor(vals, dtype=torch.float32).reshape(info["shape"])
        covered = end
    assert covered == len(data), "%s: the data section has uncovered bytes" % path
    return tensors, metadata


def load_model(model, prefix, tensors):
    """An aigc-run state (prefix "G.") into an nn.Sequential; every key must match."""
    state = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    model.load_state_dict(state, strict=True)


def generator():
    return nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                         nn.Linear(512, 784), nn.Tanh())


def write_generator():
    torch.manual_seed(0)
    g = generator()
    z = torch.randn(4, 100)
    with torch.no_grad():
        out = g(z)
    save_safetensors(os.path.join(OUT, "generator.safetensors"),
                     [("G." + k, v) for k, v in g.state_dict().items()], {"format": "pt"})
    save_safetensors(os.path.join(OUT, "generator_io.safetensors"), [("z", z), ("out", out)],
                     {"format": "pt"})

    # The generator's file must round-trip through our reader and the naming rule.
    tensors, meta = load_safetensors(os.path.join(OUT, "generator.safetensors"))
    back = generator()
    load_model(back, "G", tensors)
    with torch.no_grad():
        assert torch.equal(back(z), out)
    print("wrote generator.safetensors (%d floats) and generator_io.safetensors"
          % sum(v.numel() for v in tensors.values()))


def verify_aigc():
    """The checkpoint aigc-run wrote loads in PyTorch and computes what aigc-run computed."""
    path = os.path.join(OUT, "written_by_aigc.safetensors")
    io_path = os.path.join(OUT, "written_by_aigc_io.safetensors")
    if not (os.path.exists(path) and os.path.exists(io_path)):
        sys.exit("%s is missing: run `AIGC_WRITE_GOLDEN=1 ./build/tests/test_ckpt.t` from the "
                 "top of the tree first" % path)
    tensors, meta = load_safetensors(path)
    io, _ = load_safetensors(io_path)
    assert meta.get("format") == "pt", meta
    try:
        from safetensors.torch import load_file
    except ImportError:
        print("safetensors is not installed: checked with this script's reader only")
    else:
        lib = load_file(path)
        assert lib.keys() == tensors.keys() and all(torch.equal(lib[k], tensors[k]) for k in lib)
        print("safetensors.torch.load_file reads it the same")
    m = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 2))
    load_model(m, "M", tensors)
    with torch.no_grad():
        y = m(io["x"])
    err = (y - io["y"]).abs().max().item()
    assert torch.allclose(y, io["y"], atol=1e-6, rtol=1e-5), "max abs error %g" % err
    print("written_by_aigc.safetensors (%s) loads into PyTorch; M(x) matches aigc-run's, "
          "max abs error %.2g" % (", ".join(sorted(tensors)), err))


if __name__ == "__main__":
    if "--verify" not in sys.argv[1:]:
        os.makedirs(OUT, exist_ok=True)
        write_generator()
    verify_aigc()
