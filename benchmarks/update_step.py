"""Worker: the update step alone, every rule, for one framework at one thread count.

Only the update is timed. The gradients are computed once, before timing, and held
where each framework reads them without recomputing anything:

* symopt: a ``pytensor.shared`` gradient per parameter, passed as ``loss_or_grads``
  (a list), so the compiled function has no inputs and its graph is the update alone;
  ``f.trust_input = True`` and the call is ``f()``.
* torch.optim: ``p.grad`` set once to a fixed tensor; the call is ``opt.step()``.
* optax: the gradients are a fixed argument of a ``jax.jit`` function that returns
  ``(new_params, new_state)``, with params and state donated (``donate_argnums``);
  each repeat ends with ``block_until_ready``.
* numpy: a transcription of each rule with ``out=`` arguments into the state arrays and
  two preallocated scratch arrays (no allocation in the loop).

Every framework gets the same float32 values (same seed) and the same hyperparameters.

Usage (run.py does this): ``python update_step.py --framework symopt --mode NUMBA
--sizes 100000 mlp --rules adam sgd --repeats 5``
"""

from __future__ import annotations

import argparse
import gc
import time

import _common

THREADS = _common.pin_threads()
_common.quiet_warnings()

import numpy as np  # noqa: E402


def state_arrays(rule):
    """Per-parameter state arrays ``rule`` keeps (its rulebook row): a step reads p, g and
    every state array, and writes p and every state array, so it moves (3 + 2k) * n * 4
    bytes at least. Factored or per-tensor state (Adafactor's, NovoGrad's) is not counted:
    it is a row, a column or a scalar per tensor."""
    from symopt.lab.rulebook import ROWS

    row = ROWS[rule]
    return len([role for role in row.roles if role not in row.unshaped])


def hyperparameters(rule):
    """The rule's hyperparameters at their defaults, with the benchmarks' learning rate
    (Rprop's initial step stays its own default)."""
    import symopt

    return symopt.RULES[rule](**({} if rule == "rprop" else {"learning_rate": LR})
                              ).hyperparameters


LR = 1e-3
MLP_SHAPES = [(784, 600), (600,), (600, 10), (10,)]


def shapes_of(size: str):
    return MLP_SHAPES if size == "mlp" else [(int(float(size)),)]


def initial_values(shapes, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    return params, grads


# --------------------------------------------------------------------------- symopt

def build_symopt(rule, shapes, args):
    import pytensor

    import symopt

    mode = pytensor.compile.mode.get_mode(args.mode)
    if args.exclude:
        mode = mode.excluding(*args.exclude)
    p0, g0 = initial_values(shapes)
    shape = (lambda v: v.shape) if args.static_shapes else (lambda v: None)
    params = [pytensor.shared(v, name=f"p{i}", shape=shape(v)) for i, v in enumerate(p0)]
    grads = [pytensor.shared(v, name=f"g{i}", shape=shape(v)) for i, v in enumerate(g0)]
    kwargs = {} if rule == "rprop" else {"learning_rate": LR}
    if args.fuse and not symopt.RULES[rule](**kwargs).elementwise:
        return None, None, {"skipped": f"{rule} is not elementwise: it has no fused path"}
    updates = symopt.RULES[rule](grads, params, **kwargs, fuse=args.fuse)
    t0 = time.perf_counter()
    f = pytensor.function([], [], updates=updates, mode=mode)
    f.trust_input = True
    f()
    compile_s = time.perf_counter() - t0
    return f, None, {"compile_s": compile_s, "graph": graph_summary(f, shapes)}


def graph_summary(f, shapes):
    """How the compiled update looks: loops over parameter-sized arrays, in place or not."""
    from pytensor.tensor.elemwise import Elemwise

    nodes = f.maker.fgraph.toposort()
    big = [n for n in nodes
           if any(getattr(o.type, "ndim", 0) > 0 and o.type.shape[0] != 1 for o in n.outputs)]
    f64 = sorted({str(v.type) for v in f.maker.fgraph.variables
                  if getattr(v.type, "dtype", "") == "float64"})
    return {
        "param_sized_nodes": len(big),
        "elemwise_loops": sum(isinstance(n.op, Elemwise) for n in big),
        "all_inplace": all(getattr(n.op, "destroy_map", None) for n in big),
        "ops": sorted({type(n.op).__name__ if not isinstance(n.op, Elemwise)
                       else type(n.op.scalar_op).__name__ for n in big}),
        "float64": f64,
        "n_params": len(shapes),
    }


# --------------------------------------------------------------------------- torch

def build_torch(rule, shapes, args):
    import inspect

    import torch

    from symopt.lab.rulebook import peer

    torch.set_num_threads(THREADS)
    found = peer("torch", rule, torch, hyperparameters(rule), similar=True)
    if found is None:
        return None, None, {"skipped": f"torch.optim has no {rule}"}
    cls, kw = found
    name = cls.__name__
    if args.variant == "fused":
        if "fused" not in inspect.signature(cls).parameters:
            return None, None, {"skipped": f"torch.optim.{name} has no fused implementation"}
        kw["fused"] = True
    elif "foreach" in inspect.signature(cls).parameters:
        kw["foreach"] = args.variant == "foreach"
    elif args.variant == "foreach":
        return None, None, {"skipped": f"torch.optim.{name} has no foreach implementation"}
    p0, g0 = initial_values(shapes)
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in p0]
    for p, g in zip(params, g0):
        p.grad = torch.from_numpy(g.copy())
    if rule == "muon":  # torch's Muon takes the matrices; the rest to AdamW, as symopt does
        return _torch_muon(torch, cls, kw, params)
    try:
        opt = cls(params, **kw)
        opt.step()
    except (RuntimeError, ValueError) as err:
        return None, None, {"skipped": f"{type(err).__name__}: {err}"[:200]}
    return opt.step, None, {"optimizer": f"torch.optim.{name}({kw})"}


