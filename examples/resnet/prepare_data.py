#!/usr/bin/env python3
"""The ``training`` and ``validation`` channels of ``train.py``: from the CIFAR-10 archive, or synthetic.

A channel is a directory of ``.npz`` files holding ``images`` (uint8,
N x H x W x 3, RGB, rows top to bottom) and ``labels`` (int64, N). Commands::

    python prepare_data.py cifar10 cifar-10-python.tar.gz OUT
        # OUT/training/training.npz (the 50,000 images of data_batch_1..5, in order) and
        # OUT/validation/validation.npz (the 10,000 of test_batch)
    python prepare_data.py synthetic OUT [--training 500] [--validation 200] [--seed 0] [--size 32]
        # a small learnable set in the same format, for trying the pipeline (and for the tests)

Both print the two channel directories as JSON. Upload them as the
``training`` and ``validation`` channels (``aws s3 sync OUT s3://bucket/cifar10/``),
or point a local request's ``InputDataConfig`` at them.

The archive is https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (not
downloaded here). Its batches are Python pickles; they are read with an
unpickler that accepts nothing but numpy arrays, lists, dicts, strings and
numbers, so a tampered archive cannot run code. Only numpy and the standard
library are used.
"""

import argparse
import io
import json
import os
import pickle
import sys
import tarfile
import tempfile
from typing import Any

import numpy as np
import numpy.typing as npt

TRAIN_BATCHES = ["data_batch_%d" % i for i in range(1, 6)]
TEST_BATCH = "test_batch"
SYNTHETIC_SEED = 20231102  # fixes the classes' colours and patterns; the samples use --seed
CLASSES = 10

Images = npt.NDArray[np.uint8]  # N x H x W x 3
Labels = npt.NDArray[np.int64]  # N class indices


def _save(directory: str, name: str, images: Images, labels: Labels) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name + ".npz")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, images=np.ascontiguousarray(images, dtype=np.uint8), labels=labels.astype(np.int64))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_channels(out: str, training: tuple[Images, Labels], validation: tuple[Images, Labels]) -> dict[str, str]:
    """Write (images, labels) pairs as ``OUT/training`` and ``OUT/validation``; return the two directories."""
    dirs: dict[str, str] = {}
    for channel, (images, labels) in (("training", training), ("validation", validation)):
        dirs[channel] = os.path.join(out, channel)
        _save(dirs[channel], channel, images, labels)
    return dirs


# --------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """An unpickler for the CIFAR batches: numpy arrays and builtin containers, nothing that runs code."""

    # _codecs.encode turns text into bytes: how a protocol-2 pickle written by Python 3 stores bytes
    ALLOWED = {("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core"):  # the archive was pickled with numpy 1: same objects, new home
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError("the CIFAR-10 batch refers to %s.%s: not a numpy array" % (module, name))
        return super().find_class(module, name)


def _read_batch(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> tuple[Images, Labels]:
    member = members.get(name)
    if member is None:
        raise ValueError("the archive has no %s (found: %s)" % (name, sorted(members)))
    fileobj = tar.extractfile(member)
    if fileobj is None:  # not a regular file; convert_cifar10 passes regular files only
        raise ValueError("%s is not a regular file in the archive" % name)
    raw = fileobj.read()
    batch = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise ValueError("%s: expected N x 3072 data and N labels, got %s and %s" % (name, data.shape, labels.shape))
    # each row: 1024 red, 1024 green, 1024 blue values, each plane row-major 32 x 32
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def convert_cifar10(archive: str, out: str) -> dict[str, str]:
    """OUT/training (data_batch_1..5) and OUT/validation (test_batch) from ``cifar-10-python.tar.gz``."""
    with tarfile.open(archive, "r:*") as tar:
        members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
        parts = [_read_batch(tar, members, name) for name in TRAIN_BATCHES]
        test = _read_batch(tar, members, TEST_BATCH)
    training = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return write_channels(out, training, test)


# --------------------------------------------------------------------------
# Synthetic
# --------------------------------------------------------------------------


def synthetic(n: int, seed: int, size: int = 32, classes: int = CLASSES) -> tuple[Images, Labels]:
    """``n`` images of ``classes`` classes: each class a colour and a stripe pattern, under noise.

    The classes (colour, stripe angle and frequency) come from ``SYNTHETIC_SEED``
    alone, so sets drawn with different ``seed`` values share them; each image
    draws its stripe phase, brightness and pixel noise from ``seed``. Colour
    alone separates most classes; the stripes separate the rest.
    """
    classes_rng = np.random.default_rng(SYNTHETIC_SEED)
    palette = classes_rng.uniform(0.2, 0.8, size=(classes, 3))
    angles = classes_rng.permutation(classes) * np.pi / classes
    freqs = classes_rng.integers(2, 5, size=classes)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    phase = rng.uniform(0, 2 * np.pi, size=n)
    proj = (xx[None] * np.cos(angles[labels])[:, None, None] + yy[None] * np.sin(angles[labels])[:, None, None])
    stripes = np.sin(2 * np.pi * freqs[labels][:, None, None] * proj + phase[:, None, None])
    brightness = rng.uniform(0.7, 1.3, size=n)
    images = palette[labels][:, None, None, :] * (0.7 + 0.3 * stripes[..., None]) * brightness[:, None, None, None]
    images = images + rng.normal(0.0, 0.12, size=images.shape)
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_synthetic(out: str, training: int = 500, validation: int = 200, seed: int = 0, size: int = 32
                    ) -> dict[str, str]:
    return write_channels(out, synthetic(training, seed, size), synthetic(validation, seed + 1_000_003, size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cifar = commands.add_parser("cifar10", help="convert cifar-10-python.tar.gz")
    cifar.add_argument("archive")
    cifar.add_argument("out")
    synth = commands.add_parser("synthetic", help="a small synthetic data set in the same format")
    synth.add_argument("out")
    synth.add_argument("--training", type=int, default=500)
    synth.add_argument("--validation", type=int, default=200)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    try:
        if args.command == "cifar10":
            dirs = convert_cifar10(args.archive, args.out)
        else:
            if min(args.training, args.validation) < 1 or args.size < 8:
                parser.error("--training and --validation must be >= 1 and --size >= 8")
            dirs = write_synthetic(args.out, args.training, args.validation, args.seed, args.size)
    except (OSError, ValueError, KeyError, tarfile.TarError, pickle.UnpicklingError) as exc:
        print("prepare_data.py: error: %s" % exc, file=sys.stderr)
        return 2
    print(json.dumps(dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
