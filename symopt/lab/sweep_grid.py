"""A sweep's grid: parsing its values, expanding it into runs, and keying each run.

A *run* is one training, described by a plain dictionary, its *config*::

    {"problem": "quadratic", "rule": "adam", "seed": 0, "steps": 50,
     "hyperparameters": {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999,
                         "epsilon": 1e-08},
     "dtype": "float64", "backend": "numba", "divergence_factor": 10000.0,
     "eval_every": 0}

(image problems add ``"data"``; an infinite divergence factor is ``None``). Every
hyperparameter of the rule is in it, defaults resolved, so the config says everything
that decides the run's numbers and nothing else. Its key (:func:`config_key`) is a hash
of its canonical JSON: the same run has the same key in any process, on any machine,
whatever the order or spelling of the grid that asked for it (``1e-2`` and ``0.01`` are
the same learning rate).

Values on the command line (:func:`parse_values`): numbers separated by commas,
``log:START:STOP:COUNT`` for COUNT log-spaced values from START to STOP (rounded to 6
significant digits, so that keys do not depend on the last bit of a ``pow``),
``default`` for each rule's own default, ``true``/``false``.

Examples
--------
>>> parse_values("0.01,log:1e-3:1e-1:3,default", "--learning-rates")
[0.01, 0.001, 0.01, 0.1, 'default']
>>> split_list("sgd,rmsprop(tf, momentum),adam")
['sgd', 'rmsprop(tf, momentum)', 'adam']
>>> configs = expand_grid(["quadratic"], ["sgd", "adam"], [0.01, "default"], seeds=[0])
>>> [(c["rule"], c["hyperparameters"]["learning_rate"]) for c in configs]
[('sgd', 0.01), ('sgd', 0.001), ('adam', 0.01), ('adam', 0.001)]
>>> config_key(configs[0]) == config_key(dict(reversed(list(configs[0].items()))))
True
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import itertools
import json
import math
import re

import numpy as np

__all__ = [
    "BACKENDS",
    "DTYPES",
    "SweepSpecError",
    "canonical",
    "check_rule_settings",
    "config_key",
    "default_learning_rate",
    "expand_grid",
    "graph_key",
    "parse_grid_option",
    "parse_seeds",
    "parse_values",
    "resolve_rules",
    "rule_hyperparameters",
    "split_list",
]

#: Float dtypes a sweep runs in.
DTYPES = ("float64", "float32")
#: Backends by name, as :data:`symopt.lab.problems.MODES` maps them to PyTensor's modes.
BACKENDS = ("numba", "c", "default")
#: Shorthands in ``--rules``: every library rule, every form (library and texts).
RULE_GROUPS = ("all", "forms")

_SIGNIFICANT = 6
_LOG = re.compile(r"^log:([^:]+):([^:]+):([^:]+)$")


class SweepSpecError(ValueError):
    """A sweep's specification is wrong: a bad value, an unknown rule or hyperparameter."""


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def split_list(text):
    """Split at commas that are not inside parentheses (form names have them)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def _round(value):
    return float(f"{value:.{_SIGNIFICANT}g}")


def _number(token, option):
    try:
        value = float(token)
    except ValueError:
        raise SweepSpecError(f"{option}: {token!r} is not a number (give numbers, "
                             "log:START:STOP:COUNT, or default)") from None
    if not math.isfinite(value):
        raise SweepSpecError(f"{option}: {token!r} is not a finite number")
    return value


def _log_range(token, option):
    match = _LOG.match(token)
    if not match:
        raise SweepSpecError(f"{option}: {token!r} is not log:START:STOP:COUNT "
                             "(e.g. log:1e-4:1e-1:7, seven values from 1e-4 to 0.1)")
    start, stop = (_number(t, option) for t in match.group(1, 2))
    try:
        count = int(match.group(3))
    except ValueError:
        raise SweepSpecError(f"{option}: in {token!r} COUNT must be a whole number, "
                             f"got {match.group(3)!r}") from None
    if start <= 0 or stop <= 0:
        raise SweepSpecError(f"{option}: in {token!r} START and STOP must be positive "
                             "(the values are spaced evenly on a log scale)")
    if count < 1 or (count == 1 and start != stop):
        raise SweepSpecError(f"{option}: in {token!r} COUNT must be at least 2 "
                             "(or 1 with START equal to STOP)")
    return [_round(v) for v in np.logspace(np.log10(start), np.log10(stop), count)]


def parse_values(text, option="--grid"):
    """Values from ``text``: numbers, ``log:START:STOP:COUNT``, ``default``, booleans.

    Raises :class:`SweepSpecError`, naming ``option``, for anything else or for an empty
    list.
    """
    tokens = split_list(str(text))
    if not tokens:
        raise SweepSpecError(f"{option}: no values given")
    values = []
    for token in tokens:
        lowered = token.lower()
        if lowered == "default":
            values.append("default")
        elif lowered in ("true", "false"):
            values.append(lowered == "true")
        elif lowered.startswith("log:"):
            values += _log_range(lowered, option)
        else:
            values.append(_number(token, option))
    return values


def parse_grid_option(text):
    """``"beta2=0.99,0.999"`` as ``("beta2", [0.99, 0.999])``."""
    name, sep, values = str(text).partition("=")
    name = name.strip()
    if not sep or not name or not name.isidentifier():
        raise SweepSpecError(f"--grid: {text!r} is not NAME=VALUES (e.g. beta2=0.99,0.999)")
    if name == "learning_rate":
        raise SweepSpecError("--grid: give learning rates with --learning-rates")
    return name, parse_values(values, f"--grid {name}")


def parse_seeds(text):
    """Seeds: ``"0,1,2"``, or inclusive ranges ``"0-4"``, or both (``"0-2,7"``)."""
    seeds = []
    for token in split_list(str(text)):
        match = re.fullmatch(r"(\d+)-(\d+)", token)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise SweepSpecError(f"--seeds: range {token!r} runs backwards")
            seeds += range(first, last + 1)
        elif re.fullmatch(r"\d+", token):
            seeds.append(int(token))
        else:
            raise SweepSpecError(f"--seeds: {token!r} is not a seed (whole numbers >= 0, "
                                 "or ranges such as 0-4)")
    if not seeds:
        raise SweepSpecError("--seeds: no seeds given")
    return list(dict.fromkeys(seeds))


# ---------------------------------------------------------------------------------------
# Rules and their hyperparameters
# ---------------------------------------------------------------------------------------


def _forms():
    from symopt.lab.forms import FORMS

    return FORMS


def resolve_rules(names):
    """Rule names (``all`` for every library rule, ``forms`` for every form), checked."""
    import symopt

    forms = _forms()
    resolved = []
    for name in names:
        if name == "all":
            resolved += list(symopt.RULES)
        elif name == "forms":
            resolved += list(forms)
        elif name in forms:
            resolved.append(name)
        else:
            close = difflib.get_close_matches(name, list(forms), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SweepSpecError(
                f"--rules: unknown rule {name!r}{hint} Rules are symopt.RULES "
                f"({', '.join(symopt.RULES)}), the lab's forms (symopt.lab.forms.FORMS), "
                "'all' and 'forms'")
    if not resolved:
        raise SweepSpecError("--rules: no rules given")
    return list(dict.fromkeys(resolved))


def default_learning_rate(rule):
    """The default learning rate of a rule or form (its function's)."""
    form = _forms()[rule]
    if form.target is not None:
        p = inspect.signature(form.target).parameters.get("learning_rate")
        if p is not None and p.default is not inspect.Parameter.empty:
            return float(p.default)
    raise SweepSpecError(f"rule {rule!r} has no default learning rate; give numbers in "
                         "--learning-rates")


def _plain(value):
    """A hyperparameter value as JSON has it: numbers as floats, tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.number)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def rule_hyperparameters(rule):
    """Every hyperparameter of a rule or form but the learning rate, with its default."""
    form = _forms()[rule]
    return {k: _plain(v) for k, v in form.hyperparameters(None).items()
            if k != "learning_rate"}


# ---------------------------------------------------------------------------------------
# Configs and keys
# ---------------------------------------------------------------------------------------


def canonical(config):
    """The config as canonical JSON: sorted keys, no spaces, floats as Python writes them."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_key(config):
    """A stable key of a run: 16 hex digits of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


def graph_key(config):
    """What a run's compiled graph depends on: problem, data, rule, dtype, backend, and the
    hyperparameters that shape the graph rather than fill it.

    Numeric hyperparameters are shared variables set per run, except a zero, which is
    passed as a literal 0 (rules may leave out a term for it: RMSProp without momentum
    keeps no velocity); booleans and tuples are part of the graph.
    """
    shape = tuple(sorted((name, _shape_of(value))
                         for name, value in config["hyperparameters"].items()))
    return (config["problem"], config.get("data"), config["rule"], config["dtype"],
            config["backend"], shape)


def _shape_of(value):
    if isinstance(value, float):
        return "zero" if value == 0 else "variable"
    if isinstance(value, list):
        return tuple(value)
    return value


def expand_grid(problems, rules, learning_rates=("default",), grid=None, seeds=(0,), *,
                steps=100, dtype="float64", backend="numba", data="embedded",
                divergence_factor=1e4, eval_every=0):
    """Every run of the grid, as configs, in a stable order, each once.

    ``grid`` maps hyperparameter names to values; each name applies to the rules that
    have it (and must belong to at least one of them). ``"default"`` stands for a rule's
    own default, for the learning rate and any other hyperparameter.
    """
    from symopt.lab.problems import IMAGE_PROBLEMS

    grid = dict(grid or {})
    rules = resolve_rules(rules)
    if dtype not in DTYPES:
        raise SweepSpecError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if backend not in BACKENDS:
        raise SweepSpecError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    for name, value, low in (("--steps", steps, 1), ("--eval-every", eval_every, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SweepSpecError(f"{name} must be a whole number >= {low}, got {value!r}")
    if not (divergence_factor > 0):
        raise SweepSpecError(f"--divergence-factor must be positive, got {divergence_factor!r}")
    if not problems:
        raise SweepSpecError("--problem: no problems given")
    learning_rates = list(learning_rates)
    if not learning_rates:
        raise SweepSpecError("--learning-rates: no values given")
    for lr in learning_rates:
        if lr != "default" and (isinstance(lr, bool) or not isinstance(lr, (int, float))):
            raise SweepSpecError(f"--learning-rates: {lr!r} is not a number or 'default'")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SweepSpecError(f"--seeds must be whole numbers >= 0, got {seeds!r}")
    defaults = {rule: rule_hyperparameters(rule) for rule in rules}
    for name, values in grid.items():
        if not values:
            raise SweepSpecError(f"--grid {name}: no values given")
        if not any(name in defaults[rule] for rule in rules):
            known = "; ".join(f"{rule}: {', '.join(sorted(defaults[rule]))}" for rule in rules)
            raise SweepSpecError(f"--grid {name}: none of the rules has a hyperparameter "
                                 f"{name!r} (theirs are {known})")
    configs = {}
    for problem in problems:
        for rule in rules:
            own = [name for name in grid if name in defaults[rule]]
            for lr, *values, seed in itertools.product(
                    learning_rates, *(grid[name] for name in own), seeds):
                hyper = dict(defaults[rule])
                if lr == "default":
                    lr = default_learning_rate(rule)
                hyper["learning_rate"] = float(lr)
                for name, value in zip(own, values):
                    if value != "default":
                        hyper[name] = _plain(value)
                config = {"problem": problem, "rule": rule, "hyperparameters": hyper,
                          "seed": int(seed), "steps": int(steps), "dtype": dtype,
                          "backend": backend,
                          "divergence_factor": (float(divergence_factor)
                                                if math.isfinite(divergence_factor) else None),
                          "eval_every": int(eval_every)}
                if problem in IMAGE_PROBLEMS:
                    config["data"] = data
                configs.setdefault(config_key(config), config)
    return list(configs.values())


def check_rule_settings(configs, dtype="float64"):
    """Build each distinct (rule, hyperparameters) once on a tiny problem, with the values
    as plain numbers, so that the rules' own checks (a negative learning rate, ``beta2``
    not below 1) fail here, before any run, with the rule's message."""
    import pytensor

    forms = _forms()
    seen = set()
    for config in configs:
        hyper = config["hyperparameters"]
        settings = (config["rule"], json.dumps(hyper, sort_keys=True))
        if settings in seen:
            continue
        seen.add(settings)
        w = pytensor.shared(np.ones(2, dtype=dtype), name="w")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()}
        lr = kwargs.pop("learning_rate")
        try:
            forms[config["rule"]].make(lambda ps: (ps[0] ** 2).sum(), [w], lr, **kwargs)
        except (ValueError, TypeError) as err:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(hyper.items()))
            raise SweepSpecError(f"rule {config['rule']!r} with {shown}: {err}") from None
