r"""The transform contract, :func:`chain`, :func:`apply`, and configured rules.

A *transform* maps one step per parameter (at first, the gradients) to new steps, and
says which state it keeps:

.. code-block:: python

    new_steps, state_updates = transform.transform(steps, params)

``state_updates`` are ``(state_variable, new_value)`` pairs. Transforms compose with
:func:`chain`, and :func:`apply` turns the final steps into updates
``param <- param + step``, the one place where that happens. Every transform declares
whether it is *elementwise* (each element of a new step depends only on the same
element of the step, the parameter and its state, and on scalars): those can run as one
fused loop over many tensors (:mod:`symopt.fused`); the others (a global norm, a guard
over all steps) cannot, and the fused path keeps them on the per-tensor path.

A transform is also a rule: called with ``(loss_or_grads, params)`` it returns the
updates, so ``symopt.chain(symopt.clip_by_global_norm(5.0), symopt.adam(learning_rate=1e-3))``
can be handed to ``pytensor.function``'s ``updates`` after calling it, or to
``pm.fit(obj_optimizer=...)`` as it is.

The sign convention lives in one place: every block works on gradient-like steps (they
point uphill) until :func:`symopt.scale_by_learning_rate` multiplies by
``-learning_rate``. Blocks after it (the momentum traces) accumulate descent steps, as
Lasagne's and PyMC's momentum do, which keeps a changing learning rate exact.
"""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast, overload

from symopt._checks import check_params, like_param, require_loss
from symopt.flat import refuse_flat
from symopt.grads import get_or_compute_grads
from symopt.state import mark_updated
from symopt.updates import Updates

if TYPE_CHECKING:
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Variable

    from symopt._typing import Fuse, LossOrGrads, Params, StepsFunction, UpdateRule

__all__ = ["ConfiguredRule", "LossRule", "Transform", "Updates", "apply", "as_transform", "chain",
           "update_rule"]

FUSE_CHOICES = (True, False, "auto")


def _check_fuse(fuse: Fuse) -> Fuse:
    if fuse not in FUSE_CHOICES:
        raise ValueError(f"fuse must be True, False or 'auto', got {fuse!r}")
    return fuse


class Transform:
    """A gradient transform: ``transform(steps, params) -> (new_steps, state_updates)``.

    Parameters
    ----------
    fn : callable
        ``fn(steps, params)`` returning the new steps (one per parameter) and a list of
        ``(state_variable, new_value)`` pairs.
    elementwise : bool
        Whether each element of a new step depends only on the same element of the
        steps, the parameters and their state (and on scalars). Declared, never guessed:
        it decides whether the transform can run in one fused loop.
    name : str, optional
        For messages and ``repr``.

    Calling a transform with ``(loss_or_grads, params)`` applies it (:func:`apply`).

    Examples
    --------
    A block of one's own, elementwise, chained before Adam:

    >>> import numpy as np, pytensor, symopt
    >>> halve = symopt.Transform(lambda steps, params: ([0.5 * s for s in steps], []),
    ...                          elementwise=True, name="halve")
    >>> w = pytensor.shared(np.array([3.0]), name="w")
    >>> rule = symopt.chain(halve, symopt.sgd(learning_rate=0.1))
    >>> step = pytensor.function([], [], updates=rule((w ** 2).sum(), [w]))
    >>> _ = step(); w.get_value()
    array([2.7])
    """

    fuse: Fuse = False
    #: the transforms a :func:`chain` is made of (set on chains only)
    parts: tuple[Transform, ...]

    def __init__(self, fn: StepsFunction, *, elementwise: bool, name: str | None = None):
        if not callable(fn):
            raise TypeError(f"a transform needs a function fn(steps, params), got "
                            f"{type(fn).__name__}")
        self.fn = fn
        self.elementwise = bool(elementwise)
        self.name: str = name or cast(str, getattr(fn, "__name__", "transform"))

    def transform(self, steps: list[Variable], params: list[SharedVariable]
                  ) -> tuple[list[Variable], list[tuple[Variable, Variable]]]:
        """The new steps and the state updates for ``steps`` of ``params``."""
        return self.fn(steps, params)

    def __call__(self, loss_or_grads: LossOrGrads | None, params: Params,
                 fuse: Fuse | None = None) -> Updates:
        """The updates of this transform for ``params``: see :func:`apply`."""
        return apply(self, loss_or_grads, params, fuse=self.fuse if fuse is None else fuse)

    def __repr__(self) -> str:
        return self.name


