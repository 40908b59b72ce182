"""Data for the examples: IDX files (MNIST, Fashion-MNIST), splits and normalisation.

:func:`load_idx` reads one IDX file, gzip-compressed or raw, checking its header
against its size. :func:`load_mnist` reads the four files of MNIST or Fashion-MNIST from
a directory, or, without a directory, the full Fashion-MNIST when it is installed under
``/usr/share/datasets/fashion-mnist`` and otherwise the small subset shipped with
symopt (:func:`load_embedded_subset`). :func:`train_valid_split` holds out a validation
set and :func:`standardize` normalises inputs with the training set's statistics, as
the course note advises.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_DIRECTORY",
    "EMBEDDED_SUBSET",
    "FASHION_MNIST_CLASSES",
    "ImageData",
    "load_embedded_subset",
    "load_idx",
    "load_mnist",
    "standardize",
    "train_valid_split",
]

#: Where :func:`load_mnist` looks for the full Fashion-MNIST when no directory is given.
DEFAULT_DIRECTORY = Path("/usr/share/datasets/fashion-mnist")

#: The Fashion-MNIST subset shipped with symopt (see ``symopt/lab/datasets/README.md``).
EMBEDDED_SUBSET = Path(__file__).with_name("datasets") / "fashion-mnist-subset.npz"

#: Fashion-MNIST's class names, by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if it is gzip (recognised by content, not name)."""
    if not path.exists():
        raise FileNotFoundError(f"no such IDX file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an IDX file")
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        if path.suffix == ".gz":
            raise ValueError(f"{path} has a .gz name but is not gzip-compressed")
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"corrupt gzip data in {path}: {err}") from None