def _torch_muon(torch, cls, kw, params):
    """``torch.optim.Muon`` on the matrices and ``torch.optim.AdamW`` (symopt's ``adam_*``
    hyperparameters) on the other parameters: what ``symopt.muon`` computes for them all."""
    h = hyperparameters("muon")
    matrices = [p for p in params if p.ndim == 2]
    others = [p for p in params if p.ndim != 2]
    adamw = {"lr": h["adam_learning_rate"] or h["learning_rate"],
             "betas": (h["adam_beta1"], h["adam_beta2"]), "eps": h["adam_epsilon"],
             "weight_decay": h["adam_weight_decay"]}
    if "foreach" in kw:
        adamw["foreach"] = kw["foreach"]
    opts = ([cls(matrices, **kw)] if matrices else []) + (
        [torch.optim.AdamW(others, **adamw)] if others else [])

    def step():
        for opt in opts:
            opt.step()

    step()
    return step, None, {"optimizer": f"torch.optim.Muon({kw}) on the matrices, "
                                     f"torch.optim.AdamW({adamw}) on the rest"}


# --------------------------------------------------------------------------- optax

def optax_rule(rule):
    """optax's form of ``rule`` (the same rule, or one of the same cost), or None."""
    import optax

    from symopt.lab.rulebook import peer

    return peer("optax", rule, optax, hyperparameters(rule), similar=True)


def build_optax(rule, shapes, args):
    import jax.numpy as jnp

    transformation = optax_rule(rule)
    if transformation is None:
        return None, None, {"skipped": f"optax has no {rule}"}
    p0, g0 = initial_values(shapes)
    call, sync, compile_s = _common.optax_stepper(
        transformation, [jnp.asarray(v) for v in p0], [jnp.asarray(v) for v in g0])
    return call, sync, {"compile_s": compile_s}


# --------------------------------------------------------------------------- numpy

