"""Regression tests against recorded curves that hold on any machine.

A *curve* is the per-step (or per-epoch) values of a run (the loss, and optionally
accuracy or parameter norms) together with the metadata that made it: rule,
hyperparameters, problem, seed, dtype, backend and the versions of symopt, PyTensor and
NumPy. Curves are stored as small JSON files; :func:`assert_curve_matches` compares a new
run with a recorded one and, when they part, says at which step, with both values and
the largest deviation.

Why a tolerance envelope
------------------------
Two correct machines do not compute the same floats: OpenBLAS picks another kernel on
another CPU, Numba vectorises a reduction for another vector width, MKL and Accelerate
order their sums their own way. The difference is a few units in the last place (ulps)
per step, but a trajectory can amplify it: RMSProp bouncing in an ill-conditioned valley
turns a 1e-16 difference into 7 % within fifty steps. A fixed tolerance is then either
too tight for the chaotic curves or too loose for the calm ones.

So each recorded curve carries its own tolerance per step, measured when it is recorded
(:func:`record_with_envelope`): the run is replayed a few times with every parameter
jittered by a few ulps before every step (:class:`Jitter`, a stand-in for another
machine's rounding), and the largest deviation of the replays from the exact run, as a
running maximum of the relative deviation, times a safety margin, is the envelope. Where
a curve is well conditioned the envelope stays a few hundred ulps wide, so a real change
(one part in 10^4 of the gradient, a changed default, epsilon moved) fails at once, at the
first step where the curves part; where it is chaotic the envelope widens exactly as
fast as rounding can grow there, and no faster. Curves recorded without an envelope are
compared with :data:`TOLERANCES`.

We weighed two other designs. One-step ("teacher-forced") checks from a recorded state
at every step cannot accumulate chaos, but they need the full optimizer state of every
step on disk (for the 784-600-10 MLP, 480,000 numbers per state variable per step) and
compare one step, not the curve a user sees. Problems chosen to be well conditioned over
the compared horizon would exclude exactly the rules (RMSProp without bias correction,
Rprop) whose behaviour is worth pinning. The envelope needs neither and serves users'
own curves the same way.

Re-recording is deliberate, never silent: it happens only when the environment variable
``SYMOPT_RECORD_CURVES=1`` is set or pytest runs with ``--record-curves`` (the option
comes with :mod:`symopt.lab.pytest_plugin`: add
``pytest_plugins = ["symopt.lab.pytest_plugin"]`` to your ``conftest.py``). A missing
recording fails the test with the command to make it.

Examples
--------
>>> import numpy as np
>>> recorded = Curve("demo", {"loss": [4.0, 2.0, 1.0]}, {"rule": "sgd"})
>>> compare_curves(recorded, Curve("demo", {"loss": [4.0, 2.0, 1.0]}, {"rule": "sgd"})).ok
True
>>> report = compare_curves(recorded, Curve("demo", {"loss": [4.0, 2.5, 1.5]}, {"rule": "sgd"}))
>>> for part in report.message.split("; "): print(part)
curve 'demo': 'loss' parts at step 1: recorded 2, new 2.5 (|diff| 0.5, tolerance 2.01e-10)
largest deviation 0.5 (relative 0.25) at step 1: recorded 2, new 2.5

A user's own run, recorded with its envelope: ``run(jitter)`` trains from scratch, calls
``jitter(params)`` before every step (the exact run gets a jitter that does nothing) and
returns its curve.

>>> import pytensor
>>> def run(jitter):
...     w = pytensor.shared(np.array([1.0, -2.0]), name="w")
...     step = pytensor.function([], (w ** 2).sum(), updates=[(w, w - 0.1 * 2 * w)])
...     losses = []
...     for _ in range(20):
...         jitter([w])
...         losses.append(step())
...     return Curve("sgd", {"loss": losses}, {"dtype": "float64"})
>>> curve = record_with_envelope(run, replays=2)
>>> compare_curves(curve, run(Jitter(seed=7))).ok      # rounding alone: passes
True
>>> curve.tolerance["loss"][0] < 1e-10                 # and the envelope is tight
True
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Comparison",
    "Curve",
    "Jitter",
    "NO_JITTER",
    "assert_curve_matches",
    "compare_curves",
    "envelope",
    "environment_metadata",
    "load_curves",
    "record_with_envelope",
    "recording",
    "save_curves",
    "tolerances_for",
]

FORMAT = "symopt-curves/2"
READABLE_FORMATS = ("symopt-curves/1", FORMAT)
RECORD_ENV = "SYMOPT_RECORD_CURVES"

#: Metadata that must be equal for a comparison to mean anything; a difference here
#: (a changed default hyperparameter, another dtype) fails the comparison by itself.
#: Versions and the envelope's settings are recorded for information only.
COMPARED_METADATA = ("rule", "hyperparameters", "problem", "seed", "dtype", "backend", "steps")

#: Tolerances for curves recorded without an envelope, per dtype: float64 1e-10
#: relative, float32 about 100 ulps. They hold for reruns on the same kind of machine;
#: a curve that must survive a change of CPU or BLAS needs its envelope.
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (1e-5, 1e-6)}

#: How :func:`record_with_envelope` measures an envelope unless told otherwise:
#: ``replays`` jittered runs, each parameter moved by up to ``ulps`` units in the last
#: place before every step, the largest relative deviation times ``margin``, and never
#: less than ``floor_ulps`` ulps of the value. The margin is two decades: the replays
#: sample how fast rounding grows along the curve, and another machine's rounding grows
#: the same way but not by the same draw. Measured on this repository's curves, the
#: deviation of a run under another OpenBLAS kernel stayed below a tenth of the envelope
#: (tests/curves/README.md).
ENVELOPE = {"replays": 3, "ulps": 4, "margin": 100.0, "floor_ulps": 64}


def tolerances_for(dtype):
    """The ``(rtol, atol)`` for curves of ``dtype`` recorded without an envelope."""
    return TOLERANCES.get(str(dtype), TOLERANCES["float32"])


def environment_metadata(backend=None):
    """Versions and platform, recorded with every curve for information."""
    import pytensor

    import symopt

    return {
        "symopt": symopt.__version__,
        "pytensor": pytensor.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        **({"backend": backend} if backend is not None else {}),
    }


@dataclass
class Curve:
    """Per-step values of named metrics, with the metadata of the run that made them.

    ``tolerance``, when the curve was recorded with an envelope, maps each metric to the
    largest difference allowed at each step (see :func:`record_with_envelope`). Compare
    only metrics that vary continuously with the parameters: a count (an accuracy on a
    batch) jumps by a whole example when rounding tips one over its decision boundary,
    which no envelope of replays can promise to have sampled.
    """

    name: str
    values: dict
    metadata: dict = field(default_factory=dict)
    tolerance: dict | None = None

    def __post_init__(self):
        self.values = {k: [float(x) for x in np.asarray(v, dtype=float).ravel()]
                       for k, v in self.values.items()}
        if self.tolerance is not None:
            self.tolerance = {k: [float(x) for x in np.asarray(v, dtype=float).ravel()]
                              for k, v in self.tolerance.items()}

    def to_dict(self):
        data = {"name": self.name, "metadata": self.metadata, "values": self.values}
        if self.tolerance is not None:
            data["tolerance"] = self.tolerance
        return data

    @classmethod
    def from_dict(cls, data):
        return cls(data["name"], data["values"], data.get("metadata", {}),
                   data.get("tolerance"))


class Jitter:
    """Moves parameters by a few units in the last place: another machine's rounding.

    ``jitter(variables)`` multiplies every element of each floating-point shared
    variable by ``1 + u * ulps * eps`` with ``u`` uniform in [-1, 1], from a generator
    seeded by ``seed``; integer variables (step counters) are left alone. A run that
    calls it before every step differs from the exact run by rounding-sized
    perturbations only, the way a run on another CPU or BLAS does.
    """

    def __init__(self, seed=0, ulps=ENVELOPE["ulps"]):
        self.seed, self.ulps = seed, ulps
        self._rng = np.random.default_rng(seed)

    def __call__(self, variables):
        if not self.ulps:
            return
        for var in variables:
            value = var.get_value(borrow=True)
            if np.asarray(value).dtype.kind != "f":
                continue
            eps = np.finfo(value.dtype).eps
            factor = 1 + self._rng.uniform(-1, 1, np.shape(value)) * (self.ulps * eps)
            var.set_value((value * factor.astype(value.dtype)).astype(value.dtype))

    def __repr__(self):
        return f"Jitter(seed={self.seed}, ulps={self.ulps})"


#: The jitter of an exact run: calling it changes nothing.
NO_JITTER = Jitter(ulps=0)


def envelope(exact, replays, dtype="float64", margin=ENVELOPE["margin"],
             floor_ulps=ENVELOPE["floor_ulps"]):
    """The per-step tolerance of a curve, from jittered replays of it.

    Parameters
    ----------
    exact : sequence of float
        The curve as recorded.
    replays : list of sequences of float
        The same run replayed under :class:`Jitter`.
    dtype : str
        The dtype the run computed in; its ulp sets the floor.
    margin : float
        Safety factor on the replays' deviation.
    floor_ulps : float
        The least tolerance, in ulps of the value (a run on the same machine needs none;
        another machine's first step can differ by a few ulps of each term).

    Returns
    -------
    numpy.ndarray
        The largest ``|new - exact|`` allowed at each step: ``margin`` times the running
        maximum of the replays' relative deviation, plus the floor, times the step's
        scale (the largest of ``|exact|`` and the replays' magnitudes, so that a value
        that happens to land near zero in the exact run is still measured in the units
        the replays show there).
        Once a replay has turned NaN or infinite where the exact run did not, the
        tolerance is infinite: from there the curve is not pinned.
    """
    exact = np.asarray(exact, dtype=float)
    runs = np.asarray(replays, dtype=float).reshape(-1, exact.size)
    dev = np.abs(runs - exact)
    dev = np.where(np.isnan(runs) & np.isnan(exact), 0.0, dev)
    dev = np.where(np.isnan(dev), np.inf, dev).max(axis=0, initial=0.0)
    scale = np.maximum(np.abs(exact), np.abs(runs).max(axis=0, initial=0.0))
    scale = np.where(np.isfinite(scale), scale, np.abs(exact))
    tiny = np.finfo(dtype).tiny
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(dev == 0, 0.0, dev / np.maximum(scale, tiny))
    relative = np.maximum.accumulate(relative)
    eps = np.finfo(dtype).eps
    tolerance = (margin * relative + floor_ulps * eps) * scale + tiny
    return np.where(np.isfinite(exact), tolerance, 0.0)


def _rounded_up(values, digits=3):
    """Tolerances as stored: ``digits`` significant digits, rounded up, never below."""
    out = []
    for x in map(float, values):
        if np.isfinite(x) and x > 0:
            quantum = 10.0 ** (np.floor(np.log10(x)) - (digits - 1))
            rounded = float(f"{np.ceil(x / quantum) * quantum:.{digits}g}")
            x = rounded if rounded >= x else float(f"{rounded + quantum:.{digits}g}")
        out.append(x)
    return out


def record_with_envelope(run, replays=ENVELOPE["replays"], ulps=ENVELOPE["ulps"],
                         margin=ENVELOPE["margin"], floor_ulps=ENVELOPE["floor_ulps"],
                         seed=0, others=()):
    """Run once exactly and ``replays`` times jittered; return the curves with envelopes.

    Parameters
    ----------
    run : callable
        ``run(jitter)`` trains from the same start every time and returns a
        :class:`Curve` or a dict of them. It must call ``jitter(params)`` before every
        step (the exact run gets :data:`NO_JITTER`, which does nothing).
    replays, ulps, margin, floor_ulps : see :data:`ENVELOPE` and :func:`envelope`.
    seed : int
        Replay ``i`` uses ``Jitter(seed + i, ulps)``.
    others : sequence of Curve or of dicts of Curve, optional
        The same runs computed another way (another backend, compiler or BLAS), taken as
        further replays. Jitter moves the parameters, not the scalars a rule computes
        from its hyperparameters; another implementation rounds those differently too
        (in float32, Adam's ``1 - beta2**t`` turns one ulp of ``beta2**t`` into a
        hundred), and the envelope must allow that.

    Returns
    -------
    Curve or dict of str to Curve
        As ``run`` returns them, each with ``tolerance`` set and the envelope's settings
        in ``metadata["envelope"]``.
    """
    exact = run(NO_JITTER)
    single = isinstance(exact, Curve)
    curves = {exact.name: exact} if single else dict(exact)
    jittered = [{c.name: c} if isinstance(c, Curve) else dict(c) for c in others]
    for i in range(replays):
        again = run(Jitter(seed + i, ulps))
        jittered.append({again.name: again} if single else dict(again))
    settings = {"replays": replays, "ulps": ulps, "margin": margin, "floor_ulps": floor_ulps,
                "others": len(others)}
    for name, curve in curves.items():
        dtype = curve.metadata.get("dtype", "float64")
        curve.tolerance = {
            metric: _rounded_up(envelope(
                values, [j[name].values[metric] for j in jittered], dtype, margin, floor_ulps))
            for metric, values in curve.values.items()
        }
        curve.metadata["envelope"] = settings
    return exact if single else curves


def save_curves(path, curves):
    """Write curves to a JSON file (one file may hold many curves, keyed by name)."""
    curves = [curves] if isinstance(curves, Curve) else list(curves)
    names = [c.name for c in curves]
    if len(set(names)) != len(names):
        raise ValueError(f"curve names must be unique in one file, got {names}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "curves": [c.to_dict() for c in curves]}
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")


def load_curves(path):
    """Read a JSON file written by :func:`save_curves`: a dict of name to :class:`Curve`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no recorded curves at {os.fspath(path)!r}")
    data = json.loads(path.read_text())
    if data.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{path} is not a symopt curve file (format {data.get('format')!r})")
    return {c["name"]: Curve.from_dict(c) for c in data["curves"]}


@dataclass
class Comparison:
    """The outcome of :func:`compare_curves`; ``message`` explains any difference."""

    ok: bool
    message: str
    first_step: int | None = None
    max_deviation: float = 0.0


def _fmt(x):
    return f"{x:.10g}"


def compare_curves(recorded, new, rtol=None, atol=None, metrics=None):
    """Compare a new curve with a recorded one.

    Parameters
    ----------
    recorded, new : Curve
    rtol, atol : float, optional
        Given, a value passes when ``|new - recorded| <= atol + rtol * |recorded|``.
        By default the recorded curve's envelope decides (``recorded.tolerance``, see
        :func:`record_with_envelope`), or, for a curve recorded without one,
        :func:`tolerances_for` its dtype.
    metrics : list of str, optional
        Which metrics to compare; by default all recorded ones.

    Returns
    -------
    Comparison
        ``ok``, and a ``message`` that names, for each metric that differs, the first step
        where the curves part with both values, and the largest deviation and its step.
    """
    explicit = rtol is not None or atol is not None
    default_rtol, default_atol = tolerances_for(recorded.metadata.get("dtype", "float64"))
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    problems = []
    for key in COMPARED_METADATA:
        if key in recorded.metadata and recorded.metadata.get(key) != new.metadata.get(key):
            problems.append(f"curve {recorded.name!r}: metadata {key!r} differs: recorded "
                            f"{recorded.metadata[key]!r}, new {new.metadata.get(key)!r}")
    first_step, worst = None, 0.0
    for metric in metrics or list(recorded.values):
        if metric not in new.values:
            problems.append(f"curve {recorded.name!r}: the new run has no {metric!r}")
            continue
        a = np.asarray(recorded.values[metric])
        b = np.asarray(new.values[metric])
        if a.shape != b.shape:
            problems.append(f"curve {recorded.name!r}: {metric!r} has {a.size} recorded steps "
                            f"but {b.size} new ones")
            continue
        with np.errstate(invalid="ignore"):
            diff = np.abs(b - a)
        # a run that diverged the same way is the same curve: NaN where NaN was recorded,
        # the same infinity where an infinity was
        same = (np.isnan(a) & np.isnan(b)) | (np.isinf(a) & (a == b))
        diff = np.where(same, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        if not explicit and recorded.tolerance and metric in recorded.tolerance:
            allowed = np.asarray(recorded.tolerance[metric])
        else:
            allowed = atol + rtol * np.abs(a)
        bad = np.flatnonzero(diff > allowed)
        if bad.size:
            i = int(bad[0])
            j = int(np.argmax(diff))
            rel = diff[j] / abs(a[j]) if a[j] != 0 else np.inf
            problems.append(
                f"curve {recorded.name!r}: {metric!r} parts at step {i}: recorded {_fmt(a[i])}, "
                f"new {_fmt(b[i])} (|diff| {_fmt(diff[i])}, tolerance "
                f"{_fmt(allowed[i])}); largest deviation {_fmt(diff[j])} "
                f"(relative {_fmt(rel)}) at step {j}: recorded {_fmt(a[j])}, new {_fmt(b[j])}"
            )
            first_step = i if first_step is None else min(first_step, i)
            worst = max(worst, float(diff[j]))
    message = "\n".join(problems) if problems else f"curve {recorded.name!r} matches"
    return Comparison(not problems, message, first_step, worst)


#: set by :mod:`symopt.lab.pytest_plugin` from ``--record-curves``
_RECORD_FLAG = {"on": False, "missing": False}


def recording():
    """True when curves are being re-recorded (``--record-curves`` or the env variable)."""
    return _RECORD_FLAG["on"] or os.environ.get(RECORD_ENV, "") not in ("", "0")


def recording_missing_only():
    """True when only the curves a file lacks are recorded, the others kept as they are
    (``--record-curves=missing`` or ``SYMOPT_RECORD_CURVES=missing``): what adding a rule
    needs, without re-recording, and so re-validating, every other form."""
    return recording() and (_RECORD_FLAG["missing"] or os.environ.get(RECORD_ENV) == "missing")


def assert_curve_matches(new, path, rtol=None, atol=None, metrics=None):
    """Assert that ``new`` matches the curve of the same name recorded in ``path``.

    In recording mode the curve is written to ``path`` instead (replacing one of the same
    name, keeping the others) and the assertion passes. Otherwise a missing file or curve
    fails with the command that records it.
    """
    path = Path(path)
    if recording():
        curves = load_curves(path) if path.exists() else {}
        curves[new.name] = new
        save_curves(path, list(curves.values()))
        return
    if not path.exists():
        raise AssertionError(
            f"no recorded curves at {path}; record them deliberately with "
            f"`{RECORD_ENV}=1 pytest ...` or `pytest --record-curves ...`"
        )
    curves = load_curves(path)
    if new.name not in curves:
        raise AssertionError(f"{path} has no curve named {new.name!r}; record it with "
                             f"`pytest --record-curves` (have: {sorted(curves)})")
    result = compare_curves(curves[new.name], new, rtol, atol, metrics)
    if not result.ok:
        raise AssertionError(result.message)
