"""symopt.lab.data: IDX files, MNIST directories, the embedded subset, splits, standardisation."""

import gzip
import re

import numpy as np
import pytest

from symopt.lab import data

TYPE_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C,
              "float32": 0x0D, "float64": 0x0E}


def idx_bytes(array, code=None, shape=None):
    """An IDX file's bytes for ``array`` (optionally with a lying header)."""
    array = np.asarray(array)
    code = TYPE_CODES[array.dtype.name] if code is None else code
    shape = array.shape if shape is None else shape
    header = bytes([0, 0, code, len(shape)]) + b"".join(
        int(n).to_bytes(4, "big") for n in shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False, **kwargs):
    raw = idx_bytes(array, **kwargs)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture
def images():
    return np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)


# -- load_idx ---------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_reads_images_and_labels(tmp_path, images, gz):
    name = "images-idx3-ubyte" + (".gz" if gz else "")
    loaded = data.load_idx(write_idx(tmp_path / name, images, gz=gz))
    assert loaded.shape == (3, 28, 28) and loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, images)
    labels = data.load_idx(write_idx(tmp_path / "l", np.array([7, 2, 1], np.uint8), gz=gz))
    assert labels.tolist() == [7, 2, 1]


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "float32", "float64"])
def test_reads_every_type_big_endian_into_native_order(tmp_path, dtype):
    values = np.array([[-3, 0], [1, 300 if dtype != "int8" else 100]], dtype=dtype)
    loaded = data.load_idx(write_idx(tmp_path / "x", values))
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, values)


def test_compression_is_recognised_by_content_not_name(tmp_path, images):
    path = tmp_path / "no-suffix"
    path.write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(data.load_idx(path), images)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        data.load_idx(path)


def test_bad_magic_number(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"bad magic number 0x12340801 in .*x: not an IDX file"):
        data.load_idx(path)


def test_png_is_not_idx(tmp_path):
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ValueError, match="bad magic number 0x89504e47"):
        data.load_idx(path)


def test_unknown_type_code(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros(2, np.uint8), code=0x07)
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        data.load_idx(path)


def test_zero_dimensions(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 0]))
    with pytest.raises(ValueError, match="zero dimensions"):
        data.load_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0]))
    with pytest.raises(ValueError, match="truncated: .* ends inside its header"):
        data.load_idx(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="truncated"):
        data.load_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data_says_how_many_items(tmp_path, images, gz):
    raw = idx_bytes(images)[:-28 * 28 - 5]  # one image and 5 bytes short
    path = tmp_path / "x"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match="truncated: header says 3 images but file holds 1"):
        data.load_idx(path)


def test_header_larger_than_data_for_labels(tmp_path):
    path = write_idx(tmp_path / "x", np.array([1, 2], np.uint8), shape=(5,))
    with pytest.raises(ValueError, match="truncated: header says 5 labels but file holds 2"):
        data.load_idx(path)


def test_trailing_data(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.array([1, 2], np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="trailing data: header says 2 labels"):
        data.load_idx(path)


def test_corrupt_gzip(tmp_path, images):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images))[:100])
    with pytest.raises(ValueError, match="corrupt gzip data in"):
        data.load_idx(path)


