#!/usr/bin/env python3
"""ResNet-20 on CIFAR-10-format images with SGD (PyTorch), in SageMaker script mode.

Reproduces the second experiment of the SageMaker AMT Hyperband launch post:
ResNet-20 (He et al. 2016, the CIFAR variant: a 3x3 stem of 16 channels, three
stages of three basic blocks with 16, 32 and 64 channels, parameter-free
shortcuts ("option A"), global average pooling, one linear layer; 0.27M
parameters) trained with SGD (momentum, weight decay) and the standard
augmentation (random 32x32 crop of the image padded by 4 pixels, random
horizontal flip), on ml.g4dn.xlarge in the post.

Only torch, numpy and the standard library are used: torchvision is not
needed (ResNet-20 is not in torchvision, and the augmentation is written in
torch, on the training device).

The script follows the SageMaker *script mode* contract, so it runs unmodified
in the AWS PyTorch training image and in the project's local backend:

* hyperparameters arrive as ``--name value`` CLI arguments (unknown ones such
  as ``--sagemaker_program`` are ignored); the JSON in ``SM_HPS`` is used for
  names that are not on the command line;
* ``SM_CHANNEL_TRAINING`` and ``SM_CHANNEL_VALIDATION`` (both required) are
  directories of ``.npz`` files, each holding ``images`` (uint8, N x H x W x 3,
  CIFAR-10 is 32 x 32) and ``labels`` (integers in [0, num_classes)); all the
  ``.npz`` files of a channel are read in name order and concatenated
  (``prepare_data.py`` writes them from the CIFAR-10 python archive, or makes
  a small synthetic set);
* ``SM_MODEL_DIR`` (default ``./model``) receives ``model.pt``;
* ``SM_OUTPUT_DATA_DIR`` (optional) receives ``metrics.json``;
* ``SM_CHECKPOINT_DIR`` (optional; falls back to ``/opt/ml/checkpoints`` when
  that directory exists, SageMaker's default ``CheckpointConfig.LocalPath``)
  receives ``checkpoint.pt`` after every epoch, written atomically; an
  existing checkpoint is resumed from, continuing at epoch k+1 up to
  ``epochs`` (the promotion variant's resume, a spot interruption's retry);
* stdout carries exactly one objective line per epoch, e.g.
  ``epoch=3 validation:accuracy=0.4120 train:loss=1.6034``; everything else
  goes to stderr;
* SIGTERM (what SageMaker's StopTrainingJob sends) stops training at the next
  mini-batch boundary, abandoning the partial epoch; the last completed
  epoch's checkpoint stays as it is and nothing more is written; exit status
  143 (the same contract as ``examples/mlp/train.py``).

Device: the GPU when torch sees one (``cuda:0`` of the devices in
``CUDA_VISIBLE_DEVICES``), with mixed precision (``torch.autocast`` to
float16 and a ``GradScaler``); the CPU otherwise, in float32. Determinism:
``torch.use_deterministic_algorithms`` (strict on the CPU, warn-only on the
GPU, where cuDNN may lack a deterministic kernel), the weights drawn from
``seed``, and one generator per epoch seeded from (``seed``, epoch) for the
shuffle, the crops and the flips. A resumed run is therefore bit-for-bit an
uninterrupted one on the CPU (same torch build and thread count); on a GPU it
is the same computation, up to the non-determinism of its kernels.

The learning rate is constant: a schedule that depended on ``epochs`` (the
Hyperband resource) would change the first epochs' updates with the budget,
so a promoted trial (1 epoch, then resumed to 3) would not be the trial that
ran 3 epochs at once.

Exit status: 0 on success, 2 for a bad hyperparameter, bad input data or an
incompatible checkpoint (message on stderr and, when ``SM_OUTPUT_DIR`` is set,
in ``$SM_OUTPUT_DIR/failure``, SageMaker's ``FailureReason``), 143 after
SIGTERM.

Size: about 640 lines in one file, over the project's 400, for the reason
``examples/mlp/train.py`` gives: a script-mode directory runs on its own.
"""

import argparse
import hashlib
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

# SIGTERM is caught from here on (importing torch takes seconds): the handler only sets this flag.
STOP = {"flag": False}
if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: STOP.update(flag=True))

# Before CUDA is initialised: cuBLAS needs it for deterministic algorithms.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402  (after the environment it reads)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
CHECKPOINT_FORMAT = 1
EXIT_BAD_INPUT = 2
EXIT_SIGTERM = 143  # 128 + SIGTERM, the conventional "terminated" status
PAD = 4  # pixels of zero padding before the random crop
EVAL_BATCH = 500

Images = npt.NDArray[np.uint8]  # N x H x W x 3
Labels = npt.NDArray[np.int64]  # N class indices
Data = tuple[Images, Labels, Images, Labels]  # (x_train, y_train, x_val, y_val)
History = list[tuple[float, ...]]  # (validation accuracy, train loss) per epoch

# --------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------

# name -> (type, default, check, description of valid values)
HYPERPARAMETERS: dict[str, tuple[type[int] | type[float], int | float, Callable[[float], bool], str]] = {
    "batch_size": (int, 128, lambda v: v >= 1, "an integer >= 1"),
    "learning_rate": (float, 0.05, lambda v: 0 < v < math.inf, "a number > 0"),
    "momentum": (float, 0.9, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (float, 5e-4, lambda v: 0 <= v < math.inf, "a number >= 0"),
    "epochs": (int, 100, lambda v: v >= 1, "an integer >= 1"),
    "num_classes": (int, 10, lambda v: v >= 2, "an integer >= 2"),
    "seed": (int, 0, lambda v: v >= 0, "an integer >= 0"),
}


class InputError(Exception):
    """Bad hyperparameter, data or checkpoint: reported, exit status 2."""


def _convert(name: str, raw: Any) -> int | float:
    typ, _, check, desc = HYPERPARAMETERS[name]
    text = raw if isinstance(raw, str) else json.dumps(raw)
    value: int | float
    try:
        if typ is int:
            f = float(text)
            if not math.isfinite(f) or f != int(f):
                raise ValueError
            value = int(f)
        else:
            value = float(text)
            if math.isnan(value):
                raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InputError("invalid hyperparameter %s=%s: must be %s" % (name, text, desc))
    if not check(value):
        raise InputError("invalid hyperparameter %s=%s: must be %s" % (name, text, desc))
    return value


def parse_hyperparameters(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """CLI ``--name value`` first, then the SM_HPS JSON, then the defaults. Unknown arguments are ignored."""
    env = os.environ if env is None else env
    # allow_abbrev=False: an unknown hyperparameter such as --seeds must be ignored, not taken for --seed
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    for name in HYPERPARAMETERS:
        parser.add_argument("--" + name, dest=name, default=None, type=str)
    args, _unknown = parser.parse_known_args(argv)
    sm_hps: Any = {}  # SM_HPS's JSON: checked to be an object below
    raw_env = env.get("SM_HPS")
    if raw_env:
        try:
            sm_hps = json.loads(raw_env)
        except ValueError as exc:
            raise InputError("SM_HPS is not valid JSON: %s" % exc)
        if not isinstance(sm_hps, dict):
            raise InputError("SM_HPS must be a JSON object, got %s" % type(sm_hps).__name__)
    hps: dict[str, Any] = {}
    for name, (_, default, _, _) in HYPERPARAMETERS.items():
        raw = getattr(args, name)
        if raw is None:
            raw = sm_hps.get(name)
        hps[name] = default if raw is None else _convert(name, raw)
    return hps


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def load_channel(directory: str | None, name: str, num_classes: int) -> tuple[Images, Labels]:
    """(images uint8 N x H x W x 3, labels int64 N) from every ``.npz`` file of a channel directory."""
    if not directory:
        raise InputError(
            "SM_CHANNEL_%s is not set: the %s channel (a directory of .npz files with 'images' and 'labels') "
            "is required; prepare_data.py writes one" % (name.upper(), name))
    if not os.path.isdir(directory):
        raise InputError("the %s channel directory %r does not exist" % (name, directory))
    files = sorted(f for f in os.listdir(directory) if f.endswith(".npz"))
    if not files:
        raise InputError("the %s channel directory %r holds no .npz file" % (name, directory))
    images: list[Images] = []
    labels: list[Labels] = []
    for f in files:
        path = os.path.join(directory, f)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "images" not in z or "labels" not in z:
                    raise InputError("%s must hold arrays 'images' and 'labels' (has %s)" % (path, list(z.keys())))
                x, y = z["images"], z["labels"]
        except InputError:
            raise
        except Exception as exc:  # corrupt file, not an npz, ...
            raise InputError("cannot read %s: %s" % (path, exc))
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[3] != 3:
            raise InputError("%s: images must be uint8 N x H x W x 3, got %s %s" % (path, x.dtype, x.shape))
        if x.shape[1] < 8 or x.shape[2] < 8:
            raise InputError("%s: images must be at least 8 x 8 pixels, got %s" % (path, x.shape))
        y = np.asarray(y).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise InputError("%s: %d images but %d labels" % (path, x.shape[0], y.shape[0]))
        if not np.issubdtype(y.dtype, np.integer):
            raise InputError("%s: labels must be integers, got %s" % (path, y.dtype))
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise InputError("%s: labels must lie in [0, num_classes=%d), got [%d, %d]"
                             % (path, num_classes, y.min(), y.max()))
        images.append(x)
        labels.append(y.astype(np.int64))
    if len({x.shape[1:] for x in images}) != 1:
        raise InputError("the %s channel's files hold images of different sizes: %s"
                         % (name, sorted({x.shape[1:] for x in images})))
    x, y = np.concatenate(images), np.concatenate(labels)
    if x.shape[0] == 0:
        raise InputError("the %s channel holds no image" % name)
    return x, y


def load_data(num_classes: int, env: Mapping[str, str] | None = None) -> Data:
    env = os.environ if env is None else env
    x_tr, y_tr = load_channel(env.get("SM_CHANNEL_TRAINING"), "training", num_classes)
    x_va, y_va = load_channel(env.get("SM_CHANNEL_VALIDATION"), "validation", num_classes)
    if x_tr.shape[1:] != x_va.shape[1:]:
        raise InputError("training images are %s but validation images are %s" % (x_tr.shape[1:], x_va.shape[1:]))
    return x_tr, y_tr, x_va, y_va


def data_fingerprint(*arrays: npt.NDArray[Any]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.data.cast("B"))  # the array's memoryview (numpy types ndarray as a Buffer only from 3.12 on)
    return h.hexdigest()[:16]


def channel_stats(images: Images) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per-channel mean and std of the training images, in [0, 1] units (float64 sums: order-independent)."""
    flat = images.reshape(-1, 3).astype(np.float64) / 255.0
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch's shuffle, crops and flips: a function of (seed, epoch) alone."""
    digest = hashlib.sha256(b"resnet20:%d:%d" % (seed, epoch)).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def augment(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random crop (zero padding of PAD pixels) and horizontal flip of a uint8 N x H x W x 3 batch."""
    n, h, w, _ = images.shape
    padded = F.pad(images, (0, 0, PAD, PAD, PAD, PAD))
    rows = offsets[:, 0, None] + torch.arange(h, device=images.device)  # N x H
    cols = offsets[:, 1, None] + torch.arange(w, device=images.device)  # N x W
    batch = torch.arange(n, device=images.device)[:, None, None]
    out = padded[batch, rows[:, :, None], cols[:, None, :]]  # N x H x W x 3
    return torch.where(flips[:, None, None, None], out.flip(2), out)


def to_input(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x 3 -> normalised float32 N x 3 x H x W."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean[None, :, None, None]) / std[None, :, None, None]


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm; the shortcut subsamples and zero-pads channels (option A)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.extra = c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.extra:
            shortcut = x[:, :, ::self.stride, ::self.stride]
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    """ResNet-20 for 32x32 images (He et al. 2016, section 4.2): 6n + 2 layers with n = 3."""

    def __init__(self, num_classes: int = 10, blocks: int = 3, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        layers: list[nn.Module] = []
        c_in = widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks):
                layers.append(BasicBlock(c_in, width, 2 if stage > 0 and block == 0 else 1))
                c_in = width
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        logits: torch.Tensor = self.fc(x.mean(dim=(2, 3)))
        return logits  # global average pooling (deterministic backward on CUDA too)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------
# Checkpoints and atomic writes
# --------------------------------------------------------------------------


def _atomic_torch_save(obj: object, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _atomic_write_text(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def run_fingerprint(hps: Mapping[str, Any], data_fp: str) -> str:
    """Everything a resumed run must share with the run that wrote the checkpoint (not the epoch budget)."""
    d = {k: v for k, v in hps.items() if k != "epochs"}
    d["data"] = data_fp
    return json.dumps(d, sort_keys=True)


def save_checkpoint(path: str, state: Mapping[str, Any]) -> None:
    _atomic_torch_save(dict(state, format=CHECKPOINT_FORMAT), path)


def load_checkpoint(path: str, fingerprint: str) -> dict[str, Any]:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError("cannot read checkpoint %s: %s" % (path, exc))
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise InputError("checkpoint %s has an unknown format" % path)
    if ck.get("fingerprint") != fingerprint:
        raise InputError(
            "checkpoint %s was written by a different run (hyperparameters or data differ): "
            "checkpoint has %s, this run has %s" % (path, ck.get("fingerprint"), fingerprint))
    return ck


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


class StopRequested(Exception):
    pass


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
             amp: bool) -> float:
    """Accuracy on (images, labels), both on the model's device."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    with torch.no_grad(), torch.autocast(device_type=images.device.type, dtype=torch.float16, enabled=amp):
        for s in range(0, images.shape[0], EVAL_BATCH):
            logits = model(to_input(images[s:s + EVAL_BATCH], mean, std))
            correct += (logits.argmax(dim=1) == labels[s:s + EVAL_BATCH]).sum()
    return int(correct.item()) / images.shape[0]


def train(
    hps: Mapping[str, Any],
    data: Data,
    device: torch.device,
    checkpoint_path: str | None = None,
    emit: Callable[[int, float, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[ResNet20, History, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Train, resuming from ``checkpoint_path`` if it exists; return (model, history, mean, std).

    ``data`` is (x_tr, y_tr, x_va, y_va) as numpy arrays. ``emit(epoch,
    val_acc, train_loss)`` is called after each newly trained epoch (after its
    checkpoint); ``should_stop()`` is polled between mini-batches (raises
    StopRequested). history[i] = (val_acc, train_loss) of epoch i + 1,
    including the epochs restored from the checkpoint.
    """
    x_tr, y_tr, x_va, y_va = data
    amp = device.type == "cuda"
    torch.use_deterministic_algorithms(True, warn_only=amp)
    torch.backends.cudnn.benchmark = False
    mean_np, std_np = channel_stats(x_tr)
    fingerprint = run_fingerprint(hps, data_fingerprint(x_tr, y_tr, x_va, y_va))

    torch.manual_seed(hps["seed"])  # the weights (drawn on the CPU, so the same on every device)
    model = ResNet20(hps["num_classes"]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=hps["learning_rate"], momentum=hps["momentum"],
                                weight_decay=hps["weight_decay"])
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    history: History = []
    start_epoch = 0
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        ck = load_checkpoint(checkpoint_path, fingerprint)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if ck["scaler"] and amp:  # a CPU run's (disabled) scaler has an empty state: start a new one
            scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng_cpu"])
        if amp and ck.get("rng_cuda"):
            torch.cuda.set_rng_state_all(ck["rng_cuda"])
        start_epoch = int(ck["epoch"])
        history = [tuple(h) for h in ck["history"]]
        if log:
            log("resumed from %s at epoch %d" % (checkpoint_path, start_epoch))

    xt = torch.from_numpy(x_tr).to(device)
    yt = torch.from_numpy(y_tr).to(device)
    xv = torch.from_numpy(x_va).to(device)
    yv = torch.from_numpy(y_va).to(device)
    mean, std = torch.from_numpy(mean_np).to(device), torch.from_numpy(std_np).to(device)
    n, bs = xt.shape[0], hps["batch_size"]
    for epoch in range(start_epoch + 1, hps["epochs"] + 1):
        started = time.monotonic()
        gen = epoch_generator(hps["seed"], epoch)
        perm = torch.randperm(n, generator=gen).to(device)
        offsets = torch.randint(0, 2 * PAD + 1, (n, 2), generator=gen).to(device)
        flips = (torch.rand(n, generator=gen) < 0.5).to(device)
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for s in range(0, n, bs):
            if should_stop is not None and should_stop():
                raise StopRequested()
            idx = perm[s:s + bs]
            x = to_input(augment(xt[idx], offsets[idx], flips[idx]), mean, std)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                loss = F.cross_entropy(model(x), yt[idx])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward untyped
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach().double() * idx.shape[0]
        train_loss = float(loss_sum.item()) / n
        if not math.isfinite(train_loss):
            train_loss = float("nan")
        val_acc = evaluate(model, xv, yv, mean, std, amp)
        history.append((val_acc, train_loss))
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if amp else [],
                "history": [list(h) for h in history],
                "fingerprint": fingerprint,
            })
        if log:  # what MinResource is weighed against (README): never "epoch=" on stderr, the regexes' key
            log("epoch %d took %.2f s (%d images, batch %d)" % (epoch, time.monotonic() - started, n, bs))
        if emit is not None:
            emit(epoch, val_acc, train_loss)
    return model, history, mean_np, std_np


def format_line(epoch: int, val_acc: float, train_loss: float) -> str:
    return "epoch=%d validation:accuracy=%.4f train:loss=%.4f" % (epoch, val_acc, train_loss)


def load_model(model_dir_or_file: str, device: str | torch.device = "cpu") -> tuple[ResNet20, dict[str, Any]]:
    """The trained network from ``model.pt`` (or the directory holding it): (model in eval mode, record).

    ``record`` holds ``mean`` and ``std`` (per channel, [0, 1] units) and the
    ``hyperparameters``; ``predict`` applies the same normalisation.
    """
    path = model_dir_or_file
    if os.path.isdir(path):
        path = os.path.join(path, MODEL_FILE)
    record = torch.load(path, map_location=device, weights_only=True)
    hps = json.loads(record["hyperparameters"])
    model = ResNet20(hps["num_classes"]).to(device)
    model.load_state_dict(record["state_dict"])
    model.eval()
    return model, record


def predict(model: nn.Module, record: Mapping[str, Any], images: Images | torch.Tensor) -> npt.NDArray[np.int64]:
    """Class indices of uint8 N x H x W x 3 images (a numpy array or a tensor)."""
    device = next(model.parameters()).device
    x = torch.as_tensor(images).to(device)
    mean, std = record["mean"].to(device), record["std"].to(device)
    out = []
    with torch.no_grad():
        for s in range(0, x.shape[0], EVAL_BATCH):
            out.append(model(to_input(x[s:s + EVAL_BATCH], mean, std)).argmax(dim=1).cpu())
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def _log(msg: str) -> None:
    print("[train.py] " + msg, file=sys.stderr, flush=True)


def _fail(message: str) -> int:
    print("train.py: error: " + message, file=sys.stderr, flush=True)
    out = os.environ.get("SM_OUTPUT_DIR")
    if out:
        try:
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "failure"), "w") as f:
                f.write(message + "\n")
        except OSError:
            pass
    return EXIT_BAD_INPUT


def checkpoint_dir_from_env(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    d = env.get("SM_CHECKPOINT_DIR")
    if d:
        return d
    if os.path.isdir("/opt/ml/checkpoints"):
        return "/opt/ml/checkpoints"
    return None


def main(argv: list[str] | None = None) -> int:
    stop = STOP
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.update(flag=True))
    try:
        hps = parse_hyperparameters(argv)
        data = load_data(hps["num_classes"])
    except InputError as exc:
        return _fail(str(exc))
    if stop["flag"]:
        _log("SIGTERM received before training started")
        return EXIT_SIGTERM
    device = pick_device()
    ckpt_dir = checkpoint_dir_from_env()
    ckpt_path = os.path.join(ckpt_dir, CHECKPOINT_FILE) if ckpt_dir else None
    _log("hyperparameters %s; %d training and %d validation images of %s; device %s%s; torch %s threads %d; "
         "checkpoint %s" % (json.dumps(hps, sort_keys=True), len(data[1]), len(data[3]), "x".join(map(str, data[0].shape[1:])),
                            device, " (mixed precision)" if device.type == "cuda" else "", torch.__version__,
                            torch.get_num_threads(), ckpt_path))

    new_epochs = [0]

    def emit(epoch: int, val_acc: float, train_loss: float) -> None:
        new_epochs[0] += 1
        print(format_line(epoch, val_acc, train_loss), flush=True)

    t0 = time.time()
    try:
        model, history, mean, std = train(hps, data, device, checkpoint_path=ckpt_path, emit=emit,
                                          should_stop=lambda: stop["flag"], log=_log)
    except StopRequested:
        _log("SIGTERM received: stopped without finishing the current epoch")
        return EXIT_SIGTERM
    except InputError as exc:
        return _fail(str(exc))
    if stop["flag"]:
        _log("SIGTERM received after the last epoch")
        return EXIT_SIGTERM
    if new_epochs[0] == 0:
        _log("checkpoint already holds %d epochs (epochs=%d); nothing left to train" % (len(history), hps["epochs"]))

    model_dir = os.environ.get("SM_MODEL_DIR") or os.path.join(".", "model")
    _atomic_torch_save({
        "arch": "resnet20",
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "mean": torch.from_numpy(mean),
        "std": torch.from_numpy(std),
        "hyperparameters": json.dumps(hps, sort_keys=True),
    }, os.path.join(model_dir, MODEL_FILE))

    out_data = os.environ.get("SM_OUTPUT_DATA_DIR")
    if out_data and history:
        accs = [h[0] for h in history]
        best = int(np.argmax(accs))
        metrics = {
            "final_validation_accuracy": accs[-1],
            "best_validation_accuracy": accs[best],
            "best_epoch": best + 1,
            "final_epoch": len(history),
            "final_train_loss": history[-1][1],
            "validation_accuracy_history": accs,
            "hyperparameters": hps,
            "device": str(device),
        }
        _atomic_write_text(os.path.join(out_data, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    _log("done: %d new epochs (through epoch %d) in %.2f s" % (new_epochs[0], len(history), time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
