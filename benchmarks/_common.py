"""What every benchmark worker shares: thread pinning, timing, and reporting.

A worker is one process that measures one configuration (one framework, one thread
count). The driver (``run.py``) starts it with the thread environment already set
(:func:`thread_env`); the worker calls :func:`pin_threads` before importing anything
heavy, measures, and prints its results as one JSON line tagged ``BENCH_RESULT``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time

RESULT_TAG = "BENCH_RESULT "


# --------------------------------------------------------------------------- threads

def thread_env(threads: int, base=None) -> dict:
    """The environment of a worker that may use ``threads`` threads.

    Every thread pool we know of is capped: OpenMP (PyTensor's C Elemwise, torch's
    intra-op pool), OpenBLAS (NumPy's, SciPy's and so Numba's dot, and the Debian one the
    C backend links to), MKL, Numba's parallel pool and XLA's Eigen pool.
    """
    env = dict(os.environ if base is None else base)
    n = str(threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS", "BENCH_THREADS"):
        env[var] = n
    xla = env.get("XLA_FLAGS", "")
    if threads == 1:
        xla += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["XLA_FLAGS"] = xla.strip()
    return env


def pin_threads() -> int:
    """Pin this process to the first ``BENCH_THREADS`` allowed cores; return the count.

    The affinity mask is what makes "1 thread" true for every framework alike (XLA's
    thread flags are advisory; a pool that ignores its variable still gets one core).
    """
    threads = int(os.environ.get("BENCH_THREADS", "0") or 0)
    allowed = sorted(os.sched_getaffinity(0))
    if 0 < threads < len(allowed):
        os.sched_setaffinity(0, allowed[:threads])
    return threads or len(allowed)


def thread_pools() -> list:
    """The thread pools loaded in this process and their sizes (threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [
        {"api": d.get("internal_api"), "threads": d.get("num_threads"),
         "lib": os.path.basename(d.get("filepath", ""))}
        for d in threadpoolctl.threadpool_info()
    ]


# --------------------------------------------------------------------------- timing

def time_calls(fn, *, repeats: int, min_time: float = 0.05, warmup: int = 3,
               sync=None, max_number: int = 100_000) -> dict:
    """Time ``fn()``: ``repeats`` batches of ``number`` calls, per-call seconds each.

    ``number`` is chosen so that one batch takes at least ``min_time`` (so timer
    resolution and loop overhead do not matter). ``sync()``, if given, is called at the
    end of each batch, inside the timed region (JAX's ``block_until_ready``).
    """
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if sync:
            sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or number >= max_number:
            break
        number = min(max_number, max(number * 2, int(number * min_time / max(elapsed, 1e-9) * 1.2)))
    per_call, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(number):
            fn()
        if sync:
            sync()
        per_call.append((time.perf_counter() - t0) / number)
        cpu.append((time.process_time() - c0) / number)
    return summary(per_call, cpu, number=number)


def summary(times, cpu_times=None, **extra) -> dict:
    """Wall-clock ``min``/``median`` and, if given, the same of the process's CPU time.

    CPU time (all threads of this process) leaves out the time this process waited for a
    core, so on a loaded machine it is the better estimate of a 1-thread run's wall time
    on an idle one. It is not comparable with wall time for multi-threaded runs.
    """
    out = {"min": min(times), "median": statistics.median(times), "times": list(times)}
    if cpu_times:
        out.update(cpu_min=min(cpu_times), cpu_median=statistics.median(cpu_times),
                   cpu_times=list(cpu_times))
    return {**out, **extra}


# --------------------------------------------------------------------------- reporting

def cpu_with_children() -> float:
    """CPU seconds of this process and of its finished children (gcc, for the C backend)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def peak_rss_mib() -> float:
    """This process's peak resident set size (``ru_maxrss``), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """This process's current resident set size, in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> dict:
    """Where and under what load the numbers were taken."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def versions() -> dict:
    out = {}
    for name in ("numpy", "pytensor", "numba", "torch", "jax", "jaxlib", "optax", "symopt"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


def emit(payload: dict) -> None:
    """Print one result line for the driver."""
    payload.setdefault("versions", versions())
    payload.setdefault("loadavg", os.getloadavg())
    print(RESULT_TAG + json.dumps(payload), flush=True)


def optax_stepper(tx, params, grads):
    """One jitted optax step over ``params`` (donated buffers), called once.

    Returns ``(call, sync, first_s)``: ``call()`` takes a step in place of the carried
    parameters and state, ``sync()`` waits for it (JAX dispatches asynchronously), and
    ``first_s`` is the first call's time, tracing and XLA's compile included.
    """
    import jax
    import optax

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    # a copy of the state: some keep the parameters themselves (Prodigy's initial point),
    # and a buffer cannot be donated twice
    state = jax.tree_util.tree_map(lambda x: x.copy() if hasattr(x, "copy") else x,
                                   tx.init(params))
    carry = [params, state]

    def call():
        carry[0], carry[1] = step(carry[0], carry[1], grads)

    def sync():
        jax.block_until_ready(carry[0])

    t0 = time.perf_counter()
    call()
    sync()
    return call, sync, time.perf_counter() - t0


def parse_results(stdout: str) -> list:
    return [json.loads(line[len(RESULT_TAG):]) for line in stdout.splitlines()
            if line.startswith(RESULT_TAG)]


def save_run(out, meta: dict, results: list, report) -> None:
    """A driver's run as ``out``.json (meta and results) and ``out``.md (``report(meta,
    results)``, also printed)."""
    from pathlib import Path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results},
                                                   indent=1))
    out.with_suffix(".md").write_text(report(meta, results))
    print(out.with_suffix(".md").read_text())


def patch_c_float32_literals() -> None:
    """Prototype of a PyTensor change: print float32 constants as float literals in C.

    PyTensor's C code writes a float32 constant as ``0.999``, a C ``double``, so
    ``0.999 * x`` with a float32 ``x`` is computed in double precision and converted back;
    with this patch it is ``0.9990000128746033f``. The value is the same float32.
    """
    import numpy as np
    from pytensor.scalar.basic import ScalarType

    original = ScalarType.c_literal
    if getattr(original, "_bench_patched", False):
        return

    def c_literal(self, data):
        out = original(self, data)
        if self.dtype != "float32" or out is None or out in ("INFINITY", "-INFINITY", "NAN"):
            return out
        return repr(float(np.float32(data))) + "f"

    c_literal._bench_patched = True
    ScalarType.c_literal = c_literal


def quiet_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", message=".*BLAS.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
