"""Build symopt/lab/datasets/fashion-mnist-subset.npz, the small Fashion-MNIST shipped with symopt.

From the four IDX files of Fashion-MNIST (Zalando Research, MIT licence) it draws, with
a fixed seed, 500 training images of each class (5000 in all) and 100 test images of
each class (1000), keeps them in the order of the original files, and stores them as
``uint8`` in a compressed ``.npz`` together with their indices in the original files
and the SHA-256 of the decompressed source files. Running it twice gives the same
arrays (the zip timestamps differ).

    python scripts/make_embedded_subset.py [--source DIR] [--out PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
from pathlib import Path

import numpy as np

from symopt.lab.data import DEFAULT_DIRECTORY, EMBEDDED_SUBSET, _find_file, load_idx

PER_CLASS = {"train": 500, "test": 100}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of each class, without replacement, sorted."""
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has only {len(members)} examples, need {per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def sha256_of_content(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_DIRECTORY,
                        help="directory of the four Fashion-MNIST IDX files")
    parser.add_argument("--out", type=Path, default=EMBEDDED_SUBSET)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    arrays, hashes = {}, []
    for split in ("train", "test"):
        image_path, label_path = (_find_file(args.source, stem) for stem in FILES[split])
        images, labels = load_idx(image_path), load_idx(label_path)
        index = balanced_indices(labels, PER_CLASS[split], rng)
        arrays[f"{split}_x"] = images[index]
        arrays[f"{split}_y"] = labels[index]
        arrays[f"{split}_index"] = index.astype(np.int32)
        hashes += [f"{p.name} sha256 {sha256_of_content(p)} (decompressed)"
                   for p in (image_path, label_path)]
    arrays["seed"] = np.int64(args.seed)
    arrays["provenance"] = np.array(
        "Fashion-MNIST (Zalando Research, MIT licence), class-balanced subset made by "
        "scripts/make_embedded_subset.py; " + "; ".join(hashes)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    for split in ("train", "test"):
        counts = np.bincount(arrays[f"{split}_y"], minlength=10)
        print(f"  {split}: {arrays[f'{split}_x'].shape}, per class {counts.tolist()}")
    for line in hashes:
        print(f"  {line}")


if __name__ == "__main__":
    main()
