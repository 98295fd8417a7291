"""Shared helpers for the PyTorch baselines: IDX reading and seeded batching.

Reads the standard MNIST-format files ({train,t10k}-{images-idx3,labels-idx1}-ubyte,
gzip or raw) from a directory with numpy/gzip/struct only (no torchvision, no download).
"""
import ctypes
import gzip
import os
import struct
import time

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path):
    if os.path.exists(path + ".gz"):
        return gzip.open(path + ".gz", "rb")
    if os.path.exists(path):
        return open(path, "rb")
    raise FileNotFoundError(f"{path}[.gz]: no such file")


def read_idx(path):
    """Read one IDX file (path without or with .gz is tried) into a numpy array."""
    if path.endswith(".gz"):
        path = path[:-3]
    with _open(path) as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code not in _DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[dtype_code])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    need = offset + count * dtype.itemsize
    if len(data) < need:
        raise ValueError(f"{path}: truncated ({len(data)} bytes, expected {need})")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims)


def load_split(directory, split):
    """Return (images uint8 tensor [N, 28, 28], labels int64 tensor [N]) for
    split 'train' or 't10k'."""
    images = read_idx(os.path.join(directory, f"{split}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(directory, f"{split}-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{directory}: {split} images/labels count mismatch")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_unit(images):
    """uint8 [N, 28, 28] -> float32 [N, 784] in [0, 1] (pixels / 255)."""
    return images.reshape(images.shape[0], -1).float().div_(255.0)


def to_signed(images):
    """uint8 [N, 28, 28] -> float32 [N, 784] in [-1, 1] (pixels / 255 * 2 - 1)."""
    return to_unit(images).mul_(2.0).sub_(1.0)


class Batches:
    """DataLoader-like iteration over a tensor: batches of `batch` rows, the last one
    partial (drop_last=False), reshuffled every epoch from a torch.Generator seeded once."""

    def __init__(self, x, batch, shuffle=True, seed=0):
        self.x = x
        self.batch = batch
        self.shuffle = shuffle
        self.gen = torch.Generator()
        self.gen.manual_seed(seed)

    def __len__(self):
        return (self.x.shape[0] + self.batch - 1) // self.batch

    def __iter__(self):
        n = self.x.shape[0]
        order = torch.randperm(n, generator=self.gen) if self.shuffle else torch.arange(n)
        for i in range(0, n, self.batch):
            yield self.x[order[i:i + self.batch]]


def add_common_args(parser, default_epochs):
    parser.add_argument("--data", default="data/mnist", help="directory of IDX files")
    parser.add_argument("--epochs", type=int, default=default_epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads, and the BLAS threads unless --blas-threads")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="OpenBLAS threads (default: the same as --threads)")
    parser.add_argument("--batch", type=int, default=64)


def set_threads(n, blas=None):
    """Use n threads for torch's own kernels (OpenMP) and `blas` (default n) for the BLAS.

    Debian's torch uses the system libblas (OpenBLAS, pthread build), whose thread pool
    ignores torch.set_num_threads and defaults to one thread per core; without this a
    "1-thread" run still runs its matmuls on every core."""
    torch.set_num_threads(n)
    blas = n if blas is None else blas
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_set_num_threads(ctypes.c_int(blas))
            return "openblas"
        except (OSError, AttributeError):
            continue
    return None


def setup(args):
    set_threads(args.threads, args.blas_threads)
    torch.manual_seed(args.seed)


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
