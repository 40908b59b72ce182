"""Every update form of the library and of the source texts, behind one interface.

A *form* turns ``(cost_fn, params)`` into updates, where ``cost_fn(tensors)`` gives the
cost at any list of tensors shaped like ``params``. Most forms only need the cost at the
parameters; the blog's toy NAG needs it at the look-ahead point, which is why forms get
the function and not just the cost. Studies that compare optimizers (the examples, the
recorded curves, the benchmarks) loop over :data:`FORMS`.

Examples
--------
>>> import numpy as np, pytensor
>>> w = pytensor.shared(np.array([1.0, -1.0]), name="w")
>>> updates = FORMS["blog.MomentumUpdate(cm)"].build(lambda ps: (ps[0] ** 2).sum(), [w], 0.1)
>>> [var.name for var, _ in updates]
['w', 'w.velocity']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import pytensor

from symopt._checks import as_scalar
from symopt.rules import RULES, rmsprop
from symopt.state import param_state
from symopt.texts import blog, book

__all__ = ["FORMS", "Form"]

# not hyperparameters: the arguments, and ``fuse``, which chooses the path, not the numbers
_NOT_HYPER = {"loss_or_grads", "params", "cost", "learning_rate", "fuse"}


@dataclass(frozen=True)
class Form:
    """One update form: how to build its updates, and what kind of learning rate it wants.

    ``kind`` groups forms whose learning rates live on the same scale: ``"gradient"``
    (the step is proportional to the gradient: SGD and momentum), ``"adaptive"`` (the
    step is about the learning rate whatever the gradient: Adam and its family, RMSProp,
    Adagrad, Rprop) and ``"unit"`` (AdaDelta, whose learning rate is a plain factor
    around 1).
    """

    name: str
    kind: str
    make: Callable
    fixed: dict = field(default_factory=dict)
    source: str = "symopt"
    target: Callable | None = None

    def hyperparameters(self, learning_rate):
        """Every hyperparameter of this form, defaults resolved, for the record.

        Keyword-only options (``epsilon_placement``) choose a form of the rule and are
        recorded only where the form fixes them: at their default they are the form the
        curves were recorded with before the option existed.
        """
        resolved = {}
        if self.target is not None:
            for name, p in inspect.signature(self.target).parameters.items():
                if p.kind is inspect.Parameter.KEYWORD_ONLY:
                    continue
                if name not in _NOT_HYPER and p.default is not inspect.Parameter.empty:
                    resolved[name] = list(p.default) if isinstance(p.default, tuple) else p.default
        return {**resolved, **self.fixed, "learning_rate": learning_rate}

    def build(self, cost_fn, params, learning_rate):
        """The updates of this form for ``params``, with the given learning rate."""
        return self.make(cost_fn, list(params), learning_rate, **self.fixed)


def _rule(rule):
    def make(cost_fn, params, learning_rate, **kw):
        return rule(cost_fn(params), params, learning_rate=learning_rate, **kw)

    return make


def _text(fn):
    def make(cost_fn, params, learning_rate, **kw):
        updates = fn(cost_fn(params), params, learning_rate, **kw)
        return list(updates.items()) if isinstance(updates, dict) else updates

    return make


def _toy(look_ahead):
    """The blog's toy loop: one ``MomentumUpdate`` per parameter, velocities made here.

    With ``look_ahead`` the gradient is taken at ``x + momentum * v``, the blog's toy NAG.
    """

    def make(cost_fn, params, learning_rate, momentum=0.9):
        velocities = [param_state(p, "velocity", "blog.toy") for p in params]
        at = ([p + as_scalar(momentum, p.dtype) * v for p, v in zip(params, velocities)]
              if look_ahead else params)
        grads = pytensor.grad(cost_fn(at), at)
        updates = []
        for p, v, df in zip(params, velocities, grads):
            updates += blog.MomentumUpdate([p, v, df], learning_rate=learning_rate,
                                           momentum=momentum)
        return updates

    return make


def _rule_form(name, rule, kind, **fixed):
    return Form(name, kind, _rule(rule), fixed, "symopt", rule)


def _text_form(fn, kind, source, name=None, make=None, **fixed):
    name = name or f"{source}.{fn.__name__}"
    return Form(name, kind, make or _text(fn), fixed, source, fn)


#: The RMSProp variants the slides (TensorFlow's, with momentum) and Graves (centred) use.
_RMSPROP_VARIANTS = [
    _rule_form("rmsprop(tf, momentum)", rmsprop, "adaptive", rho=0.9, momentum=0.9,
               epsilon=1e-10),
    _rule_form("rmsprop(centered)", rmsprop, "adaptive", centered=True),
]

def _seeded(rule):
    """``seed=0`` for a rule that draws random probes (Sophia, AdaHessian): a form's curve
    is the same in every process, as a recorded curve must be."""
    return {"seed": 0} if "seed" in inspect.signature(rule.build).parameters else {}


_ENTRIES = [
    *(form for name, rule in RULES.items()
      for form in [_rule_form(name, rule, rule.kind, **_seeded(rule))]
      + (_RMSPROP_VARIANTS if name == "rmsprop" else [])),
    _text_form(blog.MomentumUpdate, "gradient", "blog", "blog.MomentumUpdate(vanilla)",
               _toy(False), momentum=0.0),
    _text_form(blog.MomentumUpdate, "gradient", "blog", "blog.MomentumUpdate(cm)",
               _toy(False), momentum=0.9),
    _text_form(blog.MomentumUpdate, "gradient", "blog", "blog.MomentumUpdate(nag)",
               _toy(True), momentum=0.9),
    _text_form(blog.sgd, "gradient", "blog"),
    _text_form(blog.momentum, "gradient", "blog"),
    _text_form(blog.nag, "gradient", "blog"),
    _text_form(book.sgd, "gradient", "book"),
    _text_form(book.momentum, "gradient", "book"),
    _text_form(book.nag, "gradient", "book"),
    _text_form(book.adagrad, "adaptive", "book"),
    _text_form(book.adadelta, "unit", "book"),
    _text_form(book.rmsprop, "adaptive", "book"),
    _text_form(book.adam, "adaptive", "book"),
]

#: Every form, by name: the library's rules (from :data:`symopt.RULES`, so a new rule
#: is a new form; the RMSProp variants after RMSProp), then the blog's and the book's.
FORMS = {form.name: form for form in _ENTRIES}
