"""A small text progress bar for long training runs, written to stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class ProgressBar:
    """A one-line progress bar: ``desc [#####.....] 120/500 24% 00:12<00:38 loss=0.31``.

    It redraws at most every ``min_interval`` seconds (and at the end), so it costs
    nothing noticeable per step. It is silent when disabled.

    Parameters
    ----------
    total : int
        The number of steps.
    description : str, default ""
    stream : text file, default sys.stderr
    enabled : bool, optional
        True draws, False never draws; by default it draws only when ``stream`` is a
        terminal, so logs and CI output stay clean.
    width : int, default 24
        Characters of the bar itself.
    min_interval : float, default 0.1
        Seconds between redraws.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with ProgressBar(4, description="epoch 1", stream=out, enabled=True, width=4) as bar:
    ...     for _ in range(4):
    ...         bar.update(loss=0.5)
    >>> out.getvalue().split("\\r")[-1].split(" 00:")[0]
    'epoch 1 [####] 4/4 100%'
    """

    def __init__(self, total: int, *, description: str = "", stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 24, min_interval: float = 0.1):
        self.total = max(int(total), 0)
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.width = int(width)
        self.min_interval = float(min_interval)
        self.count = 0
        self.info: dict = {}
        self._start = time.monotonic()
        self._last_draw = -float("inf")
        self._closed = False

    def update(self, n: int = 1, **info) -> None:
        """Advance by ``n`` steps and set the values shown after the bar."""
        self.count += n
        self.info.update(info)
        now = time.monotonic()
        if now - self._last_draw >= self.min_interval or self.count >= self.total:
            self._draw(now)

    def set_description(self, description: str) -> None:
        """Change the text before the bar."""
        self.description = description

    def render(self, now: float | None = None) -> str:
        """The bar's current line, without the carriage return."""
        now = time.monotonic() if now is None else now
        fraction = min(self.count / self.total, 1.0) if self.total else 1.0
        filled = int(round(fraction * self.width))
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = now - self._start
        remaining = elapsed / fraction - elapsed if fraction > 0 else 0.0
        parts = [self.description, f"[{bar}]", f"{self.count}/{self.total}",
                 f"{fraction:4.0%}".strip(), f"{_clock(elapsed)}<{_clock(remaining)}"]
        parts += [f"{key}={_format(value)}" for key, value in self.info.items()]
        return " ".join(p for p in parts if p)

    def _draw(self, now: float) -> None:
        self._last_draw = now
        if self.enabled and not self._closed:
            self.stream.write("\r" + self.render(now))
            self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._closed:
            return
        self._draw(time.monotonic())
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
