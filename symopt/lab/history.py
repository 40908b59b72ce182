"""Training histories: per-epoch and per-step metrics, saved as JSON or CSV, drawn as PNG.

A :class:`History` holds two tables, ``epochs`` and ``steps``, each a list of records
(dicts of numbers), and a ``meta`` dict for settings and notes. :func:`plot_histories`
draws several runs side by side: one subplot per metric, one line per run.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["AXIS_LABELS", "SAME_AS_DRAWN", "History", "line_styles", "plot_histories"]

_TABLES = ("epochs", "steps")


def _plain(value):
    """A JSON- and CSV-friendly Python scalar from a NumPy or Python number (bools as 0/1)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"history values must be numbers or strings, got {type(value).__name__}")


def _parse(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _json_safe(record: dict) -> dict:
    """NaN and infinities as null, since JSON has no such numbers."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()}


def _from_json(record: dict) -> dict:
    return {k: (math.nan if v is None else v) for k, v in record.items()}


class History:
    """Metrics recorded during training.

    Parameters
    ----------
    meta : dict, optional
        Free-form settings of the run (rule, learning rate, seed...); JSON-serialisable.

    Attributes
    ----------
    epochs, steps : list of dict
        One record per epoch / per step, e.g. ``{"epoch": 3, "train_loss": 0.41}``.
    meta : dict

    Examples
    --------
    >>> h = History(meta={"rule": "sgd"})
    >>> h.log_epoch(epoch=1, train_loss=0.9)
    >>> h.log_epoch(epoch=2, train_loss=0.7, valid_loss=0.8)
    >>> h["train_loss"], h["valid_loss"]
    (array([0.9, 0.7]), array([nan, 0.8]))
    """

    def __init__(self, meta: Mapping | None = None):
        self.epochs: list[dict] = []
        self.steps: list[dict] = []
        self.meta: dict = dict(meta or {})

    # -- recording and reading ----------------------------------------------------------

    def log_epoch(self, **values) -> None:
        """Append one epoch's record."""
        self.epochs.append({k: _plain(v) for k, v in values.items()})

    def log_step(self, **values) -> None:
        """Append one step's record."""
        self.steps.append({k: _plain(v) for k, v in values.items()})

    def _table(self, table: str) -> list[dict]:
        if table not in _TABLES:
            raise ValueError(f"table must be one of {_TABLES}, got {table!r}")
        return getattr(self, table)

    def keys(self, table: str = "epochs") -> list[str]:
        """The metric names of a table, in order of first appearance."""
        seen: dict[str, None] = {}
        for record in self._table(table):
            seen.update(dict.fromkeys(record))
        return list(seen)

    def column(self, key: str, table: str = "epochs") -> np.ndarray:
        """One metric over a table, as floats (NaN where a record lacks it)."""
        records = self._table(table)
        if records and all(key not in r for r in records):
            raise KeyError(f"no metric {key!r} in {table}; there are {self.keys(table)}")
        return np.array([r.get(key, math.nan) for r in records], dtype=float)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.column(key, "epochs")

    def last(self, key: str, table: str = "epochs"):
        """The latest recorded value of a metric."""
        for record in reversed(self._table(table)):
            if key in record:
                return record[key]
        raise KeyError(f"no metric {key!r} in {table}")

    def __len__(self) -> int:
        return len(self.epochs)

    def __eq__(self, other) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"History({len(self.epochs)} epochs, {len(self.steps)} steps, "
                f"metrics {self.keys()})")

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """``{"meta": ..., "epochs": [...], "steps": [...]}``, NaN as None."""
        return {"meta": _json_safe(self.meta),
                "epochs": [_json_safe(r) for r in self.epochs],
                "steps": [_json_safe(r) for r in self.steps]}

    @classmethod
    def from_dict(cls, data: Mapping) -> History:
        history = cls(meta=data.get("meta"))
        history.epochs = [_from_json(r) for r in data.get("epochs", [])]
        history.steps = [_from_json(r) for r in data.get("steps", [])]
        return history

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the whole history (meta, epochs, steps) as JSON; NaN is written as null."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        """Read a history written by :meth:`to_json` (null becomes NaN)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    # -- CSV ----------------------------------------------------------------------------

    def to_csv(self, path: str | os.PathLike, table: str = "epochs") -> Path:
        """Write one table as CSV: a header of metric names, one row per record.

        Floats are written exactly (``repr``); a record lacking a metric has an empty
        cell. ``meta`` is not written (use JSON to keep it).
        """
        path = Path(path)
        keys = self.keys(table)
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(keys)
            for record in self._table(table):
                writer.writerow([repr(record[k]) if isinstance(record.get(k), float)
                                 else record.get(k, "") for k in keys])
        return path

    @classmethod
    def from_csv(cls, epochs: str | os.PathLike | None = None,
                 steps: str | os.PathLike | None = None, meta: Mapping | None = None) -> History:
        """Read tables written by :meth:`to_csv`; empty cells are left out of records."""
        history = cls(meta=meta)
        for table, path in (("epochs", epochs), ("steps", steps)):
            if path is None:
                continue
            with Path(path).open(newline="") as f:
                rows = list(csv.DictReader(f))
            getattr(history, table).extend(
                {k: _parse(v) for k, v in row.items() if v != ""} for row in rows)
        return history

    # -- figures ------------------------------------------------------------------------

    def plot(self, path: str | os.PathLike | None = None, metrics: Sequence[str] | None = None,
             **kwargs):
        """Draw this history's metrics, one subplot each; see :func:`plot_histories`.

        By default every epoch metric except ``epoch`` and ``time``.
        """
        if metrics is None:
            metrics = [k for k in self.keys(kwargs.get("table", "epochs"))
                       if k not in ("epoch", "step", "time")]
        label = self.meta.get("label", "run")
        return plot_histories({label: self}, metrics, path, **kwargs)