def as_transform(value: Transform | StepsFunction, where: str = "transform") -> Transform:
    """``value`` as a :class:`Transform`; a plain function is taken as not elementwise.

    A function ``fn(steps, params)`` written before transforms declared themselves still
    works everywhere; it is only kept off the fused path (wrap it in
    ``Transform(fn, elementwise=True)`` to declare that it may be fused).
    """
    if isinstance(value, Transform):
        return value
    if callable(value):
        return Transform(value, elementwise=False)
    raise TypeError(f"{where} is a {type(value).__name__}, not a transform: pass a rule, "
                    "a building block or a function fn(steps, params)")


def chain(*transforms: Transform | StepsFunction) -> Transform:
    """Compose transforms: the steps go through each in turn, their state is collected.

    Rules configured without a loss (``symopt.adam(learning_rate=0.01)``) chain like any
    block. The result is a transform, elementwise when every part is, and a rule: call it
    with ``(loss_or_grads, params)`` or pass it to ``pm.fit(obj_optimizer=...)``.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([3.0]), name="w")
    >>> rule = symopt.chain(symopt.scale_by_adagrad(), symopt.scale_by_learning_rate(0.1))
    >>> step = pytensor.function([], [], updates=rule((w ** 2).sum(), [w]))
    >>> _ = step(); w.get_value().round(6)
    array([2.9])
    """
    blocks = [as_transform(t, f"chain argument {i}") for i, t in enumerate(transforms)]

    def transform(steps, params):
        state = []
        for block in blocks:
            steps, block_state = block.transform(steps, params)
            state += block_state
        return steps, state

    chained = Transform(transform, elementwise=all(b.elementwise for b in blocks),
                        name=f"chain({', '.join(map(repr, blocks))})")
    chained.parts = tuple(blocks)
    return chained


def apply(transform: Transform | StepsFunction, loss_or_grads: LossOrGrads | None,
          params: Params, fuse: Fuse = False) -> Updates:
    """Run a transform on the gradients and return the updates.

    The one place where steps become parameter updates: the result is
    ``[(p, p + s) for each parameter] + state_updates``, a list ready for
    ``pytensor.function(..., updates=...)``. Every expression has exactly the type of its
    shared variable. The list is an :class:`Updates`, which also reads as the
    ``OrderedDict`` Lasagne and PyMC return (``updates[p]``, ``p in updates``,
    ``updates.items()``, ``updates.update(...)``).

    Parameters
    ----------
    transform : Transform, ConfiguredRule or function ``fn(steps, params)``
    loss_or_grads : scalar TensorVariable or list of TensorVariable
    params : list of SharedVariable
    fuse : bool or "auto", default False
        True: update all parameters of a dtype in one fused loop, their state in flat
        buffers (:mod:`symopt.fused`), or raise :class:`symopt.fused.NotFusable` if the
        transform is not elementwise. ``"auto"``: fuse when the transform is elementwise
        and, with Numba the default backend, a dtype has at least
        :data:`symopt.fused.FUSE_MIN_TENSORS` tensors (with a C backend the default,
        whatever their number: :func:`symopt.fused.auto_min_tensors`).
        False: one update per parameter.
    """
    _check_fuse(fuse)
    transform = as_transform(transform)
    params = check_params(params)
    if not transform.elementwise:
        refuse_flat(params, transform.name or "this transform")
    grads = get_or_compute_grads(loss_or_grads, params)
    if fuse:
        from symopt import fused

        if fuse is True:
            return Updates(fused.fused_apply(transform, grads, params))
        largest_group = max(Counter(p.dtype for p in params).values())
        if transform.elementwise and largest_group >= fused.auto_min_tensors():
            return Updates(fused.fused_apply(transform, grads, params))
    steps, state = transform.transform(grads, params)
    updates = [(p, like_param(p + s, p)) for p, s in zip(params, steps, strict=True)]
    for p in params:
        mark_updated(p)
    return Updates(updates + [(var, var.type.filter_variable(value)) for var, value in state])