def numpy_step(rule, p, g, s, tmp, tmp2, mask1, mask2, t):
    """One in-place step of ``rule`` on one parameter; ``s`` holds its state arrays."""
    lr, b1, b2, eps = np.float32(LR), np.float32(0.9), np.float32(0.999), np.float32(1e-8)
    if rule == "sgd":
        np.multiply(g, lr, out=tmp)
        p -= tmp
    elif rule in ("momentum", "nesterov_momentum"):
        (v,) = s
        np.multiply(g, lr, out=tmp)
        v *= np.float32(0.9)
        v -= tmp
        if rule == "momentum":
            p += v
        else:
            p -= tmp
            np.multiply(v, np.float32(0.9), out=tmp)
            p += tmp
    elif rule == "adagrad":
        (r,) = s
        np.square(g, out=tmp)
        r += tmp
        np.add(r, np.float32(1e-6), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp
    elif rule == "rmsprop":
        (r,) = s
        r *= np.float32(0.9)
        np.square(g, out=tmp)
        tmp *= np.float32(0.1)
        r += tmp
        np.add(r, np.float32(1e-6), out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp
    elif rule == "adadelta":
        r, d = s
        rho = np.float32(0.95)
        r *= rho
        np.square(g, out=tmp)
        tmp *= np.float32(0.05)
        r += tmp
        np.add(d, np.float32(1e-6), out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp *= g
        np.add(r, np.float32(1e-6), out=tmp2)
        np.sqrt(tmp2, out=tmp2)
        tmp /= tmp2
        d *= rho
        np.square(tmp, out=tmp2)
        tmp2 *= np.float32(0.05)
        d += tmp2
        tmp *= lr
        p -= tmp
    elif rule == "rprop":
        prev, delta = s
        if t == 1:
            delta.fill(np.float32(0.01))
        np.multiply(g, prev, out=tmp)
        np.greater(tmp, 0, out=mask1)
        np.less(tmp, 0, out=mask2)
        np.multiply(delta, np.float32(1.2), out=delta, where=mask1)
        np.multiply(delta, np.float32(0.5), out=delta, where=mask2)
        np.clip(delta, np.float32(1e-6), np.float32(50.0), out=delta)
        np.copyto(prev, g)
        np.copyto(prev, np.float32(0), where=mask2)
        np.sign(prev, out=tmp)
        tmp *= delta
        p -= tmp
    else:  # the Adam family: m, v (, v_max)
        m, v = s[0], s[1]
        c1 = np.float32(1 - 0.9**t)
        c2 = np.float32(1 - 0.999**t)
        m *= b1
        np.multiply(g, np.float32(0.1), out=tmp)
        m += tmp
        if rule == "adamax":
            v *= b2
            np.abs(g, out=tmp)
            np.maximum(v, tmp, out=v)
            np.add(v, eps, out=tmp)
            np.divide(m, tmp, out=tmp)
            tmp *= lr / c1
            p -= tmp
            return
        v *= b2
        np.square(g, out=tmp)
        tmp *= np.float32(0.001)
        v += tmp
        second = v
        if rule == "amsgrad":
            np.maximum(s[2], v, out=s[2])
            second = s[2]
        np.divide(second, c2, out=tmp)
        np.sqrt(tmp, out=tmp)
        tmp += eps
        if rule == "nadam":
            np.multiply(m, np.float32(0.9 / (1 - 0.9 ** (t + 1))), out=tmp2)
            tmp2 /= tmp
            np.divide(g, tmp, out=tmp)
            tmp *= np.float32(0.1) / c1
            tmp += tmp2
            tmp *= lr
            p -= tmp
            return
        np.divide(m, tmp, out=tmp)
        if rule == "adamw":
            tmp *= np.float32(1) / c1
            np.multiply(p, np.float32(1e-2), out=tmp2)
            tmp += tmp2
            tmp *= lr
        else:
            tmp *= lr / c1
        p -= tmp


def default_rules():
    """Every rule that steps from gradients: the ones that need the loss (sam, sophia,
    adahessian) evaluate it again, which a held gradient cannot time (``probe_cost.py``
    times their whole step)."""
    import symopt

    return [name for name, rule in symopt.RULES.items() if not rule.needs_loss]


#: the rules :func:`numpy_step` has a hand-written in-place kernel for
NUMPY_KERNELS = {"sgd", "momentum", "nesterov_momentum", "adagrad", "rmsprop", "adadelta",
                 "rprop", "adam", "adamax", "amsgrad", "nadam", "adamw"}


def build_numpy(rule, shapes, args):
    if rule not in NUMPY_KERNELS:
        return None, None, {"skipped": f"no NumPy kernel written for {rule}"}
    p0, g0 = initial_values(shapes)
    k = state_arrays(rule)
    work = []
    for p, g in zip(p0, g0):
        work.append((p, g, [np.zeros_like(p) for _ in range(k)], np.empty_like(p),
                     np.empty_like(p), np.empty(p.shape, bool), np.empty(p.shape, bool)))
    count = [0]

    def call():
        count[0] += 1
        for p, g, s, tmp, tmp2, m1, m2 in work:
            numpy_step(rule, p, g, s, tmp, tmp2, m1, m2, count[0])

    return call, None, {}


BUILDERS = {"symopt": build_symopt, "torch": build_torch, "optax": build_optax,
            "numpy": build_numpy}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=sorted(BUILDERS), required=True)
    parser.add_argument("--config", required=True, help="name of this configuration")
    parser.add_argument("--mode", default="NUMBA", help="symopt: PyTensor mode")
    parser.add_argument("--exclude", nargs="*", default=[], help="symopt: rewrite tags off")
    parser.add_argument("--c-float32-literals", action="store_true",
                        help="symopt, C: prototype patch printing float32 constants as 1.0f")
    parser.add_argument("--static-shapes", action="store_true",
                        help="symopt: shared variables with static shapes (shape=value.shape)")
    parser.add_argument("--fuse", action="store_true",
                        help="symopt: the fused multi-tensor path (fuse=True, symopt.fused)")
    parser.add_argument("--variant", default="forloop", help="torch: forloop|foreach|fused")
    parser.add_argument("--sizes", nargs="+", default=["1e5", "1e6", "1e7", "mlp"])
    parser.add_argument("--rules", nargs="+", default=None, help="default: symopt.RULES")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.1)
    args = parser.parse_args()
    if args.c_float32_literals:
        _common.patch_c_float32_literals()
    build = BUILDERS[args.framework]
    for size in args.sizes:
        shapes = shapes_of(size)
        n = sum(int(np.prod(s)) for s in shapes)
        for rule in args.rules or default_rules():
            step, sync, info = build(rule, shapes, args)
            result = {"bench": "update", "config": args.config, "framework": args.framework,
                      "threads": THREADS, "rule": rule, "size": size, "n": n,
                      "n_tensors": len(shapes), "state_arrays": state_arrays(rule),
                      "bytes": (3 + 2 * state_arrays(rule)) * n * 4, **info}
            if step is not None:
                result.update(_common.time_calls(step, repeats=args.repeats,
                                                 min_time=args.min_time, sync=sync))
            _common.emit(result)
            del step, sync
            gc.collect()
    _common.emit({"bench": "update-pools", "config": args.config, "threads": THREADS,
                  "pools": _common.thread_pools()})


if __name__ == "__main__":
    main()
