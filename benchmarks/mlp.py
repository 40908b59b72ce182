"""Worker: end-to-end training of a 784-600-10 MLP, batch 100, float32, in one framework.

The network is ``softmax(relu(X W1 + b1) W2 + b2)`` with the mean cross-entropy of
integer labels, the same initial weights (Glorot-uniform, seed 0) in every framework.
The data are 60000 synthetic MNIST-shaped samples (uniform pixels in [0, 1), random
labels; no data set can be downloaded here, and the values do not change the time);
they are cut into 600 batches of 100 before timing, in each framework's own array
type, so an epoch is 600 calls of the training step and nothing else.

Measured, in this one process:

* ``import_s``: importing the framework (and symopt);
* ``build_s`` (symopt): building the graph, its gradient and the updates;
* ``compile_s``: ``pytensor.function`` plus the first call (Numba compiles lazily on the
  first call), JAX's first call of the jitted step, torch's first step;
* ``epochs``: the wall time of each timed epoch (600 steps; JAX blocks at the end of
  the epoch only); ``--steps`` fewer than 600 times that many steps and scales to an
  epoch (marked ``extrapolated``);
* ``rss_mib``: resident memory after import, after the data are made, after compiling,
  and at the end; ``peak_rss_mib`` is ``ru_maxrss`` of the process.

Usage: ``python mlp.py --framework symopt --mode NUMBA --rule adam --epochs 3``.
"""

from __future__ import annotations

import argparse
import time

import _common

THREADS = _common.pin_threads()
_common.quiet_warnings()
T_START = time.perf_counter()

import numpy as np  # noqa: E402

SIZES = (784, 600, 10)
BATCH = 100
N_TRAIN = 60000
HYPER = {"momentum": {"learning_rate": 0.01, "momentum": 0.9},
         "adam": {"learning_rate": 1e-3}}


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((N_TRAIN, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], N_TRAIN).astype(np.int64)
    return X, y


