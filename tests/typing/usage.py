"""How a user's code reads to a type checker: ``mypy`` checks this file (scripts/test.sh).

Not a test pytest runs (it builds graphs and compiles nothing); every line must
type-check, and the annotations say what symopt's public API returns.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

import symopt
from symopt._typing import Scalar

w = pytensor.shared(np.zeros(3), name="w")
b = pytensor.shared(0.0, name="b")
x = pt.vector("x")
# pytensor.shared and its operators are untyped (Any): typed code says what they are
loss: Variable = ((w * x).sum() + b - 1.0) ** 2
params: list[SharedVariable] = [w, b]

# a rule called with a loss and params returns the updates; without, a configured rule
updates: symopt.Updates = symopt.adam(loss, params, learning_rate=1e-3)
from_grads: symopt.Updates = symopt.sgd(pytensor.grad(loss, params), params, 0.1)
# and the checker tells the two apart (the ignores are checked: warn_unused_ignores)
wrong: symopt.ConfiguredRule = symopt.adam(loss, params)  # type: ignore[assignment]
also_wrong: symopt.Updates = symopt.adam(learning_rate=0.1)  # type: ignore[assignment]
opt: symopt.ConfiguredRule = symopt.adam(learning_rate=1e-3)
fused: symopt.Updates = symopt.adam(loss, params, fuse="auto")
again: symopt.Updates = opt(loss, params)
overridden: symopt.ConfiguredRule = opt(beta2=0.99)

# a hyperparameter may be a number or a shared (or symbolic) scalar; a learning rate
# also an in-graph schedule
lr = pytensor.shared(np.float64(0.1), name="lr")
rate: Scalar = lr
symopt.sgd(loss, params, learning_rate=lr)
symopt.sgd(loss, params, learning_rate=symopt.schedules.linear(0.1, 0.0, 100))

# composition: chain gives a transform, which is also a rule
rule: symopt.Transform = symopt.chain(symopt.clip_by_global_norm(5.0), opt)
chained: symopt.Updates = rule(loss, params)
applied: symopt.Updates = symopt.apply(symopt.scale_by_adam(), loss, params)
registered = symopt.RULES["adam"]
kind: str = registered.kind

# the updates read as a mapping too, and go to pytensor.function as they are
expression = updates[w]
step = pytensor.function([x], loss, updates=updates)

# state: the state variables by name; saved and loaded with the updates
names: list[str] = list(symopt.get_state(updates))
symopt.save_state(updates, "checkpoint.npz")
with_momentum: symopt.Updates = symopt.apply_momentum(symopt.sgd(loss, params, 0.1))
guarded: symopt.Updates = symopt.skip_nonfinite(updates)