def _item_word(ndim: int) -> str:
    return {1: "labels", 3: "images"}.get(ndim, "items")


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, the format of MNIST and Fashion-MNIST, gzip-compressed or raw.

    An IDX file is a 4-byte magic number ``0x00 0x00 <type code> <ndim>``, then ``ndim``
    big-endian 32-bit dimensions, then the data in big-endian order. Compression is
    recognised by content, so the name does not matter.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    numpy.ndarray
        The array, with the file's shape and type in native byte order (``uint8`` for
        MNIST's images and labels).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not IDX (bad magic number), has an unknown type code or no
        dimensions, is truncated (shorter than its header says, or its header cut off),
        has trailing bytes, or is corrupt gzip.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = f.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> load_idx(f)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(
            f"truncated: {path} holds {len(data)} bytes, less than an IDX magic number")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"bad magic number 0x{magic:08x} in {path}: not an IDX file")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_DTYPES)
        raise ValueError(f"unknown IDX type code 0x{code:02x} in {path} (known: {known})")
    if ndim == 0:
        raise ValueError(f"bad IDX header in {path}: zero dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(
            f"truncated: {path} ends inside its header ({len(data)} bytes, the header of a "
            f"{ndim}-dimensional IDX file needs {header_size})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    item_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    payload = len(data) - header_size
    expected = shape[0] * item_bytes
    if payload != expected:
        words = _item_word(ndim)
        held = payload // item_bytes if item_bytes else 0
        if payload < expected:
            raise ValueError(
                f"truncated: header says {shape[0]} {words} but file holds {held} "
                f"({payload} of {expected} data bytes) in {path}"
            )
        raise ValueError(
            f"trailing data: header says {shape[0]} {words} ({expected} data bytes) but "
            f"{path} holds {payload} data bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


@dataclass(frozen=True)
class ImageData:
    """A labelled image data set split into training and test sets.

    Attributes
    ----------
    train_x, test_x : numpy.ndarray
        Images, ``float32`` in ``[0, 1]``, shape ``(n, 784)`` (or ``(n, 28, 28)`` when
        loaded with ``flatten=False``; ``uint8`` with ``scale=False``).
    train_y, test_y : numpy.ndarray
        Labels, ``int64`` in ``0..9``.
    source : str
        Where the data came from, for logs and figure captions.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        """The number of classes (the largest label plus one)."""
        return int(max(self.train_y.max(), self.test_y.max())) + 1

    def __repr__(self) -> str:
        return (f"ImageData(train_x={self.train_x.shape} {self.train_x.dtype}, "
                f"test_x={self.test_x.shape}, source={self.source!r})")


_STANDARD_NAMES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _find_file(directory: Path, stem: str) -> Path:
    # The standard names, gzip first; some mirrors write "train-images.idx3-ubyte".
    dotted = stem.replace("-idx", ".idx")
    candidates = [f"{stem}.gz", stem, f"{dotted}.gz", dotted]
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"no {stem} file in {directory} (looked for {', '.join(candidates)})"
    )


def _finish(images, labels, split, source, flatten, scale):
    """Check images and labels agree; shape and scale the images, widen the labels."""
    if images.ndim != 3:
        raise ValueError(f"{split} images in {source} have {images.ndim} dimensions, expected 3")
    if labels.ndim != 1:
        raise ValueError(f"{split} labels in {source} have {labels.ndim} dimensions, expected 1")
    if len(images) != len(labels):
        raise ValueError(
            f"{split} set of {source}: {len(images)} images but {len(labels)} labels"
        )
    if flatten:
        images = images.reshape(len(images), -1)
    if scale:
        images = images.astype(np.float32) / np.float32(255.0)
    return images, labels.astype(np.int64)


def _count(value, name):
    """``None`` or a number of examples to keep: an integer >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be None (all examples) or an integer >= 0, "
                         f"got {value!r}")
    return int(value)


def load_mnist(
    directory: str | os.PathLike | None = None,
    *,
    flatten: bool = True,
    scale: bool = True,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageData:
    """Load MNIST or Fashion-MNIST (the same file format) from a directory of IDX files.

    Parameters
    ----------
    directory : str or path-like, optional
        A directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzip-compressed
        (``.gz``) or not. By default :data:`DEFAULT_DIRECTORY` when it holds them, else
        the embedded subset (:func:`load_embedded_subset`).
    flatten : bool, default True
        Images as rows of 784 pixels; False keeps them 28 x 28.
    scale : bool, default True
        Images as ``float32`` in ``[0, 1]``; False keeps the ``uint8`` pixels.
    n_train, n_test : int, optional
        Keep only the first ``n_train`` training and ``n_test`` test examples (integers
        >= 0; all of them by default).

    Returns
    -------
    ImageData

    Raises
    ------
    FileNotFoundError
        If ``directory`` does not exist or lacks one of the four files.
    ValueError
        If a file is not valid IDX (see :func:`load_idx`) or images and labels disagree.

    Examples
    --------
    >>> d = load_mnist()  # the full Fashion-MNIST if installed, else the subset
    >>> d.train_x.shape[1], d.train_x.dtype, d.train_y.dtype
    (784, dtype('float32'), dtype('int64'))
    """
    n_train, n_test = _count(n_train, "n_train"), _count(n_test, "n_test")
    if directory is None:
        try:
            return load_mnist(DEFAULT_DIRECTORY, flatten=flatten, scale=scale,
                              n_train=n_train, n_test=n_test)
        except FileNotFoundError:
            return load_embedded_subset(flatten=flatten, scale=scale,
                                        n_train=n_train, n_test=n_test)
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such data directory: {directory}")
    paths = {key: _find_file(directory, stem) for key, stem in _STANDARD_NAMES.items()}
    arrays = {key: load_idx(path) for key, path in paths.items()}
    train = _finish(arrays["train_x"][:n_train], arrays["train_y"][:n_train], "training",
                    directory, flatten, scale)
    test = _finish(arrays["test_x"][:n_test], arrays["test_y"][:n_test], "test",
                   directory, flatten, scale)
    return ImageData(*train, *test, source=f"IDX files in {directory}")


def load_embedded_subset(
    *,
    flatten: bool = True,
    scale: bool = True,
    n_train: int | None = None,
    n_test: int | None = None,
) -> ImageData:
    """Load the Fashion-MNIST subset shipped with symopt: 5000 training, 1000 test images.

    Both sets are class-balanced (500 and 100 images of each of the 10 classes), drawn
    with a fixed seed by ``scripts/make_embedded_subset.py``, and kept in the order of the
    original files. Fashion-MNIST is by Zalando Research (MIT licence); see
    ``symopt/lab/datasets/README.md``. The arguments are those of :func:`load_mnist`.

    Examples
    --------
    >>> d = load_embedded_subset()
    >>> d.train_x.shape, d.test_x.shape, int(d.train_x.max())
    ((5000, 784), (1000, 784), 1)
    """
    n_train, n_test = _count(n_train, "n_train"), _count(n_test, "n_test")
    if not EMBEDDED_SUBSET.is_file():
        raise FileNotFoundError(
            f"the embedded subset {EMBEDDED_SUBSET} is missing; run "
            "scripts/make_embedded_subset.py to rebuild it"
        )
    with np.load(EMBEDDED_SUBSET) as f:
        arrays = {key: f[key] for key in _STANDARD_NAMES}
    train = _finish(arrays["train_x"][:n_train], arrays["train_y"][:n_train], "training",
                    EMBEDDED_SUBSET.name, flatten, scale)
    test = _finish(arrays["test_x"][:n_test], arrays["test_y"][:n_test], "test",
                   EMBEDDED_SUBSET.name, flatten, scale)
    return ImageData(*train, *test, source="embedded Fashion-MNIST subset (symopt)")


def train_valid_split(
    x: np.ndarray,
    y: np.ndarray,
    n_valid: int,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``n_valid`` random examples as a validation set.

    Parameters
    ----------
    x, y : numpy.ndarray
        Inputs and targets, with the same first dimension.
    n_valid : int
        The size of the validation set, ``0 < n_valid < len(x)``.
    seed : int or numpy.random.Generator, default 0
        Chooses the held-out examples; the same seed gives the same split.

    Returns
    -------
    (x_train, y_train, x_valid, y_valid)
        Copies; each part keeps the original order of its examples.

    Examples
    --------
    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> x_tr, y_tr, x_va, y_va = train_valid_split(x, y, 2, seed=0)
    >>> len(y_tr), len(y_va), sorted(np.concatenate([y_tr, y_va]).tolist())
    (3, 2, [0, 1, 2, 3, 4])
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
    n_valid = int(n_valid)
    if not 0 < n_valid < len(x):
        raise ValueError(f"n_valid must be between 1 and {len(x) - 1}, got {n_valid}")
    rng = np.random.default_rng(seed)
    held_out = np.zeros(len(x), dtype=bool)
    held_out[rng.permutation(len(x))[:n_valid]] = True
    return x[~held_out], y[~held_out], x[held_out], y[held_out]


def standardize(train: np.ndarray, *others: np.ndarray, axis: int = 0) -> tuple[np.ndarray, ...]:
    r"""Normalise every feature to zero mean and unit variance, using training statistics.

    .. math:: x \leftarrow (x - \mu) / \sigma, \qquad
        \mu, \sigma^2 \text{ the mean and variance of the training set}

    The validation and test sets get the training set's :math:`\mu` and :math:`\sigma`,
    as the course note insists, never their own. Features with zero variance in the
    training set (MNIST's blank border pixels) are only centred.

    Parameters
    ----------
    train : numpy.ndarray
        The training inputs; statistics are taken over ``axis`` (the examples).
    *others : numpy.ndarray
        Validation, test, ... inputs, with the same feature shape.
    axis : int, default 0

    Returns
    -------
    tuple of numpy.ndarray
        ``train`` then each of ``others``, normalised, in ``train``'s floating dtype
        (``float64`` for integer input).

    Examples
    --------
    >>> tr, te = standardize(np.array([[0.0, 5.0], [2.0, 5.0]]), np.array([[4.0, 6.0]]))
    >>> tr.tolist(), te.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [[3.0, 1.0]])
    """
    train = np.asarray(train)
    dtype = train.dtype if train.dtype.kind == "f" else np.dtype(np.float64)
    mean = train.mean(axis=axis, keepdims=True, dtype=np.float64)
    std = train.std(axis=axis, keepdims=True, dtype=np.float64)
    std[std <= np.finfo(dtype).tiny] = 1.0
    result = []
    for i, x in enumerate((train, *others)):
        x = np.asarray(x)
        if np.delete(x.shape, axis).tolist() != np.delete(train.shape, axis).tolist():
            raise ValueError(
                f"array {i} has shape {x.shape}, incompatible with the training set's "
                f"{train.shape} (features must match along every axis but {axis})"
            )
        result.append(((x - mean) / std).astype(dtype))
    return tuple(result)