class ConfiguredRule(Transform):
    """An update rule with its hyperparameters set, waiting for a loss and parameters.

    What ``symopt.adam(learning_rate=0.01)`` returns. Calling it,
    ``rule(loss_or_grads, params)``, returns the updates; as a :class:`Transform` it can
    be chained. ``hyperparameters`` holds every hyperparameter, defaults resolved.

    It looks like the ``functools.partial`` that Lasagne-style code and PyMC's rules
    return: ``func`` is the rule, ``keywords`` its hyperparameters (the same dict as
    ``hyperparameters``), ``args`` is empty; and, as with a partial, hyperparameters
    given by name when it is called override the configured ones for that call:
    ``opt(loss, params, learning_rate=0.1)`` builds the rule again with them (the
    configured rule itself does not change). Called with neither loss nor params, it
    returns the rule configured with the overrides. Code that changes ``keywords`` in
    place, as schedulers written for PyMC's partials do
    (``opt.keywords["learning_rate"] = shared_lr``), is followed too: the rule is built
    again from the changed hyperparameters at its next use.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> opt = symopt.adam(learning_rate=0.01)
    >>> opt.func is symopt.adam, opt.args, opt.keywords["learning_rate"]
    (True, (), 0.01)
    >>> w = pytensor.shared(np.array([1.0]), name="w")
    >>> step = pytensor.function([], [], updates=opt((w ** 2).sum(), [w], learning_rate=0.1))
    >>> _ = step(); w.get_value()
    array([0.9])
    >>> opt(beta2=0.99).keywords["beta2"]
    0.99
    """

    def __init__(self, name: str, transform: Transform | StepsFunction,
                 hyperparameters: Mapping[str, Any], fuse: Fuse = False,
                 func: UpdateRule | None = None):
        transform = as_transform(transform)
        super().__init__(transform.transform, elementwise=transform.elementwise, name=name)
        self.hyperparameters = dict(hyperparameters)
        self.fuse = _check_fuse(fuse)
        #: the rule this configures (``symopt.adam``), which rebuilds it with overrides
        self.func = func
        #: always empty: hyperparameters are held by name, in :attr:`keywords`
        self.args = ()
        self._built_with = dict(self.hyperparameters)

    def _refresh(self) -> None:
        """Build the transform again if ``keywords`` were changed in place since."""
        current, built = self.hyperparameters, self._built_with
        if self.func is None or (current.keys() == built.keys()
                                 and all(current[k] is built[k] for k in current)):
            return
        transform = as_transform(self.func.build(**current))
        self.fn, self.elementwise = transform.transform, transform.elementwise
        self._built_with = dict(current)

    def transform(self, steps: list[Variable], params: list[SharedVariable]
                  ) -> tuple[list[Variable], list[tuple[Variable, Variable]]]:
        """The new steps and the state updates (see :class:`Transform`)."""
        self._refresh()
        return super().transform(steps, params)

    @property
    def keywords(self) -> dict[str, Any]:
        """The hyperparameters, by name (``functools.partial``'s name for them)."""
        return self.hyperparameters

    @overload
    def __call__(self, loss_or_grads: None = None, params: None = None, *args: Any,
                 fuse: Fuse | None = None, **overrides: Any) -> ConfiguredRule: ...

    @overload
    def __call__(self, loss_or_grads: LossOrGrads | None, params: Params, *args: Any,
                 fuse: Fuse | None = None, **overrides: Any) -> Updates: ...


    def __call__(self, loss_or_grads: LossOrGrads | None = None, params: Params | None = None,
                 *args: Any, fuse: Fuse | None = None,
                 **overrides: Any) -> Updates | ConfiguredRule:
        """The updates; ``fuse`` defaults to the one the rule was configured with, so
        ``pm.fit(obj_optimizer=symopt.adam(learning_rate=0.01, fuse=True))`` fuses.
        Hyperparameters given by name override the configured ones for this call."""
        if args:
            raise TypeError(
                f"{self.name}: a configured rule takes its loss and params by position and "
                f"hyperparameters only by name (e.g. learning_rate=...), got {len(args)} more "
                "positional argument(s)"
            )
        fuse = self.fuse if fuse is None else _check_fuse(fuse)
        if overrides or (loss_or_grads is None and params is None):
            if self.func is None:
                if not overrides:
                    return self
                raise TypeError(f"{self.name} was configured without its rule, so it cannot "
                                f"take hyperparameters when called: {sorted(overrides)}")
            rule = cast("Callable[..., Updates | ConfiguredRule]", self.func)
            return rule(loss_or_grads, params, **{**self.hyperparameters, **overrides},
                        fuse=fuse)
        self._refresh()
        # one of the two may still be None: apply() says which is missing
        return super().__call__(loss_or_grads, params, fuse=fuse)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{self.name}({args})"