def test_gz_name_without_gzip_content(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(ValueError, match="not gzip-compressed"):
        data.load_idx(path)


# -- load_mnist on synthetic directories ------------------------------------------------


def write_mnist(directory, n_train=6, n_test=4, gz=True, dotted=False):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    for i, (name, array) in enumerate(arrays.items()):
        name = name.replace("-idx", ".idx") if dotted else name
        compressed = gz if isinstance(gz, bool) else i % 2 == 0
        write_idx(directory / (name + (".gz" if compressed else "")), array, gz=compressed)
    return arrays


@pytest.mark.parametrize("gz", [True, False, "mixed"])
def test_load_mnist_directory(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    d = data.load_mnist(tmp_path)
    assert d.train_x.shape == (6, 784) and d.test_x.shape == (4, 784)
    assert d.train_x.dtype == np.float32 and d.train_y.dtype == np.int64
    np.testing.assert_allclose(d.train_x * 255, arrays["train-images-idx3-ubyte"].reshape(6, -1),
                               rtol=1e-6)
    assert d.test_y.tolist() == [3, 2, 1, 0]
    assert str(tmp_path) in d.source


def test_load_mnist_dotted_names_unscaled_and_cut(tmp_path):
    arrays = write_mnist(tmp_path, dotted=True)
    d = data.load_mnist(tmp_path, flatten=False, scale=False, n_train=2, n_test=3)
    assert d.train_x.shape == (2, 28, 28) and d.train_x.dtype == np.uint8
    np.testing.assert_array_equal(d.train_x, arrays["train-images-idx3-ubyte"][:2])
    assert d.test_y.shape == (3,)


@pytest.mark.parametrize("kwargs", [{"n_train": -1}, {"n_test": -5}, {"n_train": 1.5},
                                    {"n_train": True}, {"n_test": "10"}])
def test_load_mnist_refuses_bad_counts(tmp_path, kwargs):
    """n_train=-1 kept all but the last example (a slice [:-1]), silently."""
    write_mnist(tmp_path)
    (name, value), = kwargs.items()
    message = rf"{name} must be None \(all examples\) or an integer >= 0, got {value!r}"
    with pytest.raises(ValueError, match=message):
        data.load_mnist(tmp_path, **kwargs)
    with pytest.raises(ValueError, match=message):
        data.load_embedded_subset(**kwargs)
    with pytest.raises(ValueError, match=message):
        data.load_mnist(**kwargs)


def test_load_mnist_scales_255_to_1(tmp_path):
    write_mnist(tmp_path)
    image = np.full((1, 28, 28), 255, np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", image, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([4], np.uint8), gz=True)
    d = data.load_mnist(tmp_path)
    assert d.train_x.min() == 1.0 and d.train_x.max() == 1.0


def test_load_mnist_missing_file_lists_names(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="no t10k-labels-idx1-ubyte file in .*looked for"):
        data.load_mnist(tmp_path)


def test_load_mnist_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data directory"):
        data.load_mnist(tmp_path / "absent")


def test_load_mnist_images_and_labels_disagree(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), gz=True)
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        data.load_mnist(tmp_path)


def test_load_mnist_rejects_labels_as_images(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros(6, np.uint8), gz=True)
    with pytest.raises(ValueError, match="images .* have 1 dimensions, expected 3"):
        data.load_mnist(tmp_path)


def test_load_mnist_default_falls_back_to_the_subset(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEFAULT_DIRECTORY", tmp_path / "absent")
    d = data.load_mnist(n_train=10, n_test=5)
    assert "embedded" in d.source and d.train_x.shape == (10, 784)


def test_load_mnist_default_prefers_the_installed_directory(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    monkeypatch.setattr(data, "DEFAULT_DIRECTORY", tmp_path)
    assert data.load_mnist().train_x.shape == (6, 784)


# -- the embedded subset ----------------------------------------------------------------


def test_embedded_subset_shapes_classes_and_size():
    d = data.load_embedded_subset()
    assert d.train_x.shape == (5000, 784) and d.test_x.shape == (1000, 784)
    assert d.train_x.dtype == np.float32 and 0.0 <= d.train_x.min() and d.train_x.max() == 1.0
    assert np.bincount(d.train_y).tolist() == [500] * 10
    assert np.bincount(d.test_y).tolist() == [100] * 10
    assert d.n_classes == 10 and len(data.FASHION_MNIST_CLASSES) == 10
    assert data.EMBEDDED_SUBSET.stat().st_size < 4_000_000
    # Real images, not noise: most of an item's pixels are background, some are bright.
    assert 0.1 < d.train_x.mean() < 0.5 and (d.train_x > 0.9).any(axis=1).mean() > 0.5


def test_embedded_subset_records_its_provenance():
    with np.load(data.EMBEDDED_SUBSET) as f:
        assert "Zalando" in str(f["provenance"]) and "MIT" in str(f["provenance"])
        index = f["test_index"]
    assert len(np.unique(index)) == 1000 and index.max() < 10_000


@pytest.mark.skipif(not (data.DEFAULT_DIRECTORY / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="the full Fashion-MNIST is not installed")
def test_embedded_subset_matches_the_original_test_images():
    original = data.load_idx(data.DEFAULT_DIRECTORY / "t10k-images-idx3-ubyte.gz")
    labels = data.load_idx(data.DEFAULT_DIRECTORY / "t10k-labels-idx1-ubyte.gz")
    assert original.shape == (10000, 28, 28) and np.bincount(labels).tolist() == [1000] * 10
    with np.load(data.EMBEDDED_SUBSET) as f:
        np.testing.assert_array_equal(f["test_x"], original[f["test_index"]])
        np.testing.assert_array_equal(f["test_y"], labels[f["test_index"]])


# -- splits and standardisation ---------------------------------------------------------


def test_train_valid_split_partitions_reproducibly():
    x = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    x_tr, y_tr, x_va, y_va = data.train_valid_split(x, y, 5, seed=1)
    assert len(y_tr) == 15 and len(y_va) == 5
    assert sorted(np.concatenate([y_tr, y_va]).tolist()) == list(range(20))
    np.testing.assert_array_equal(x_va[:, 0], 2 * y_va)  # rows stay aligned
    again = data.train_valid_split(x, y, 5, seed=1)
    np.testing.assert_array_equal(again[3], y_va)
    other = data.train_valid_split(x, y, 5, seed=2)
    assert other[3].tolist() != y_va.tolist()


@pytest.mark.parametrize("n_valid", [0, 20, -1])
def test_train_valid_split_checks_its_size(n_valid):
    with pytest.raises(ValueError, match="n_valid must be between 1 and 19"):
        data.train_valid_split(np.zeros((20, 2)), np.zeros(20), n_valid)


def test_train_valid_split_checks_lengths():
    with pytest.raises(ValueError, match="x has 3 examples but y has 2"):
        data.train_valid_split(np.zeros((3, 1)), np.zeros(2), 1)


def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(500, 4)).astype(np.float32)
    train[:, 3] = 7.0  # a constant feature
    test = rng.normal(-1.0, 5.0, size=(50, 4)).astype(np.float32)
    train_s, test_s = data.standardize(train, test)
    assert train_s.dtype == np.float32 and test_s.dtype == np.float32
    np.testing.assert_allclose(train_s[:, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_s[:, :3].std(axis=0), 1.0, rtol=1e-5)
    mean, std = train.astype(float).mean(axis=0), train.astype(float).std(axis=0)
    np.testing.assert_allclose(test_s[:, :3], (test[:, :3] - mean[:3]) / std[:3], rtol=1e-5)
    np.testing.assert_array_equal(train_s[:, 3], 0.0)
    np.testing.assert_allclose(test_s[:, 3], test[:, 3] - 7.0, rtol=1e-6)


def test_standardize_integers_and_shape_check():
    (only,) = data.standardize(np.array([[0], [2]], dtype=np.uint8))
    assert only.dtype == np.float64 and only.ravel().tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="incompatible with the training set"):
        data.standardize(np.zeros((4, 3)), np.zeros((4, 2)))
