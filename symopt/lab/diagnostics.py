r"""Checking training: norms and NaN counts at each step, and a numerical gradient check.

The book's advice: "To check the training process, it is usual to print the norm of
the parameters, the gradients, and the updates, as well as NaN values."
:func:`monitor_outputs` builds those as symbolic outputs to compile into the training
function itself, so they cost one function call, not a second pass.

The course note's gradient check compares the gradient with central differences,
:math:`(J(\theta + \epsilon) - J(\theta - \epsilon)) / 2\epsilon`, through the relative
error :math:`\|g_\mathrm{num} - g\| / (\|g_\mathrm{num}\| + \|g\|)`:
:func:`gradient_check`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytensor
import pytensor.tensor as pt

from symopt._checks import check_params

__all__ = ["GradientCheck", "gradient_check", "monitor_outputs"]


def _norm(tensors):
    """The joint L2 norm of some tensors."""
    tensors = list(tensors)
    if len(tensors) == 1 and tensors[0].ndim == 0:
        # PyTensor 2.38 rewrites sqrt(sqr(x)) of a scalar into switch(x >= 0, x, nan).
        return pt.abs(tensors[0])
    return pt.sqrt(sum(pt.sqr(t).sum() for t in tensors))


def _nonfinite_count(x):
    # NaN or inf, spelled so that PyTensor 2.38 (which has no pt.isfinite) builds it too.
    return pt.cast(pt.or_(pt.isnan(x), pt.isinf(x)).sum(), "int64")


def monitor_outputs(params: Sequence, grads: Sequence, updates, *,
                    per_param: bool = False) -> dict:
    """Symbolic norms of the parameters, gradients and steps, and a count of NaN/inf.

    Parameters
    ----------
    params : list of SharedVariable
    grads : list of TensorVariable
        One gradient per parameter (what the rule was given).
    updates : list of (SharedVariable, TensorVariable) or dict
        The updates of the training function.
    per_param : bool, default False
        Also the three norms of each parameter, named ``<param>.norm``,
        ``<param>.grad_norm`` and ``<param>.update_norm``.

    Returns
    -------
    dict of str to TensorVariable
        ``param_norm``: the global L2 norm of the parameters before the step;
        ``grad_norm``: of the gradients; ``update_norm``: of the steps taken, new value
        minus old, over the updated parameters; ``nonfinite``: the number of NaN or
        infinite elements in the gradients and in every floating-point update expression
        (parameters and optimizer state), as int64.

    Examples
    --------
    >>> import numpy as np, pytensor, symopt
    >>> w = pytensor.shared(np.array([3.0, 4.0]), name="w")
    >>> loss = (w ** 2).sum()
    >>> [g] = pytensor.grad(loss, [w])
    >>> out = monitor_outputs([w], [g], symopt.sgd([g], [w], 0.1))
    >>> f = pytensor.function([], list(out.values()))
    >>> dict(zip(out, [round(float(v), 6) for v in f()]))
    {'param_norm': 5.0, 'grad_norm': 10.0, 'update_norm': 1.0, 'nonfinite': 0.0}
    """
    params = check_params(params)
    grads = list(grads)
    if len(grads) != len(params):
        raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
    pairs = list(updates.items() if isinstance(updates, Mapping) else updates)
    new_values = {id(s): e for s, e in pairs}
    stepped = [(p, new_values[id(p)]) for p in params if id(p) in new_values]
    if not stepped:
        raise ValueError("none of the parameters has an update; pass the training updates")
    outputs = {
        "param_norm": _norm(params),
        "grad_norm": _norm(grads),
        "update_norm": _norm(new - p for p, new in stepped),
        "nonfinite": sum(_nonfinite_count(t) for t in
                         grads + [e for _, e in pairs if e.dtype.startswith("float")]),
    }
    if per_param:
        for i, (p, g) in enumerate(zip(params, grads)):
            name = p.name or f"param{i}"
            outputs[f"{name}.norm"] = _norm([p])
            outputs[f"{name}.grad_norm"] = _norm([g])
            if id(p) in new_values:
                outputs[f"{name}.update_norm"] = _norm([new_values[id(p)] - p])
    return outputs


@dataclass
class GradientCheck:
    r"""The result of :func:`gradient_check`.

    Attributes
    ----------
    relative_error : float
        :math:`\|g_\mathrm{num} - g\| / (\|g_\mathrm{num}\| + \|g\|)` over every
        checked element of every parameter (0 when both are zero).
    per_param : dict of str to float
        The same, parameter by parameter.
    passed : bool
        ``relative_error <= tolerance``.
    tolerance, epsilon : float
    numerical, symbolic : dict of str to numpy.ndarray
        The checked elements' numerical and symbolic derivatives, per parameter.
    indices : dict of str to numpy.ndarray
        The flat indices of the checked elements.
    """

    relative_error: float
    per_param: dict
    passed: bool
    tolerance: float
    epsilon: float
    numerical: dict = field(repr=False)
    symbolic: dict = field(repr=False)
    indices: dict = field(repr=False)

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        worst = max(self.per_param, key=self.per_param.get)
        return (f"gradient check {verdict}: relative error {self.relative_error:.3g} "
                f"(tolerance {self.tolerance:.1g}); worst parameter {worst} "
                f"({self.per_param[worst]:.3g})")


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    denominator = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denominator) if denominator > 0 else 0.0


def gradient_check(loss, params: Sequence, grads: Sequence | None = None, *,
                   inputs: Sequence = (), values: Sequence = (),
                   epsilon: float | None = None, tolerance: float | None = None,
                   max_elements: int | None = 50, seed: int = 0,
                   mode=None) -> GradientCheck:
    r"""Compare a gradient with central differences of the loss, as the course note does.

    Each checked element :math:`\theta_i` of each parameter is moved by
    :math:`\pm\epsilon` and

    .. math::

        g_{\mathrm{num}, i} = \frac{J(\theta + \epsilon e_i) - J(\theta - \epsilon e_i)}{2 \epsilon}

    (with the perturbation actually stored, which matters in float32). The parameters are
    restored afterwards. Run it without dropout (the loss must be deterministic), a few
    times, not at every step: it costs two loss evaluations per element.

    Parameters
    ----------
    loss : scalar TensorVariable
    params : list of SharedVariable
    grads : list of TensorVariable, optional
        The gradient to check, one per parameter (e.g. hand-written backpropagation);
        by default ``pytensor.grad(loss, params)``.
    inputs : list of Variable
        Symbolic inputs of the loss (e.g. ``x``, ``y``), and ``values`` their values.
    values : list of array-like
    epsilon : float, optional
        :math:`\epsilon`; 1e-6 for float64 parameters, 1e-3 for float32.
    tolerance : float, optional
        The largest relative error that passes; 1e-6 for float64 parameters, 1e-2 for
        float32 (whose rounding limits the check to gross errors).
    max_elements : int or None, default 50
        Check at most this many randomly chosen elements of each parameter (None: all).
    seed : int, default 0
        Chooses the elements.
    mode : pytensor Mode, optional
        For compiling the loss and gradient.

    Returns
    -------
    GradientCheck

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> w = pytensor.shared(np.array([1.0, -2.0]), name="w")
    >>> loss = (w ** 3).sum()
    >>> gradient_check(loss, [w]).passed
    True
    >>> gradient_check(loss, [w], grads=[2 * w ** 2]).passed  # should be 3 w**2
    False
    """
    params = check_params(params)
    if grads is None:
        grads = pytensor.grad(loss, params)
    grads = list(grads)
    if len(grads) != len(params):
        raise ValueError(f"got {len(grads)} gradients for {len(params)} parameters")
    inputs, values = list(inputs), list(values)
    if len(inputs) != len(values):
        raise ValueError(f"got {len(values)} values for {len(inputs)} inputs")
    double = all(p.dtype == "float64" for p in params)
    epsilon = (1e-6 if double else 1e-3) if epsilon is None else float(epsilon)
    tolerance = (1e-6 if double else 1e-2) if tolerance is None else float(tolerance)

    f_loss = pytensor.function(inputs, loss, mode=mode)
    f_grads = pytensor.function(inputs, grads, mode=mode)
    symbolic_all = [np.asarray(g) for g in f_grads(*values)]
    rng = np.random.default_rng(seed)

    numerical, symbolic, indices, per_param = {}, {}, {}, {}
    for i, (p, g_sym) in enumerate(zip(params, symbolic_all)):
        name = p.name or f"param{i}"
        original = p.get_value(borrow=False)
        size = original.size
        if max_elements is None or size <= max_elements:
            idx = np.arange(size)
        else:
            idx = np.sort(rng.choice(size, size=max_elements, replace=False))
        work = original.copy()
        flat = work.reshape(-1)
        g_num = np.empty(len(idx))
        try:
            for k, j in enumerate(idx):
                flat[j] = original.flat[j] + epsilon
                plus = float(flat[j])
                p.set_value(work)
                loss_plus = float(f_loss(*values))
                flat[j] = original.flat[j] - epsilon
                minus = float(flat[j])
                p.set_value(work)
                loss_minus = float(f_loss(*values))
                flat[j] = original.flat[j]
                g_num[k] = (loss_plus - loss_minus) / (plus - minus)
        finally:
            p.set_value(original)
        numerical[name] = g_num
        symbolic[name] = g_sym.reshape(-1)[idx].astype(float)
        indices[name] = idx
        per_param[name] = _relative_error(g_num, symbolic[name])
    all_num = np.concatenate(list(numerical.values()))
    all_sym = np.concatenate(list(symbolic.values()))
    error = _relative_error(all_num, all_sym)
    return GradientCheck(relative_error=error, per_param=per_param, passed=error <= tolerance,
                         tolerance=tolerance, epsilon=epsilon, numerical=numerical,
                         symbolic=symbolic, indices=indices)