class LossRule(ConfiguredRule):
    """A configured rule that needs the loss itself (curvature, or a gradient taken at
    another point); given a list of gradients, it raises."""

    @overload
    def __call__(self, loss_or_grads: None = None, params: None = None, *args: Any,
                 fuse: Fuse | None = None, **overrides: Any) -> ConfiguredRule: ...

    @overload
    def __call__(self, loss_or_grads: LossOrGrads | None, params: Params, *args: Any,
                 fuse: Fuse | None = None, **overrides: Any) -> Updates: ...


    def __call__(self, loss_or_grads: LossOrGrads | None = None, params: Params | None = None,
                 *args: Any, fuse: Fuse | None = None,
                 **overrides: Any) -> Updates | ConfiguredRule:
        if loss_or_grads is not None or params is not None:
            require_loss(loss_or_grads, self.name)
        call = cast("Callable[..., Updates | ConfiguredRule]", super().__call__)
        return call(loss_or_grads, params, *args, fuse=fuse, **overrides)


def update_rule(build: Callable[..., Transform | StepsFunction],
                needs_loss: bool = False) -> UpdateRule:
    """Turn ``build(**hyperparameters) -> transform`` into a user-facing update rule.

    The rule takes ``loss_or_grads`` and ``params`` first, then the hyperparameters of
    ``build`` (by position or name), and either applies the transform or, given neither a
    loss nor params, returns a :class:`ConfiguredRule`. Hyperparameters are checked
    when the rule is called, in both cases. The keyword ``fuse`` chooses the per-tensor
    or the fused multi-tensor path (see :func:`apply`). With ``needs_loss`` the rule
    refuses a list of gradients (its transform differentiates them again or evaluates
    them elsewhere) and configures a :class:`LossRule`; ``rule.needs_loss`` says which.
    """
    hyper_signature = inspect.signature(build)
    configured = LossRule if needs_loss else ConfiguredRule

    @functools.wraps(build)
    def rule(loss_or_grads: LossOrGrads | None = None, params: Params | None = None,
             *args: Any, fuse: Fuse = False, **kwargs: Any) -> Updates | ConfiguredRule:
        _check_fuse(fuse)
        if needs_loss and loss_or_grads is not None:
            require_loss(loss_or_grads, build.__name__)
        try:
            bound = hyper_signature.bind(*args, **kwargs)
        except TypeError as err:
            raise TypeError(f"{build.__name__}: {err}; its hyperparameters are "
                            f"{', '.join(hyper_signature.parameters)}") from None
        bound.apply_defaults()
        transform = build(*bound.args, **bound.kwargs)
        if loss_or_grads is None and params is None:
            return configured(build.__name__, transform, bound.arguments, fuse=fuse,
                              func=cast("UpdateRule", rule))
        if params is None:
            raise ValueError(
                f"{build.__name__}: loss_or_grads was given without params; pass the list "
                "of shared variables to update"
            )
        if loss_or_grads is None:
            raise ValueError(
                f"{build.__name__}: params were given without loss_or_grads; pass a scalar "
                "loss or one gradient per parameter"
            )
        if not as_transform(transform).elementwise:  # the error names the rule
            refuse_flat(check_params(params), build.__name__)
        return apply(transform, loss_or_grads, params, fuse=fuse)

    # The user-facing signature, annotated as the module's annotations are (strings, read
    # with symopt._typing's names): loss and params first, then build's hyperparameters.
    leading = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                          annotation=annotation)
        for name, annotation in (("loss_or_grads", "LossOrGrads | None"),
                                 ("params", "Params | None"))
    ]
    fuse = inspect.Parameter("fuse", inspect.Parameter.KEYWORD_ONLY, default=False,
                             annotation="Fuse")
    signature = hyper_signature.replace(
        parameters=leading + list(hyper_signature.parameters.values()) + [fuse],
        return_annotation="Updates | ConfiguredRule",
    )
    # functools.wraps copied build's annotations (its return is a transform): the rule's own
    rule.__annotations__ = {
        **{p.name: p.annotation for p in signature.parameters.values()
           if p.annotation is not inspect.Parameter.empty},
        "return": signature.return_annotation,
    }
    made = cast("UpdateRule", rule)
    made.__signature__ = signature
    made.build = build
    made.needs_loss = needs_loss
    return made
