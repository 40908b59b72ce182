"""What the example scripts share: threads, arguments, data, a classifier's training, tables.

Part of the lab, not of the library: the examples use :mod:`symopt.lab.data`, :mod:`symopt.lab.nn`,
:mod:`symopt.lab.training` and :mod:`symopt.lab.history` for the real work, and this module only
joins them the way every example needs (one compiled step per run, a validation set
evaluated each epoch, histories written as they grow, Markdown tables at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ImageSplit",
    "base_parser",
    "default_learning_rate",
    "fit_classifier",
    "form_updates",
    "load_image_split",
    "add_data_argument",
    "final_row",
    "limit_threads",
    "markdown_table",
    "write_rows",
]


def limit_threads(n: int = 1):
    """A context in which BLAS runs on ``n`` threads (threadpoolctl; without it, nothing).

    The examples' matrices are small (a batch of 100 against a 784 x 600 layer): one BLAS
    thread is ten to twenty times faster than OpenBLAS threads fighting over busy cores.
    The scripts run their ``main`` inside it; importing the kit changes nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


# ---------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------


def base_parser(description: str, *, out: str,
                epochs: int | None = None) -> argparse.ArgumentParser:
    """A parser with the options every example has: ``--out``, ``--epochs``, ``--quick``,
    ``--seed``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default=out, help="directory for figures, histories and tables")
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=None,
                            help=f"training epochs (default {epochs}; fewer with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run on little data, to see that everything works")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data split, weights, batches")
    return parser


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", default=None,
        help="directory of MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...); "
             "'embedded' for the subset shipped with symopt; by default the full "
             "Fashion-MNIST in /usr/share/datasets/fashion-mnist when present, else the subset")


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass
class ImageSplit:
    """Training, validation and test images (float32 rows of 784) and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def describe(self) -> str:
        return (f"{self.source}: {len(self.x_train)} training, {len(self.x_valid)} validation, "
                f"{len(self.x_test)} test images")