def init_weights(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        out.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        out.append(np.zeros(fan_out, np.float32))
    return out  # W1 (784, 600), b1, W2 (600, 10), b2


def batches(X, y, steps):
    return [(X[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(steps)]


# --------------------------------------------------------------------------- symopt

def float32_accumulators():
    """A rewrite giving float32 sums float32 accumulators (PyTensor's default: float64)."""
    from pytensor.graph.rewriting.basic import in2out, node_rewriter
    from pytensor.tensor.math import Sum

    @node_rewriter([Sum])
    def sum_acc_float32(fgraph, node):
        op = node.op
        if node.inputs[0].dtype == "float32" and op.acc_dtype == "float64":
            return [Sum(axis=op.axis, dtype=op.dtype, acc_dtype="float32")(node.inputs[0])]
        return None

    return in2out(sum_acc_float32, name="sum_acc_float32")


def setup_symopt(args):
    t0 = time.perf_counter()
    import pytensor
    import pytensor.tensor as pt

    import symopt
    import_s = time.perf_counter() - t0

    def build():
        t0 = time.perf_counter()
        W1, b1, W2, b2 = (pytensor.shared(v, name=n)
                          for v, n in zip(init_weights(), ("W1", "b1", "W2", "b2")))
        shape = (BATCH,) if args.static_shapes else (None,)
        X = pt.tensor("X", dtype="float32", shape=shape + (SIZES[0],))
        y = pt.tensor("y", dtype="int64", shape=shape)
        hidden = pt.maximum(X @ W1 + b1, 0)
        logits = hidden @ W2 + b2
        if args.loss == "onehot":  # no LogSoftmax / advanced indexing: C linker compiles it
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - pt.log(pt.exp(shifted).sum(axis=1, keepdims=True))
            loss = -(pt.eq(y[:, None], pt.arange(SIZES[-1])) * log_p).sum(axis=1).mean()
        else:
            log_p = pt.special.log_softmax(logits, axis=1)
            loss = -log_p[pt.arange(y.shape[0]), y].mean()
        params = [W1, b1, W2, b2]
        if args.no_updates:  # the gradients as outputs: the graph without the rule
            loss = [loss, *pytensor.grad(loss, params)]
            updates = []
        else:
            updates = symopt.RULES[args.rule](loss, params, **HYPER[args.rule],
                                              fuse=args.fuse)
        build_s = time.perf_counter() - t0
        mode = pytensor.compile.mode.get_mode(args.mode)
        if args.exclude:
            mode = mode.excluding(*args.exclude)
        if args.float32_acc:
            mode = mode.register((float32_accumulators(), 0.5))
        return X, y, loss, updates, mode, build_s

    X, y, loss, updates, mode, build_s = build()
    c0, t0 = _common.cpu_with_children(), time.perf_counter()
    f = pytensor.function([X, y], loss, updates=updates, mode=mode)
    function_s = time.perf_counter() - t0
    f.trust_input = True

    info = {"import_s": import_s, "build_s": build_s, "function_s": function_s,
            "function_cpu_s": _common.cpu_with_children() - c0,
            "float64": sorted({str(v.type) for v in f.maker.fgraph.variables
                               if getattr(v.type, "dtype", "") == "float64"}),
            "float64_acc": sum(getattr(n.op, "acc_dtype", None) == "float64"
                               for n in f.maker.fgraph.apply_nodes),
            "n_nodes": len(f.maker.fgraph.apply_nodes),
            "products": sum("Dot" in type(n.op).__name__ or "Gemm" in type(n.op).__name__
                            for n in f.maker.fgraph.apply_nodes)}
    if args.recompile:  # a second, identical graph in the same process: in-memory caches
        X2, y2, loss2, updates2, mode2, _ = build()
        t0 = time.perf_counter()
        f2 = pytensor.function([X2, y2], loss2, updates=updates2, mode=mode2)
        info["recompile_function_s"] = time.perf_counter() - t0
        info["_second"] = f2
    if args.dprint:
        pytensor.dprint(f, print_type=True)

    def prepare(X_np, y_np, steps):
        return batches(X_np, y_np, steps)

    def step(batch):
        return f(batch[0], batch[1])

    return prepare, step, None, info


# --------------------------------------------------------------------------- torch

def setup_torch(args):
    t0 = time.perf_counter()
    import torch
    import torch.nn.functional as F
    import_s = time.perf_counter() - t0
    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    W1, b1, W2, b2 = init_weights()
    model = torch.nn.Sequential(torch.nn.Linear(*SIZES[:2]), torch.nn.ReLU(),
                                torch.nn.Linear(*SIZES[1:]))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(W1.T.copy()))
        model[0].bias.copy_(torch.from_numpy(b1))
        model[2].weight.copy_(torch.from_numpy(W2.T.copy()))
        model[2].bias.copy_(torch.from_numpy(b2))
    hyper = HYPER[args.rule]
    kw = {"lr": hyper["learning_rate"]}
    if args.variant == "fused":
        kw["fused"] = True
    elif args.variant == "foreach":
        kw["foreach"] = True
    else:
        kw["foreach"] = False
    if args.rule == "momentum":
        opt = torch.optim.SGD(model.parameters(), momentum=hyper["momentum"], **kw)
    else:
        opt = torch.optim.Adam(model.parameters(), **kw)

    def prepare(X_np, y_np, steps):
        X_t, y_t = torch.from_numpy(X_np), torch.from_numpy(y_np)
        return batches(X_t, y_t, steps)

    def step(batch):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return loss.detach()

    return prepare, step, None, {"import_s": import_s, "optimizer": repr(type(opt).__name__),
                                 "optimizer_kw": kw}


# --------------------------------------------------------------------------- jax

def setup_jax(args):
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import optax
    import_s = time.perf_counter() - t0
    hyper = HYPER[args.rule]
    if args.rule == "momentum":
        tx = optax.sgd(hyper["learning_rate"], momentum=hyper["momentum"])
    else:
        tx = optax.adam(hyper["learning_rate"])
    params = [jnp.asarray(v) for v in init_weights()]

    def loss_fn(params, X, y):
        W1, b1, W2, b2 = params
        logits = jnp.maximum(X @ W1 + b1, 0) @ W2 + b2
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def train_step(params, state, X_all, y_all, i):
        X = jax.lax.dynamic_slice_in_dim(X_all, i * BATCH, BATCH)
        y = jax.lax.dynamic_slice_in_dim(y_all, i * BATCH, BATCH)
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    train_step = jax.jit(train_step, donate_argnums=(0, 1))
    carry = [params, tx.init(params)]

    def prepare(X_np, y_np, steps):
        # The whole training set on the device once; each step slices its batch inside
        # the jitted function (no transfer, no extra copy of the data per batch).
        X_all, y_all = jax.device_put(X_np), jax.device_put(y_np)
        return [(X_all, y_all, jax.device_put(np.int32(i))) for i in range(steps)]

    def step(batch):
        carry[0], carry[1], loss = train_step(carry[0], carry[1], *batch)
        return loss

    def sync():
        jax.block_until_ready(carry[0])

    return prepare, step, sync, {"import_s": import_s}


SETUPS = {"symopt": setup_symopt, "torch": setup_torch, "jax": setup_jax}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=sorted(SETUPS), required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--rule", choices=sorted(HYPER), required=True)
    parser.add_argument("--mode", default="NUMBA", help="symopt: PyTensor mode")
    parser.add_argument("--exclude", nargs="*", default=[], help="symopt: rewrite tags off")
    parser.add_argument("--c-float32-literals", action="store_true",
                        help="symopt, C: prototype patch printing float32 constants as 1.0f")
    parser.add_argument("--static-shapes", action="store_true", help="symopt: batch shape static")
    parser.add_argument("--float32-acc", action="store_true",
                        help="symopt: float32 accumulators in sums")
    parser.add_argument("--loss", choices=["indexed", "onehot"], default="indexed")
    parser.add_argument("--fuse", action="store_true",
                        help="symopt: the fused update (fuse=True, symopt.fused)")
    parser.add_argument("--no-updates", action="store_true",
                        help="symopt: compile the loss and its gradients, no rule (the "
                             "compile time that is not the rule's)")
    parser.add_argument("--variant", default="forloop", help="torch: forloop|foreach|fused")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs")
    parser.add_argument("--steps", type=int, default=N_TRAIN // BATCH, help="steps per epoch")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    parser.add_argument("--compile-only", action="store_true")
    parser.add_argument("--recompile", action="store_true",
                        help="symopt: also time compiling the same graph again in-process")
    parser.add_argument("--dprint", action="store_true")
    args = parser.parse_args()
    if args.c_float32_literals:
        _common.patch_c_float32_literals()

    rss = {"start": _common.rss_mib()}
    prepare, step, sync, info = SETUPS[args.framework](args)
    rss["imported_and_built"] = _common.rss_mib()

    X_np, y_np = make_data()
    data = prepare(X_np, y_np, max(args.steps, 1))
    del X_np, y_np
    rss["data"] = _common.rss_mib()

    c0, t0 = _common.cpu_with_children(), time.perf_counter()
    step(data[0])
    if sync:
        sync()
    first_call_s = time.perf_counter() - t0
    info["first_call_cpu_s"] = _common.cpu_with_children() - c0
    t0 = time.perf_counter()
    step(data[0])
    if sync:
        sync()
    second_call_s = time.perf_counter() - t0
    info["first_call_s"] = first_call_s
    info["second_call_s"] = second_call_s
    info["compile_s"] = info.get("function_s", 0.0) + first_call_s - second_call_s
    info["compile_cpu_s"] = info.get("function_cpu_s", 0.0) + info["first_call_cpu_s"]
    info["process_cpu_s"] = _common.cpu_with_children()
    info.pop("_second", None)
    rss["compiled"] = _common.rss_mib()
    result = {"bench": "mlp", "config": args.config, "framework": args.framework,
              "rule": args.rule, "threads": THREADS, "process_s": time.perf_counter() - T_START,
              **info}

    if not args.compile_only:
        for i in range(args.warmup):
            step(data[i % len(data)])
        if sync:
            sync()
        epochs, cpu = [], []
        scale = (N_TRAIN // BATCH) / len(data)
        for _ in range(args.epochs):
            c0, t0 = time.process_time(), time.perf_counter()
            for batch in data:
                step(batch)
            if sync:
                sync()
            epochs.append((time.perf_counter() - t0) * scale)
            cpu.append((time.process_time() - c0) * scale)
        result.update(_common.summary(epochs, cpu), steps_timed=len(data),
                      extrapolated=len(data) != N_TRAIN // BATCH)
        result["step_min"] = result["min"] / (N_TRAIN // BATCH)
        result["step_median"] = result["median"] / (N_TRAIN // BATCH)
        loss = step(data[0])
        result["final_loss"] = float(np.asarray(loss))
    rss["end"] = _common.rss_mib()
    result["rss_mib"] = rss
    result["peak_rss_mib"] = _common.peak_rss_mib()
    result["pools"] = _common.thread_pools()
    _common.emit(result)


if __name__ == "__main__":
    main()
