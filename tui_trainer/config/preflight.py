"""Provides check_inputs: what a run needs from outside its config, checked before a run
directory exists or a training child starts (the CLI, ``--detach`` and the app alike).

The data files a config names (MNIST's IDX files, CIFAR-10's binary batches) must be there
and look like what they claim to be (headers and sizes; reading them whole is the
trainer's), and a user's model factory must name a module that can be found. Standard
library only: the app checks a preset without importing torch.
"""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

from tui_trainer.config.schema import RunConfig
from tui_trainer.config.strict import ConfigError
from tui_trainer.text import first_line

__all__ = ["CIFAR_FILES", "MNIST_FILES", "check_inputs", "cifar_base", "mnist_paths"]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)
CIFAR_RECORD = 3073  # one label byte, then 3 x 32 x 32 pixels
_IDX = {"images": (2051, 3), "labels": (2049, 1)}  # magic number, dimensions


def check_inputs(cfg: RunConfig) -> None:
    """Raise ConfigError (one line naming the key and the file) when a run of ``cfg``
    could not start for want of something outside its config."""
    if cfg.data.name == "mnist":
        _check_mnist(Path(cfg.data.dir).expanduser())
    elif cfg.data.name == "cifar10":
        _check_cifar(Path(cfg.data.dir).expanduser())
    if cfg.model.kind == "factory":
        _check_factory(cfg.model.factory)


def mnist_paths(root: Path) -> list[Path]:
    """The four MNIST files in ``root`` (each optionally .gz), in MNIST_FILES order; a
    ConfigError naming the missing ones (the trainer's loader finds them here too)."""
    found = {n: next((root / f for f in (n, n + ".gz") if (root / f).is_file()), None)
             for n in MNIST_FILES}  # fmt: skip
    missing = [n for n, p in found.items() if p is None]
    if missing:
        what = "does not exist" if not root.is_dir() else f"lacks {', '.join(missing)}"
        raise ConfigError(
            f"data.dir: {root} {what}; expected the MNIST files "
            f"{', '.join(MNIST_FILES)} (each optionally .gz)"
        )
    return [p for p in found.values() if p is not None]


def _check_mnist(root: Path) -> None:
    for name, path in zip(MNIST_FILES, mnist_paths(root), strict=True):
        if path.suffix != ".gz":  # a .gz is checked when it is read
            _check_idx(path, *_IDX["images" if "images" in name else "labels"])


def _check_idx(path: Path, magic: int, dims: int) -> None:
    head = 4 * (1 + dims)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(head)
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"data.dir: cannot read {path} ({exc.strerror})") from None
    if len(raw) < head:
        raise ConfigError(f"data.dir: {path} is too short to be an IDX file")
    got, *shape = struct.unpack(f">{1 + dims}I", raw)
    if got != magic:
        raise ConfigError(f"data.dir: {path} has magic number {got}, expected {magic}")
    want = 1
    for n in shape:
        want *= n
    if size != head + want:
        raise ConfigError(
            f"data.dir: {path} holds {size - head} bytes of data, expected {want} "
            f"for shape {tuple(shape)}"
        )


def cifar_base(root: Path) -> Path:
    """The directory holding the six CIFAR-10 binary batches: ``root`` or its
    ``cifar-10-batches-bin``; a ConfigError naming what is missing."""
    nested = root / "cifar-10-batches-bin"
    base = next((d for d in (root, nested) if all((d / f).is_file() for f in CIFAR_FILES)), None)
    if base is None:
        where = nested if nested.is_dir() else root
        missing = [f for f in CIFAR_FILES if not (where / f).is_file()]
        what = "does not exist" if not where.is_dir() else f"lacks {', '.join(missing)}"
        raise ConfigError(
            f"data.dir: {where} {what}; expected the CIFAR-10 binary files "
            f"{', '.join(CIFAR_FILES)} (in it or in cifar-10-batches-bin/)"
        )
    return base


def _check_cifar(root: Path) -> None:
    base = cifar_base(root)
    for f in CIFAR_FILES:
        size = (base / f).stat().st_size
        if size == 0 or size % CIFAR_RECORD:
            raise ConfigError(
                f"data.dir: {base / f} is truncated or not a CIFAR-10 batch: {size} bytes "
                f"is not a positive multiple of {CIFAR_RECORD}"
            )


def _check_factory(spec: str) -> None:
    module, _, _ = spec.partition(":")
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or not a package
        found = False
    except Exception as exc:  # a parent package that fails on import: the child would too
        raise ConfigError(
            f"model.factory: importing {module!r} failed ({first_line(exc, with_type=True)})"
        ) from None
    if not found:
        raise ConfigError(
            f"model.factory: no module {module!r} can be imported (install it, or add its "
            f"folder to PYTHONPATH)"
        )