def load_image_split(data: str | None = None, *, n_valid: int | None = None,
                     n_train: int | None = None, n_test: int | None = None,
                     seed: int = 0) -> ImageSplit:
    """Load the image data (see ``--data``) and hold out a validation set from the training set.

    ``n_valid`` defaults to a sixth of the training set, at most 10000 (MNIST's 50000 /
    10000 split of the blog's script). ``n_train`` and ``n_test`` cut the sets after the
    split (for quick runs).
    """
    from symopt.lab.data import load_embedded_subset, load_mnist, train_valid_split

    if data == "embedded":
        images = load_embedded_subset()
    else:
        images = load_mnist(data)
    x, y = images.train_x, images.train_y
    if n_valid is None:
        n_valid = min(10000, len(x) // 6)
    x_tr, y_tr, x_va, y_va = train_valid_split(x, y, n_valid, seed=seed)
    x_te, y_te = images.test_x, images.test_y
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    if n_test is not None:
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    return ImageSplit(x_tr, y_tr, x_va, y_va, x_te, y_te, images.source)


# ---------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------


def default_learning_rate(form_name: str) -> float:
    """The default ``learning_rate`` of a form's function (the text's or the library's)."""
    from symopt.lab.forms import FORMS

    form = FORMS[form_name]
    target = form.target
    if target is not None:
        p = inspect.signature(target).parameters.get("learning_rate")
        if p is not None and p.default is not inspect.Parameter.empty:
            return float(p.default)
    raise ValueError(f"{form_name} has no default learning rate; give one")


def form_updates(form_name: str, learning_rate):
    """``(loss, params) -> updates`` for a form of :data:`symopt.lab.forms.FORMS`."""
    from symopt.lab.forms import FORMS

    form = FORMS[form_name]

    def updates(loss, params):
        return form.build(lambda ps: loss, params, learning_rate)

    return updates


# ---------------------------------------------------------------------------------------
# Training a classifier
# ---------------------------------------------------------------------------------------


def fit_classifier(net, updates_fn, train_data, *, epochs: int, valid_data=None, test_data=None,
                   batch_size: int = 100, penalty=None, post_updates=None, schedule=None,
                   schedule_unit: str = "epoch", early_stopping=None, seed: int = 0,
                   record_steps=False, monitor: bool = False, meta: dict | None = None,
                   save_to: str | os.PathLike | None = None, checkpoint=None,
                   progress: bool = True, log=print):
    """Train an :class:`symopt.lab.nn` network on integer labels with
    :func:`symopt.lab.training.train`.

    Parameters
    ----------
    net : symopt.lab.nn.Layer
        Its output is log-probabilities (the default of :class:`symopt.lab.nn.MLP`).
    updates_fn : callable
        ``(loss, params) -> updates``, e.g. :func:`form_updates`.
    train_data, valid_data, test_data : (x, y)
        ``valid_data`` is evaluated after every epoch (``valid_loss``, ``valid_accuracy``),
        ``test_data`` once at the end (into ``history.meta``).
    penalty : callable, optional
        ``net -> scalar`` added to the training loss (l1 / l2); the cross-entropy alone is
        then logged as ``cross_entropy``.
    post_updates : callable, optional
        ``(updates, net) -> updates``, e.g. a max-norm constraint on the new weights.
    save_to : path, optional
        Stem of the JSON and CSV files, rewritten during training (at most every 15 s,
        and at the end) so that a long run leaves its history behind whenever it stops.
    checkpoint : path, optional
        A ``.npz`` file for the parameters and the rule's state
        (:func:`symopt.save_state`), written after every epoch. When it exists, with the
        history at ``save_to``, training resumes after the saved epoch and runs until
        ``epochs`` in all (batches are then shuffled from ``seed`` plus the epochs done).

    Returns
    -------
    symopt.lab.history.History
    """
    import pytensor.tensor as pt

    from symopt.lab import nn, training
    from symopt.lab.history import History

    dtype = net.params[0].dtype
    x, y = pt.matrix("x", dtype=dtype), pt.lvector("y")
    log_p = net.output(x, training=True)
    extra = net.extra_updates
    cross_entropy = nn.categorical_crossentropy_from_log_probs(log_p, y)
    loss = cross_entropy if penalty is None else cross_entropy + penalty(net)
    updates = updates_fn(loss, net.params)
    updates = list(updates.items()) if isinstance(updates, dict) else list(updates)
    if post_updates is not None:
        updates = post_updates(updates, net)
    metrics = {"accuracy": nn.accuracy(log_p, y)}
    if penalty is not None:
        metrics["cross_entropy"] = cross_entropy
    started = time.monotonic()
    step = training.compile_train_step([x, y], loss, net.params, updates=updates,
                                       extra_updates=extra, metrics=metrics, monitor=monitor)
    log_p_eval = net.output(x, training=False)
    evaluate = training.compile_evaluator(
        [x, y], {"loss": nn.categorical_crossentropy_from_log_probs(log_p_eval, y),
                 "accuracy": nn.accuracy(log_p_eval, y)}, batch_size=2000)
    # Numba compiles at the first call: count it, then train from the untouched values.
    step.warm_up(*(a[:batch_size] for a in train_data))
    evaluate(*(a[:batch_size] for a in (valid_data or train_data)))
    compile_s = time.monotonic() - started
    history = History(meta={**(meta or {}), "epochs_asked": epochs, "batch_size": batch_size,
                            "n_train": len(train_data[0]), "seed": seed,
                            "compile_seconds": round(compile_s, 2)})
    done = 0
    if checkpoint is not None and Path(checkpoint).is_file() and save_to is not None \
            and Path(f"{save_to}.json").is_file():
        from symopt.state import load_state

        saved = History.from_json(f"{save_to}.json")
        if saved.meta.get("checkpoint_epoch") == len(saved):
            load_state(updates, checkpoint)
            history, done = saved, len(saved)
            history.meta["epochs_asked"] = epochs
            history.meta.setdefault("resumed_at", []).append(done)
            if log is not None:
                log(f"  [{history.meta.get('label', '')}] resumed after epoch {done}")

    last_save = [time.monotonic()]

    def save(final=True):
        # Histories grow with the steps they record: write them at most every 15 s.
        if not final and time.monotonic() - last_save[0] < 15:
            return
        last_save[0] = time.monotonic()
        if checkpoint is not None and history.epochs:
            from symopt.state import save_state

            save_state(updates, checkpoint)
            history.meta["checkpoint_epoch"] = len(history)
        if save_to is not None:
            history.to_json(f"{save_to}.json")
            if history.epochs:
                history.to_csv(f"{save_to}.csv")
            if history.steps:
                history.to_csv(f"{save_to}.steps.csv", table="steps")

    def after_epoch(epoch, record):
        parts = [f"{k}={record[k]:.4f}" for k in ("train_loss", "valid_loss", "valid_accuracy")
                 if k in record and isinstance(record[k], float)]
        if log is not None:
            log(f"  [{history.meta.get('label', '')}] epoch {epoch}: " + " ".join(parts)
                + f" ({record['time']:.0f} s)")
        save(final=False)
        return False

    history = training.train(
        step, train_data, epochs=max(epochs - done, 0), batch_size=batch_size, evaluate=evaluate,
        eval_data={"valid": valid_data} if valid_data is not None else None,
        schedule=schedule, schedule_unit=schedule_unit, early_stopping=early_stopping,
        history=history, seed=seed + done, record_steps=record_steps, progress=progress,
        callback=after_epoch)
    if test_data is not None:
        for k, v in evaluate(*test_data).items():
            # None for NaN: History.to_json refuses non-finite numbers in meta.
            history.meta[f"test_{k}"] = v if math.isfinite(v) else None
    earlier = history.meta.get("seconds", 0.0) if done else 0.0  # before a resume
    history.meta["seconds"] = round(earlier + time.monotonic() - started, 1)
    save()
    return history


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def _cell(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if abs(value) < 1e-3 or abs(value) >= 1e4:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: list[dict], columns: list[str] | None = None, digits: int = 4) -> str:
    """A Markdown table of ``rows`` (dicts), the columns in the order given or of first
    appearance."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), digits) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_rows(rows: list[dict], stem: str | os.PathLike, *, title: str = "", notes: str = "",
               columns: list[str] | None = None) -> list[Path]:
    """Write rows as ``<stem>.md`` (title, table, notes), ``<stem>.csv`` and ``<stem>.json``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    text = (f"# {title}\n\n" if title else "") + markdown_table(rows, columns)
    if notes:
        text += "\n" + notes.strip() + "\n"
    md = stem.with_suffix(".md")
    md.write_text(text)
    csv_path = stem.with_suffix(".csv")
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    json_path = stem.with_suffix(".json")
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
              for k, v in row.items()} for row in rows]
    json_path.write_text(json.dumps(clean, indent=1) + "\n")
    return [md, csv_path, json_path]


def final_row(label: str, history, **extra) -> dict:
    """A results-table row from a classifier's history: final and best numbers."""
    row = {"rule": label, **extra, "epochs": len(history)}
    for key in ("train_loss", "train_accuracy", "valid_loss", "valid_accuracy"):
        if key in history.keys():
            row[key] = history.last(key)
    if "valid_accuracy" in history.keys():
        acc = history["valid_accuracy"]
        if np.isfinite(acc).any():
            best = int(np.nanargmax(acc))
            row["best_valid_accuracy"] = float(acc[best])
            row["best_epoch"] = int(history["epoch"][best])
    for key in ("test_loss", "test_accuracy", "seconds"):
        if key in history.meta:
            row[key] = history.meta[key]
    if history.meta.get("stopped"):
        row["stopped"] = history.meta["stopped"]
    return row