#: Axis labels, with units, of the metrics the lab records; others are labelled by name.
AXIS_LABELS = {
    "epoch": "epoch",
    "step": "step (mini-batch)",
    "loss": "loss",
    "train_loss": "training loss (mean cross-entropy, nats)",
    "valid_loss": "validation loss (mean cross-entropy, nats)",
    "test_loss": "test loss (mean cross-entropy, nats)",
    "cross_entropy": "cross-entropy (nats)",
    "train_accuracy": "training accuracy (fraction correct)",
    "valid_accuracy": "validation accuracy (fraction correct)",
    "test_accuracy": "test accuracy (fraction correct)",
    "accuracy": "accuracy (fraction correct)",
    "learning_rate": "learning rate",
    "time": "time (s)",
    "param_norm": "parameter norm (L2)",
    "grad_norm": "gradient norm (L2)",
    "update_norm": "update norm (L2)",
}

# Ten colours that stay apart for readers with the common colour-vision deficiencies
# (Okabe & Ito's eight, then two of Paul Tol's), four dash patterns and seven markers.
_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
            "#F0E442", "#882255", "#999933"]
_DASHES = ["-", "--", ":", "-."]
_MARKERS = ["o", "s", "^", "D", "v", "x", "+"]


def line_styles(n: int) -> list[dict]:
    """``n`` matplotlib line styles (colour, dash pattern, marker), no two alike.

    The colour changes from one line to the next; after every ten lines the dash pattern
    changes too, and the marker follows its own cycle of seven, so (colour, dashes,
    marker) stays unique for any ``n`` up to 280, and neighbours differ in colour.

    >>> [(s["color"], s["linestyle"]) for s in line_styles(12)][9:]
    [('#999933', '-'), ('#0072B2', '--'), ('#E69F00', '--')]
    """
    styles = []
    for i in range(int(n)):
        styles.append({"color": _COLOURS[i % len(_COLOURS)],
                       "linestyle": _DASHES[(i // len(_COLOURS)) % len(_DASHES)],
                       "marker": _MARKERS[i % len(_MARKERS)]})
    return styles


#: Relative difference below which two runs' curves are drawn on top of each other
#: (the legend says ``≈``): a fifth of a percent, under a pixel on any figure here.
SAME_AS_DRAWN = 2e-3


def _relation(a: dict, b: dict) -> str:
    """``"="`` when two runs' curves are identical in every metric, ``"≈"`` when they are
    within :data:`SAME_AS_DRAWN` of each other everywhere, else ``""``."""
    if not a or a.keys() != b.keys() or any(a[m][1].shape != b[m][1].shape for m in a):
        return ""
    if all(np.array_equal(a[m][1], b[m][1], equal_nan=True) for m in a):
        return "="
    if all(np.allclose(a[m][1], b[m][1], rtol=SAME_AS_DRAWN, atol=0.0, equal_nan=True)
           for m in a):
        return "≈"
    return ""


def _is_decades(values: np.ndarray) -> bool:
    """True when the positive values span more than one decade (a log axis reads better)."""
    values = values[np.isfinite(values)]
    return bool(values.size and (values > 0).all() and values.max() > 10 * values.min())


def plot_histories(runs: Mapping[str, History], metrics: Sequence[str],
                   path: str | os.PathLike | None = None, *, x: str | None = None,
                   table: str = "epochs", ncols: int = 2, logy: Sequence[str] | str = (),
                   title: str | None = None, figsize_per_plot=(4.0, 3.0), dpi: int = 100):
    """A grid of subplots, one per metric, with one line per run; optionally saved as PNG.

    Every run has its own colour, dash pattern and marker (:func:`line_styles`), the
    same in every subplot, and one legend for the figure sits outside the plots, on the
    right. Runs whose curves are identical in every metric drawn are named as such in
    the legend (``book.sgd (= sgd)``), and runs within :data:`SAME_AS_DRAWN` of an earlier
    one everywhere get ``≈`` (``amsgrad (≈ adam)``): their lines lie on top of each
    other. Axes carry
    their quantity and unit (:data:`AXIS_LABELS`).

    Matplotlib is used without pyplot, on an Agg canvas, so nothing changes the global
    backend and no window opens.

    Parameters
    ----------
    runs : mapping of str to History
        Label of each run (shown in the legend) and its history.
    metrics : sequence of str
        The metrics to draw, one subplot each. A run without a metric is skipped there.
    path : str or path-like, optional
        Where to save the figure (the format follows the suffix, e.g. ``.png``).
    x : str, optional
        The metric for the horizontal axis: ``"epoch"`` or ``"step"`` by default (per
        ``table``), or the record number when absent.
    table : {"epochs", "steps"}, default "epochs"
    ncols : int, default 2
    logy : sequence of str, or "auto"
        Metrics to draw on a logarithmic scale (losses, norms); ``"auto"`` for every
        metric whose positive values span more than a decade.
    title : str, optional
    figsize_per_plot : (float, float), default (4.0, 3.0)
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    metrics = list(metrics)
    if not metrics:
        raise ValueError("plot_histories needs at least one metric")
    if not runs:
        raise ValueError("plot_histories needs at least one run")
    x = x or ("epoch" if table == "epochs" else "step")
    ncols = max(1, min(int(ncols), len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(figsize_per_plot[0] * ncols, figsize_per_plot[1] * nrows), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()

    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for label, history in runs.items():
        records = history._table(table)
        curves[label] = {}
        for metric in metrics:
            if any(metric in r for r in records):
                ys = history.column(metric, table)
                xs = (history.column(x, table) if any(x in r for r in records)
                      else np.arange(1, len(ys) + 1))
                curves[label][metric] = (xs, ys)
    # a run identical to an earlier one in every metric drawn is named after it ("="), and
    # so is one within SAME_AS_DRAWN of it everywhere, on top of it at any figure size ("≈")
    legend_labels = {}
    for i, label in enumerate(runs):
        legend_labels[label] = label
        for other in list(runs)[:i]:
            relation = _relation(curves[other], curves[label])
            if relation:
                legend_labels[label] = f"{label} ({relation} {other})"
                break
    styles = dict(zip(runs, line_styles(len(runs)), strict=True))
    handles = {}
    for ax, metric in zip(axes, metrics):
        all_values = []
        for label in runs:
            if metric not in curves[label]:
                continue
            xs, ys = curves[label][metric]
            all_values.append(ys)
            (line,) = ax.plot(xs, ys, label=label, linewidth=1.4, markersize=4,
                              markevery=max(1, len(xs) // 10), **styles[label])
            handles.setdefault(label, line)
        ax.set_title(metric)
        ax.set_xlabel(AXIS_LABELS.get(x, x))
        ax.set_ylabel(AXIS_LABELS.get(metric, metric), fontsize="small")
        log = (_is_decades(np.concatenate(all_values)) if logy == "auto" and all_values
               else metric in logy and logy != "auto")
        if log:
            ax.set_yscale("log")
            # plain numbers (2, 3, 0.5) rather than 3x10^0 on axes spanning few decades
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            # within a few decades the minor ticks are numbered too (else none would be)
            values = np.concatenate(all_values)
            values = values[np.isfinite(values) & (values > 0)]
            if values.size and values.max() < 30 * values.min():
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        if x in ("epoch", "step"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3, which="both" if log else "major")
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if handles and len(runs) > 1:
        # right of the plots (the saved image grows to hold it), at most 22 entries a column
        fig.legend(list(handles.values()), [legend_labels[k] for k in handles],
                   loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                   fontsize="small", ncol=math.ceil(len(handles) / 22), handlelength=3.0)
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig
