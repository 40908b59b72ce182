"""A sweep's results on disk: one JSON line per finished run, appended so that none is lost.

``results.jsonl`` in a sweep's output directory holds one record per run, keyed by the
run's config (:func:`symopt.lab.sweep_grid.config_key`). Only the client process writes
it, and it writes each record the way a database writes its log:

- a record is one line, written with a single ``write`` of the whole line to a file
  opened with ``O_APPEND`` (so it lands after everything already there), then flushed to
  the disk with ``fsync`` before the run counts as done;
- a key already in the file is never written again, so re-running a sweep adds only
  the runs it lacks;
- a line cut short (the process killed during its write: a last line without its
  newline) is not a record: readers ignore it, and a writer cuts it off before
  appending, so a new record never ends up glued to half of an old one;
- one writer at a time: a sweep holds an exclusive lock on ``results.lock`` in the same
  directory while it runs, and a second sweep into the same directory stops with a
  clear error instead of interleaving with it.

Examples
--------
>>> import tempfile
>>> directory = tempfile.mkdtemp()
>>> with ResultsLog(directory) as log:
...     log.append({"key": "a1", "final_loss": 0.5})
...     log.append({"key": "a1", "final_loss": 0.5})   # already there: not written again
True
False
>>> [r["key"] for r in read_records(f"{directory}/results.jsonl")[0]]
['a1']
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from symopt.state import _fsync_directory  # the checkpoints' durable rename, shared

try:
    import fcntl
except ImportError:  # not on Windows: there one sweep per directory is up to the user
    fcntl = None

__all__ = ["ResultsLog", "SweepLockedError", "read_records", "write_json_atomic"]

RESULTS_NAME = "results.jsonl"
LOCK_NAME = "results.lock"


class SweepLockedError(RuntimeError):
    """Another sweep is writing to the same output directory."""


def read_records(path):
    """The records of a results file, and the problems met reading it.

    Returns ``(records, problems)``: every complete, valid line's record, in file order
    (the first record of a key when a key appears twice), and a list of messages about
    lines left out (a torn last line, a line that is not a JSON record, a repeated key).
    A missing file has no records.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    data = path.read_bytes()
    records, problems, seen = [], [], set()
    lines = data.split(b"\n")
    torn = lines.pop()          # after the last newline: empty, or a line cut short
    if torn:
        problems.append(f"{path.name}: the last line ({len(torn)} bytes) has no newline: a "
                        "write cut short (the sweep was killed); it is ignored")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError) as err:
            problems.append(f"{path.name}, line {number}: not JSON ({err}); ignored")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("key"), str):
            problems.append(f"{path.name}, line {number}: not a run record (no key); ignored")
            continue
        if record["key"] in seen:
            problems.append(f"{path.name}, line {number}: run {record['key']} again; "
                            "the first record is kept")
            continue
        seen.add(record["key"])
        records.append(record)
    return records, problems


def write_json_atomic(path, data):
    """Write JSON to ``path`` through a temporary file in the same directory, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_directory(path.parent)
    return path


class ResultsLog:
    """The results file of a directory, open for appending by this process alone.

    Opening it takes the directory's lock (:class:`SweepLockedError` if another sweep
    holds it), reads the records there (warning about any line left out, see
    :func:`read_records`) and cuts off a torn last line. :meth:`append` writes a record
    unless its key is already there.
    """

    def __init__(self, directory, name=RESULTS_NAME):
        self.directory = Path(directory)
        self.path = self.directory / name
        self.records = {}
        self._fd = None
        self._lock_fd = None

    def open(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock()
        records, problems = read_records(self.path)
        for message in problems:
            warnings.warn(message, stacklevel=2)
        self.records = {r["key"]: r for r in records}
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._cut_torn_tail()
        _fsync_directory(self.directory)
        return self

    def _lock(self):
        if fcntl is None:
            return
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 64, 0).decode(errors="replace").strip()
            os.close(self._lock_fd)
            self._lock_fd = None
            raise SweepLockedError(
                f"another sweep is writing to {self.directory} (process {holder or '?'}); "
                "wait for it to finish or use another --out") from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)

    def _cut_torn_tail(self):
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as f:
            data = f.read()
        end = data.rfind(b"\n") + 1
        if end < size:
            os.truncate(self.path, end)
            os.fsync(self._fd)

    def __contains__(self, key):
        return key in self.records

    def append(self, record):
        """Write ``record`` as one line, durably; False (and nothing written) if its key is
        already in the file."""
        key = record["key"]
        if key in self.records:
            return False
        line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):    # a full disk: the torn line is cut off on the next open
            raise OSError(f"only {written} of {len(line)} bytes of run {key} were written "
                          f"to {self.path}")
        os.fsync(self._fd)
        self.records[key] = record
        return True

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()
