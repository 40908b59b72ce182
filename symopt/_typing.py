"""The type aliases of symopt's public signatures, defined once.

The library's modules annotate with these names under ``from __future__ import
annotations`` and import them only for type checkers (``if TYPE_CHECKING:``), so
``import symopt`` does not load this module and annotations cost nothing at import.
Importing it loads nothing new either (NumPy, PyTensor's variable classes and
:mod:`symopt.step_schedules`, which ``import symopt`` has loaded), so code of one's own
can annotate with them: ``from symopt._typing import Scalar``.

- ``Scalar``: a hyperparameter, a number or a scalar PyTensor variable (a shared variable
  to change it between calls, or any symbolic scalar);
- ``LearningRate``: a ``Scalar``, or an in-graph :class:`symopt.schedules.StepSchedule`
  (for the rules that pass it to :func:`symopt.scale_by_learning_rate`);
- ``LossOrGrads``: a scalar loss, or one gradient per parameter;
- ``Params``: the shared variables to update;
- ``Fuse``: the ``fuse`` argument of every rule;
- ``EpsilonPlacement``, ``Probe``: the choices of Adam's family and of the Hutchinson
  estimators;
- ``StepsFunction``: the function a :class:`symopt.Transform` wraps,
  ``fn(steps, params) -> (new_steps, state_updates)``;
- ``UpdatesLike``: what the wrappers take: the pairs a rule returns, or a mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, overload

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

from symopt.step_schedules import StepSchedule

if TYPE_CHECKING:
    import inspect

    from symopt.transform import ConfiguredRule, Transform
    from symopt.updates import Updates

__all__ = ["EpsilonPlacement", "Fuse", "LearningRate", "LossOrGrads", "Params", "Probe",
           "RegisteredRule", "Scalar", "StateUpdates", "StepsFunction", "UpdateRule",
           "UpdatesLike"]

# (evaluated at import: X | Y of classes and typing's aliases is a union from Python 3.10)
Scalar: TypeAlias = float | int | np.number | np.ndarray | Variable
LearningRate: TypeAlias = Scalar | StepSchedule
LossOrGrads: TypeAlias = Variable | Sequence[Variable]
Params: TypeAlias = Sequence[SharedVariable]
Fuse: TypeAlias = bool | Literal["auto"]
#: Where Adam's family adds epsilon (see :func:`symopt.adam`)
EpsilonPlacement: TypeAlias = Literal["after_correction", "before_correction"]
#: The distribution of the random probes of the Hutchinson estimators (ESGD, Sophia, ...)
Probe: TypeAlias = Literal["normal", "rademacher"]
StateUpdates: TypeAlias = list[tuple[Variable, Variable]]
StepsFunction: TypeAlias = Callable[[list[Variable], list[SharedVariable]],
                                    tuple[list[Variable], StateUpdates]]
UpdatesLike: TypeAlias = Sequence[tuple[Variable, Variable]] | Mapping[Variable, Variable]


class UpdateRule(Protocol):
    """What :func:`symopt.update_rule` makes (``symopt.adam``), as type checkers see it.

    Called with a loss (or gradients) and params it returns the :class:`symopt.Updates`;
    called with neither, a :class:`symopt.ConfiguredRule`. The hyperparameters are the
    ``build`` function's; at run time ``inspect.signature(rule)`` names and annotates
    them, while a type checker takes them as ``Any``.
    """

    __name__: str
    __signature__: inspect.Signature
    build: Callable[..., Transform | StepsFunction]
    needs_loss: bool

    @overload
    def __call__(self, loss_or_grads: None = None, params: None = None,
                 *hyperparameters: Any, fuse: Fuse = False,
                 **named_hyperparameters: Any) -> ConfiguredRule: ...

    # (the loss may be typed None: pytensor.grad's annotations include it; the rule then
    # raises for a missing loss at run time)
    @overload
    def __call__(self, loss_or_grads: LossOrGrads | None, params: Params,
                 *hyperparameters: Any, fuse: Fuse = False,
                 **named_hyperparameters: Any) -> Updates: ...



class RegisteredRule(UpdateRule, Protocol):
    """An :class:`UpdateRule` entered in :data:`symopt.RULES`, with its kind."""

    kind: str
    stochastic: bool
