"""Progress of a long training run: a tqdm bar, or plain per-epoch lines for log files.

:class:`Progress` shows a `tqdm <https://tqdm.github.io/>`_ bar on a terminal and in
Jupyter (``tqdm.auto`` picks the notebook widget there), and writes one plain line per
epoch, with the elapsed time and an estimate of the time left, when the output is a file
or a pipe, where a redrawn bar would fill the log with carriage returns. Without tqdm
installed it writes the lines everywhere.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["MODES", "Progress", "ProgressBar", "clock"]

#: The display modes: ``"auto"`` (tqdm on a terminal or in Jupyter, else lines),
#: ``"tqdm"``, ``"lines"`` and ``"none"``.
MODES = ("auto", "tqdm", "lines", "none")


def clock(seconds: float) -> str:
    """``seconds`` as ``[h:]mm:ss``; ``--:--`` when unknown (NaN or infinite).

    >>> clock(75), clock(3725.0), clock(float("nan"))
    ('01:15', '1:02:05', '--:--')
    """
    if not math.isfinite(seconds):
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is not a terminal but a bar renders)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _tqdm_class():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Steps done out of ``total``, with the elapsed time, an ETA and the latest values.

    Parameters
    ----------
    total : int
        The number of steps.
    description : str, default ""
        Text before the bar or at the start of each line (e.g. ``"epoch 2/10"``).
    stream : text file, default sys.stderr
    mode : {"auto", "tqdm", "lines", "none"}, default "auto"
        ``"auto"`` is a tqdm bar when ``stream`` is a terminal or the code runs in
        Jupyter, else lines; ``"tqdm"`` falls back to lines when tqdm is not installed;
        ``"lines"`` writes one line per :meth:`end_epoch` (and one at :meth:`close` when
        no epoch was reported); ``"none"`` is silent.
    enabled : bool, optional
        The earlier switch: False is ``mode="none"``, True is ``mode="tqdm"``.
    unit : str, default "step"
        What a step is called in the bar.
    min_interval : float, default 0.1
        Seconds between updates of the values shown after the bar.

    Attributes
    ----------
    mode : str
        The mode in use: ``"tqdm"``, ``"lines"`` or ``"none"``.
    count : int
        Steps done.
    info : dict
        The latest values given to :meth:`update` and :meth:`end_epoch`.

    Examples
    --------
    On a stream that is not a terminal, one line per epoch:

    >>> import io
    >>> out = io.StringIO()
    >>> with Progress(4, description="training", stream=out) as progress:
    ...     for epoch in (1, 2):
    ...         progress.set_description(f"epoch {epoch}/2")
    ...         for _ in range(2):
    ...             progress.update(loss=0.5)
    ...         progress.end_epoch(valid_accuracy=0.75)
    >>> progress.mode
    'lines'
    >>> print(out.getvalue().replace("00:00", "mm:ss"), end="")
    epoch 1/2: 2/4 steps (50%), elapsed mm:ss, ETA mm:ss, valid_accuracy=0.75
    epoch 2/2: 4/4 steps (100%), elapsed mm:ss, ETA mm:ss, valid_accuracy=0.75
    """

    def __init__(self, total: int, *, description: str = "", stream: TextIO | None = None,
                 mode: str = "auto", enabled: bool | None = None, unit: str = "step",
                 min_interval: float = 0.1):
        if enabled is not None:
            mode = "tqdm" if enabled else "none"
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.total = max(int(total), 0)
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.unit = unit
        self.min_interval = float(min_interval)
        self.count = 0
        self.info: dict = {}
        self._start = time.monotonic()
        self._last_postfix = -math.inf
        self._epochs_reported = 0
        self._closed = False
        self._bar = None
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "tqdm" if (isatty and isatty()) or _in_notebook() else "lines"
        if mode == "tqdm":
            tqdm = _tqdm_class()
            if tqdm is None:
                mode = "lines"
            else:
                self._bar = tqdm(total=self.total, desc=description or None, unit=unit,
                                 file=self.stream, dynamic_ncols=True, leave=True)
        self.mode = mode

    @property
    def enabled(self) -> bool:
        """Whether anything is shown."""
        return self.mode != "none"

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self._start

    def eta(self) -> float:
        """Seconds left at the pace so far (NaN before the first step)."""
        if self.count <= 0 or self.total <= 0:
            return math.nan
        elapsed = self.elapsed
        return max(elapsed / self.count * (self.total - self.count), 0.0)

    def update(self, n: int = 1, **info) -> None:
        """Advance by ``n`` steps and set the values shown after the bar."""
        self.count += n
        self.info.update(info)
        if self._bar is not None:
            now = time.monotonic()
            if info and (now - self._last_postfix >= self.min_interval
                         or self.count >= self.total):
                self._last_postfix = now
                self._bar.set_postfix({k: _format(v) for k, v in self.info.items()},
                                      refresh=False)
            if n:
                self._bar.update(n)

    def set_description(self, description: str) -> None:
        """Change the text before the bar (or at the start of each line)."""
        self.description = description
        if self._bar is not None:
            self._bar.set_description_str(description, refresh=False)

    def render(self, values: dict | None = None) -> str:
        """The plain line for the current state: steps, elapsed, ETA and ``values`` (by
        default the latest values given)."""
        fraction = self.count / self.total if self.total else 1.0
        head = f"{self.description}: " if self.description else ""
        line = (f"{head}{self.count}/{self.total} {self.unit}s ({fraction:.0%}), "
                f"elapsed {clock(self.elapsed)}, ETA {clock(self.eta())}")
        values = self.info if values is None else values
        text = " ".join(f"{k}={_format(v)}" for k, v in values.items())
        return f"{line}, {text}" if text else line

    def end_epoch(self, **info) -> None:
        """Report the end of an epoch with its values: a line in ``"lines"`` mode (with
        these values, or the latest ones when none are given), the bar's values in
        ``"tqdm"`` mode."""
        self.info.update(info)
        self._epochs_reported += 1
        if self._bar is not None:
            self._bar.set_postfix({k: _format(v) for k, v in self.info.items()})
        elif self.mode == "lines":
            print(self.render(info or None), file=self.stream, flush=True)

    def close(self) -> None:
        """End the display (a last line in ``"lines"`` mode when no epoch was reported)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "lines" and not self._epochs_reported and self.count:
            print(self.render(), file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: The earlier name of :class:`Progress`.
ProgressBar = Progress
