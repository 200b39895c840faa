"""Provides the datasets a run trains on, the per-epoch order, and batch augmentation.

Every dataset is built in memory as float32 CPU tensors by :func:`build_dataset`. Building is
deterministic in ``DataConfig`` (``cfg.seed`` seeds generated data, splits and subsets) and
leaves the global torch, numpy and ``random`` generators untouched. MNIST and CIFAR-10 are read
from their standard files in ``cfg.dir``; nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tui_trainer.config import ConfigError, DataConfig
from tui_trainer.config.preflight import CIFAR_FILES, cifar_base, mnist_paths
from tui_trainer.engine.placement import to_device

__all__ = ["DataError", "Dataset", "augment_batch", "build_dataset", "epoch_order", "num_batches"]

DIGIT_NAMES = tuple(str(i) for i in range(10))
SHAPE_NAMES = (
    "disk", "square", "triangle", "plus", "ring", "diamond", "cross", "ell", "tee", "frame",
)
CIFAR_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
_GATES = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "nand": lambda a, b: 1 - (a & b),
    "nor": lambda a, b: 1 - (a | b),
    "xor": lambda a, b: a ^ b,
}
MAX_SHIFT = 2  # pixels, each direction
MAX_ROTATION = 15.0  # degrees


class DataError(ValueError):
    """Bad data input; message is one line naming what was wrong."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/validation pair of tensors; inputs float32 (N, *input_shape), labels int64 (N,)."""

    name: str
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_val: torch.Tensor = field(repr=False)
    y_val: torch.Tensor = field(repr=False)
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]


def build_dataset(cfg: DataConfig) -> Dataset:
    """Build the dataset ``cfg`` names; the same cfg always gives identical tensors."""
    builders = {
        "xor": _gates, "gates": _gates, "blobs": _blobs, "spirals": _spirals,
        "digits": _digits, "mnist1d": _mnist1d, "shapes": _shapes, "mnist": _mnist,
        "cifar10": _cifar10,
    }
    if cfg.name not in builders:
        raise DataError(f"data.name: unknown dataset {cfg.name!r}; expected one of "
                        f"{', '.join(builders)}")
    xt, yt, xv, yv, names = builders[cfg.name](cfg)
    if cfg.train_subset > 0:
        if cfg.train_subset > len(yt):
            raise DataError(f"data.train_subset: asked for {cfg.train_subset} examples but "
                            f"{cfg.name} has only {len(yt)} training examples")
        keep = _stratified_order(yt, _generator(cfg.seed, "subset"))[: cfg.train_subset]
        keep = keep.sort().values
        xt, yt = xt[keep], yt[keep]
    to_x = lambda t: t.to(torch.float32).contiguous()  # noqa: E731
    to_y = lambda t: t.to(torch.int64).contiguous()  # noqa: E731
    return Dataset(cfg.name, to_x(xt), to_y(yt), to_x(xv), to_y(yv), tuple(xt.shape[1:]),
                   len(names), names)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The int64 permutation of ``range(n)`` for ``epoch``; depends on (seed, epoch) only."""
    return torch.randperm(n, generator=_generator(seed, f"epoch:{epoch}"))


def num_batches(n: int, batch_size: int) -> int:
    """Batches per epoch of ``n`` examples; the last partial batch is kept."""
    if batch_size <= 0:
        raise DataError(f"data.batch_size: expected an integer >= 1, got {batch_size}")
    return -(-n // batch_size)


def augment_batch(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Randomly shift (and rotate) a batch of images (N, C, H, W); ``"none"`` returns ``x``."""
    if mode == "none":
        return x
    if mode not in ("shift", "shift-rotate"):
        raise DataError(f"data.augment: expected one of none, shift, shift-rotate, got {mode!r}")
    if x.ndim != 4:
        raise DataError(f"data.augment: needs image data (N, C, H, W), got shape "
                        f"{tuple(x.shape)}; set data.augment = \"none\"")
    n, _, h, w = x.shape
    dev = generator.device
    shifts = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (n, 2), generator=generator, device=dev)
    shifts = to_device(shifts, x.device)
    if mode == "shift":
        p = MAX_SHIFT
        padded = F.pad(x, (p, p, p, p))
        rows = torch.arange(h, device=x.device) + p - shifts[:, :1]  # (N, H)
        cols = torch.arange(w, device=x.device) + p - shifts[:, 1:]  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
        return out.permute(0, 3, 1, 2).contiguous()
    u = to_device(torch.rand(n, generator=generator, device=dev, dtype=torch.float64), x.device)
    angle = (2 * u - 1) * math.radians(MAX_ROTATION)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3, dtype=torch.float64, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    theta[:, 0, 2] = -2.0 * shifts[:, 1] / w
    theta[:, 1, 2] = -2.0 * shifts[:, 0] / h
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# --- builders: each returns (x_train, y_train, x_val, y_val, class_names) --------------

Parts = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]


def _gates(cfg: DataConfig) -> Parts:
    gate = "xor" if cfg.name == "xor" else cfg.gate
    if gate == "not":
        a = torch.tensor([0, 1])
        x, y = a[:, None], 1 - a
    else:
        a = torch.tensor([0, 0, 1, 1])
        b = torch.tensor([0, 1, 0, 1])
        x, y = torch.stack([a, b], 1), _GATES[gate](a, b)
    return x.float(), y, x.float().clone(), y.clone(), ("0", "1")


def _blobs(cfg: DataConfig) -> Parts:
    n = _count(cfg, 400)
    std = cfg.noise or 0.5
    g = _generator(cfg.seed, "blobs")
    y = (torch.arange(n) >= n // 2).long()[torch.randperm(n, generator=g)]
    centres = torch.tensor([[-2.0, -2.0], [2.0, 2.0]])
    x = centres[y] + std * torch.randn(n, 2, generator=g)
    return _split(x, y, cfg, g) + (("0", "1"),)


def _spirals(cfg: DataConfig) -> Parts:
    n = _count(cfg, 1000)
    scale, turns = 1.0, 1.5
    std = cfg.noise or 0.1 * scale
    g = _generator(cfg.seed, "spirals")
    y = (torch.arange(n) >= n // 2).long()[torch.randperm(n, generator=g)]
    t = 0.05 + 0.95 * torch.rand(n, generator=g)
    angle = 2 * math.pi * turns * t + math.pi * y
    x = scale * t[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    x = x + std * torch.randn(n, 2, generator=g)
    return _split(x, y, cfg, g) + (("0", "1"),)


def _digits(cfg: DataConfig) -> Parts:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    x = _resize(x, cfg.size)
    return _split(x, y, cfg, _generator(cfg.seed, "digits")) + (DIGIT_NAMES,)


def _mnist1d(cfg: DataConfig) -> Parts:
    from mnist1d.data import get_dataset_args, make_dataset

    n = cfg.n or 5000
    if n < 20:
        raise DataError(f"data.n: mnist1d needs at least 20 examples, got {n}")
    args = get_dataset_args()
    args.num_samples = n
    args.seed = cfg.seed % 2**32
    args.train_split = 1.0 - cfg.val_fraction
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    as_t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a, dtype=dt))  # noqa: E731
    return (as_t(d["x"], np.float32), as_t(d["y"], np.int64),
            as_t(d["x_test"], np.float32), as_t(d["y_test"], np.int64), DIGIT_NAMES)


def _shape_masks(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The ten shapes (SHAPE_NAMES order) as masks over each image's shape coordinates."""
    ax, az = x.abs(), z.abs()
    box = torch.maximum(ax, az)
    rad = (x * x + z * z).sqrt()
    px, pz = (x + z).abs() / math.sqrt(2), (x - z).abs() / math.sqrt(2)

    def bar(a: torch.Tensor, b: torch.Tensor, w: float, h: float) -> torch.Tensor:
        return (a <= w) & (b <= h)

    return torch.stack([
        rad <= 0.8,  # disk
        box <= 0.7,  # square
        (z >= -0.6) & (z <= 0.8 - 1.6 * ax),  # triangle
        bar(ax, az, 0.25, 0.8) | bar(az, ax, 0.25, 0.8),  # plus
        (rad >= 0.5) & (rad <= 0.85),  # ring
        ax + az <= 0.9,  # diamond
        bar(px, pz, 0.22, 0.9) | bar(pz, px, 0.22, 0.9),  # cross
        ((x >= -0.7) & (x <= -0.3) & (az <= 0.8)) | ((z >= -0.8) & (z <= -0.4) & (ax <= 0.7)),
        ((z >= 0.4) & (z <= 0.8) & (ax <= 0.8)) | ((ax <= 0.2) & (az <= 0.8)),  # tee
        (box <= 0.75) & (box >= 0.45),  # frame
    ], 1)


def _shapes(cfg: DataConfig) -> Parts:
    """Textured shapes in clutter: 10 classes (SHAPE_NAMES), one grey channel, standardised.

    Each image is one shape at a random position, size and tilt (+-20 degrees), filled with
    a random sinusoidal grating, on a background grating of its own, with clutter strokes
    (random bars) and Gaussian pixel noise (``data.noise``, default 0.3). The class is the
    shape; texture, polarity, clutter and noise are nuisances, so a net needs many epochs
    to fit it. Drawn at twice the side and averaged down (anti-aliased).
    """
    n = _count(cfg, 4000)
    side = cfg.size or 16
    s2 = 2 * side
    g = _generator(cfg.seed, "shapes")
    y = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    lin = (torch.arange(s2, dtype=torch.float32) + 0.5) / s2 * 2 - 1
    gy, gx = torch.meshgrid(-lin, lin, indexing="ij")  # (s2, s2), y up
    gx, gy = gx[None], gy[None]
    col = lambda t: t[:, None, None]  # noqa: E731

    def grating() -> torch.Tensor:
        k, phi, psi = math.pi * (1.5 + 2.5 * u(n)), u(n) * math.pi, u(n) * 2 * math.pi
        return torch.sin(col(k) * (gx * col(phi.cos()) + gy * col(phi.sin())) + col(psi))

    cx, cy = (u(n) * 2 - 1) * 0.3, (u(n) * 2 - 1) * 0.3
    r = 0.45 + 0.3 * u(n)
    th = (u(n) * 2 - 1) * math.radians(20)
    dx, dy = gx - col(cx), gy - col(cy)
    c, s = col(th.cos()), col(th.sin())
    x, z = (c * dx + s * dy) / col(r), (-s * dx + c * dy) / col(r)
    masks = _shape_masks(x, z)  # (n, 10, s2, s2)
    mask = masks[torch.arange(n), y].float()
    fg, bg = grating(), grating()
    polarity = torch.where(u(n) < 0.5, -1.0, 1.0)
    img = 0.3 * bg + mask * (col(polarity * (0.6 + 0.4 * u(n))) + 0.4 * fg)
    for _ in range(3):  # clutter: short bars at random places, angles and intensities
        bx, by, ang = u(n) * 2 - 1, u(n) * 2 - 1, u(n) * math.pi
        ca, sa = col(ang.cos()), col(ang.sin())
        ex, ey = gx - col(bx), gy - col(by)
        along, across = (ca * ex + sa * ey).abs(), (-sa * ex + ca * ey).abs()
        stroke = ((along <= 0.35) & (across <= 0.06)).float()
        img = img + stroke * col((u(n) * 2 - 1) * 1.2)
    img = F.avg_pool2d(img[:, None], 2)
    img = img + (cfg.noise or 0.3) * torch.randn(img.shape, generator=g)
    img = (img - img.mean()) / img.std()
    return _split(img, y, cfg, g) + (SHAPE_NAMES,)


def _mnist(cfg: DataConfig) -> Parts:
    root = Path(cfg.dir).expanduser()
    paths = _located(mnist_paths, root)
    xt, yt = _idx_images(paths[0]), _idx_labels(paths[1])
    xv, yv = _idx_images(paths[2]), _idx_labels(paths[3])
    for x, y, p in ((xt, yt, paths[0]), (xv, yv, paths[2])):
        if len(x) != len(y):
            raise DataError(f"data.dir: {p} holds {len(x)} images but its labels file "
                            f"holds {len(y)}")
    return _resize(xt, cfg.size), yt, _resize(xv, cfg.size), yv, DIGIT_NAMES


def _cifar10(cfg: DataConfig) -> Parts:
    root = Path(cfg.dir).expanduser()
    base = _located(cifar_base, root)
    parts = [_cifar_file(base / f) for f in CIFAR_FILES]
    xt = torch.cat([p[0] for p in parts[:5]])
    yt = torch.cat([p[1] for p in parts[:5]])
    xv, yv = parts[5]
    return _resize(xt, cfg.size), yt, _resize(xv, cfg.size), yv, CIFAR_NAMES


# --- helpers ---------------------------------------------------------------------------


def _generator(seed: int, tag: str) -> torch.Generator:
    """A CPU generator seeded from (seed, tag) alone, stable across platforms and runs."""
    digest = hashlib.sha256(f"{seed}:{tag}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _count(cfg: DataConfig, default: int) -> int:
    n = cfg.n or default
    if n < 2:
        raise DataError(f"data.n: {cfg.name} needs at least 2 examples, got {n}")
    return n


def _stratified_order(y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random order of indices in which every prefix holds the classes in proportion."""
    perm = torch.randperm(len(y), generator=g)
    yp = y[perm]
    key = torch.empty(len(y), dtype=torch.float64)
    for c in yp.unique():
        pos = (yp == c).nonzero().squeeze(1)
        key[pos] = (torch.arange(len(pos), dtype=torch.float64) + 0.5) / len(pos)
    return perm[torch.argsort(key, stable=True)]


def _split(x: torch.Tensor, y: torch.Tensor, cfg: DataConfig, g: torch.Generator
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified train/val split by cfg.val_fraction; both keep the original order."""
    order = _stratified_order(y, g)
    n_val = int(len(y) * cfg.val_fraction)
    val, train = order[:n_val].sort().values, order[n_val:].sort().values
    return x[train], y[train], x[val], y[val]


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if size == 0 or size == x.shape[-1] == x.shape[-2]:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=size < min(x.shape[-2:]))


def _located(find: Callable[[Path], Any], root: Path) -> Any:
    """The files ``find`` (config.preflight's: the same check as before a run) locates."""
    try:
        return find(root)
    except ConfigError as exc:
        raise DataError(str(exc)) from None


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"data.dir: cannot read {path} ({exc})") from None


def _idx(path: Path, magic: int, dims: int) -> tuple[np.ndarray, tuple[int, ...]]:
    data = _read(path)
    head = 4 * (1 + dims)
    if len(data) < head:
        raise DataError(f"data.dir: {path} is too short to be an IDX file")
    got, *shape = struct.unpack(f">{1 + dims}I", data[:head])
    if got != magic:
        raise DataError(f"data.dir: {path} has magic number {got}, expected {magic}")
    if len(data) != head + math.prod(shape):
        raise DataError(f"data.dir: {path} holds {len(data) - head} bytes of data, expected "
                        f"{math.prod(shape)} for shape {tuple(shape)}")
    return np.frombuffer(data, dtype=np.uint8, offset=head), tuple(shape)


def _idx_images(path: Path) -> torch.Tensor:
    arr, (n, rows, cols) = _idx(path, 2051, 3)
    return torch.from_numpy(arr.reshape(n, 1, rows, cols).astype(np.float32) / 255.0)


def _idx_labels(path: Path) -> torch.Tensor:
    arr, _ = _idx(path, 2049, 1)
    if arr.size and arr.max() > 9:
        raise DataError(f"data.dir: {path} holds label {arr.max()}, expected 0..9")
    return torch.from_numpy(arr.astype(np.int64))


def _cifar_file(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    data = _read(path)
    if len(data) == 0 or len(data) % 3073:
        raise DataError(f"data.dir: {path} is truncated or not a CIFAR-10 batch: {len(data)} "
                        f"bytes is not a positive multiple of 3073")
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3073)
    if rec[:, 0].max() > 9:
        raise DataError(f"data.dir: {path} holds label {rec[:, 0].max()}, expected 0..9")
    x = torch.from_numpy(rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return (x - mean) / std, torch.from_numpy(rec[:, 0].astype(np.int64))
