r"""PRONG, Projected Natural Gradient Descent (Desjardins et al., 2015): whitened layers.

Misra's lecture ends with "Natural Neural Networks": rather than inverting the Fisher,
reparametrise the network so that its Fisher is close to the identity, and let plain SGD
take (nearly) natural-gradient steps. Each dense layer :math:`h_i = f_i(W_i h_{i-1} + b_i)`
becomes

.. math::

    h_i = f_i\big(V_i\, U_{i-1} (h_{i-1} - c_{i-1}) + d_i\big)

with :math:`U_{i-1}` the whitening matrix of the layer's input (the normalised
eigendecomposition of its covariance :math:`\Sigma_{i-1}`, regularised by
:math:`\epsilon`) and :math:`c_{i-1}` its mean. Only :math:`V_i` and :math:`d_i` are
trained, by SGD; every ``T`` steps :math:`U` and :math:`c` are re-estimated from
``N_s`` samples, and :math:`V` and :math:`d` are projected so that the canonical
parameters :math:`W_i = V_i U_{i-1}`, :math:`b_i = d_i - W_i c_{i-1}` do not change:
the network computes the same function before and after (Algorithm 1 of the paper,
lines 6-11).

Here the rows of a mini-batch are the examples (``x @ W``), so a layer computes
``((x - c) @ U) @ V + d`` with ``U`` of shape ``(n_in, n_in)`` and ``V`` of shape
``(n_in, n_out)``, and the canonical parameters are ``W = U @ V``, ``b = d - c @ W``.

>>> import numpy as np, pytensor, pytensor.tensor as pt
>>> from symopt.lab.prong import PRONG, WhitenedMLP
>>> net = WhitenedMLP([3, 4, 2], activation="tanh", output_activation="linear", seed=0,
...                   dtype="float64")
>>> x = pt.dmatrix("x")
>>> f = pytensor.function([x], net.output(x))
>>> data = np.random.default_rng(1).normal(size=(100, 3)) * [1.0, 5.0, 0.1] + 2.0
>>> before = f(data)
>>> prong = PRONG(net, x, every=10, n_samples=100, epsilon=1e-3, seed=0)
>>> prong.reparametrize(data)
>>> bool(np.allclose(f(data), before, rtol=1e-10, atol=1e-12))
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

from symopt.lab.nn import (
    Activation,
    Layer,
    Seed,
    Sequential,
    _dtype,
    _shared,
    get_activation,
    get_initializer,
)

__all__ = ["PRONG", "WhitenedDense", "WhitenedMLP", "whitening"]


def whitening(samples: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The mean :math:`c`, the PCA whitening matrix :math:`U` of ``samples`` (rows), and
    :math:`U^{-1}`.

    With :math:`\Sigma = E \Lambda E^T` the (biased) covariance,
    :math:`U = E (\Lambda + \epsilon I)^{-1/2}` and
    :math:`U^{-1} = (\Lambda + \epsilon I)^{1/2} E^T`, so that the whitened rows
    :math:`(x - c) U` have covariance :math:`\Lambda (\Lambda + \epsilon I)^{-1}`: the
    identity on the directions whose variance is well above :math:`\epsilon`, and damped
    to zero on those below it. In float64.
    """
    samples = np.asarray(samples, dtype=np.float64)
    mean = samples.mean(axis=0)
    centred = samples - mean
    covariance = centred.T @ centred / len(samples)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.maximum(eigenvalues, 0.0)  # rounding can make the smallest negative
    scale = np.sqrt(eigenvalues + epsilon)
    return mean, eigenvectors / scale, scale[:, None] * eigenvectors.T


class WhitenedDense(Layer):
    r"""A dense layer with whitened inputs: :math:`f(((x - c)\, U)\, V + d)`.

    ``V`` (``(n_in, n_out)``) and ``d`` (``(n_out,)``) are the trained parameters
    (``<name>.V``, ``<name>.d``); ``U`` (``(n_in, n_in)``) and ``c`` (``(n_in,)``) are
    estimated, not trained (``<name>.U``, ``<name>.c``, in :attr:`variables` but not in
    :attr:`params`). It starts as a plain dense layer: :math:`U = I`, :math:`c = 0`,
    :math:`V = W`, :math:`d = 0`.

    Parameters
    ----------
    n_in, n_out : int
    activation : str or callable, default "linear"
    init : str or callable, optional
        The initialiser of the canonical weights (see :func:`symopt.lab.nn.get_initializer`).
    name : str, default "whitened"
    seed : int or numpy.random.Generator, optional
    dtype : str, default "float32"
    """

    def __init__(self, n_in: int, n_out: int, activation: str | Callable | None = "linear",
                 init: str | Callable | None = None, name: str = "whitened",
                 seed: Seed = None, dtype: str | None = None):
        super().__init__()
        self.name = name
        self.n_in, self.n_out = int(n_in), int(n_out)
        if self.n_in < 1 or self.n_out < 1:
            raise ValueError(f"{name}: sizes must be positive, got {n_in} -> {n_out}")
        self.activation = get_activation(activation)
        dtype = _dtype(dtype)
        rng = np.random.default_rng(seed)
        W = get_initializer(init, self.activation)((self.n_in, self.n_out), rng)
        self.V = _shared(W, f"{name}.V", dtype)
        self.d = _shared(np.zeros(self.n_out), f"{name}.d", dtype)
        self.U = _shared(np.eye(self.n_in), f"{name}.U", dtype)
        self.c = _shared(np.zeros(self.n_in), f"{name}.c", dtype)

    @property
    def params(self):
        return [self.V, self.d]

    @property
    def weights(self):
        return [self.V]

    @property
    def variables(self):
        return [self.V, self.d, self.U, self.c]

    def output(self, x, training=False) -> TensorVariable:
        x = pt.as_tensor_variable(x)
        if x.dtype != self.V.dtype:
            x = pt.cast(x, self.V.dtype)
        self.last_input = x  # what the re-estimation needs of the latest graph
        z = pt.dot(pt.dot(x - self.c, self.U), self.V) + self.d
        return self.activation(z)

    def canonical(self) -> tuple[np.ndarray, np.ndarray]:
        """The canonical parameters ``(W, b)`` of the same function, in float64:
        ``W = U @ V``, ``b = d - c @ W`` (line 7 of Algorithm 1)."""
        U, V = (np.asarray(v.get_value(), dtype=np.float64) for v in (self.U, self.V))
        c, d = (np.asarray(v.get_value(), dtype=np.float64) for v in (self.c, self.d))
        W = U @ V
        return W, d - c @ W

    def reparametrize(self, inputs: np.ndarray, epsilon: float) -> None:
        r"""Re-estimate :math:`c` and :math:`U` from ``inputs`` and project :math:`V`, :math:`d`.

        Lines 7-10 of Algorithm 1: the canonical :math:`W, b`; the new mean :math:`c` and
        whitening :math:`U` (:func:`whitening`); then :math:`V = U^{-1} W` (with
        :math:`U^{-1} = (\Lambda + \epsilon I)^{1/2} E^T`, no inverse computed) and
        :math:`d = b + c W`, which leave :math:`W` and :math:`b` as they were.
        """
        W, b = self.canonical()
        c, U, U_inverse = whitening(inputs, epsilon)
        V = U_inverse @ W
        dtype = self.V.dtype
        self.U.set_value(U.astype(dtype))
        self.c.set_value(c.astype(dtype))
        self.V.set_value(V.astype(dtype))
        self.d.set_value((b + c @ W).astype(dtype))


class WhitenedMLP(Sequential):
    """A multilayer perceptron of :class:`WhitenedDense` layers, named as :class:`MLP`'s.

    Hidden layers ``hidden`` (or ``hidden1``, ``hidden2``, ...) and the output layer
    ``output``, each whitened (the paper whitens the input of every layer, the images
    included); parameters ``<layer>.V`` and ``<layer>.d``. The initial canonical weights
    are those of ``MLP(sizes, ...)`` with the same seed (the same initialisers and
    streams), so the two start from the same function.

    Parameters
    ----------
    sizes : sequence of int
    activation : str or callable, default "tanh"
    output_activation : str or callable, default "log_softmax"
    init : str or callable, optional
    seed : int, default 0
    dtype : str, default "float32"
    """

    def __init__(self, sizes: Sequence[int], *, activation: str | Callable = "tanh",
                 output_activation: str | Callable = "log_softmax",
                 init: str | Callable | None = None, seed: int = 0, dtype: str | None = None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {sizes}")
        self.sizes = sizes
        seeds = np.random.SeedSequence(seed).spawn(2 * len(sizes))
        activation_fn = get_activation(activation)
        layers: list[Layer] = []
        n_hidden = len(sizes) - 2
        for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
            name = "hidden" if n_hidden == 1 else f"hidden{i + 1}"
            layers.append(WhitenedDense(n_in, n_out, init=get_initializer(init, activation_fn),
                                        name=name, seed=np.random.default_rng(seeds[i]),
                                        dtype=dtype))
            layers.append(Activation(activation_fn, name=f"{name}.activation"))
        layers.append(WhitenedDense(sizes[-2], sizes[-1], init=init or "glorot_normal",
                                    name="output",
                                    seed=np.random.default_rng(seeds[len(sizes) - 2]),
                                    dtype=dtype))
        layers.append(Activation(output_activation, name="output.activation"))
        super().__init__(layers, name="whitened_mlp")

    def logits(self, x, training=False) -> TensorVariable:
        """The output layer's input to its activation."""
        for layer in self.layers[:-1]:
            x = layer.output(x, training)
        return x


class PRONG:
    r"""The reparametrisation half of Algorithm 1: every ``every`` steps, re-whiten.

    Parameters
    ----------
    net : Layer
        A network of :class:`WhitenedDense` layers (:class:`WhitenedMLP`).
    x : TensorVariable
        The symbolic input of the network, to compile the function that gives every
        whitened layer's input (with ``training=False``: no dropout).
    every : int
        :math:`T`, the reparametrisation period, in steps.
    n_samples : int
        :math:`N_s`, the number of training examples the statistics are estimated from.
    epsilon : float
        :math:`\epsilon`, the regularisation of the covariances' eigenvalues.
    seed : int, optional
        Seeds the choice of the samples.

    Attributes
    ----------
    count : int
        How many times the network was reparametrised.
    seconds : float
        The time those reparametrisations took (the amortised cost).
    """

    def __init__(self, net: Layer, x, *, every: int, n_samples: int, epsilon: float,
                 seed: int | None = None):
        self.layers = [layer for layer in _walk(net) if isinstance(layer, WhitenedDense)]
        if not self.layers:
            raise ValueError(f"{net!r} has no WhitenedDense layer to reparametrise")
        if int(every) < 1 or int(n_samples) < 2 or not float(epsilon) > 0:
            raise ValueError(f"PRONG needs every >= 1, n_samples >= 2 and epsilon > 0, got "
                             f"{every!r}, {n_samples!r}, {epsilon!r}")
        self.every, self.n_samples, self.epsilon = int(every), int(n_samples), float(epsilon)
        net.output(x, training=False)
        self._inputs = pytensor.function([x], [layer.last_input for layer in self.layers])
        self._rng = np.random.default_rng(seed)
        self.count, self.seconds = 0, 0.0

    def reparametrize(self, samples: np.ndarray) -> None:
        """Re-estimate every layer's whitening from ``samples`` (lines 6-11)."""
        import time

        started = time.perf_counter()
        # The network's function does not change, so every layer's input can be taken
        # before any layer is reparametrised.
        inputs = self._inputs(samples)
        for layer, h in zip(self.layers, inputs, strict=True):
            layer.reparametrize(h, self.epsilon)
        self.count += 1
        self.seconds += time.perf_counter() - started

    def step(self, t: int, train_x: np.ndarray) -> bool:
        """At ``t % every == 0``, reparametrise from ``n_samples`` rows of ``train_x``
        drawn without replacement; return whether it did."""
        if t % self.every:
            return False
        n = min(self.n_samples, len(train_x))
        self.reparametrize(train_x[self._rng.choice(len(train_x), n, replace=False)])
        return True


def _walk(layer):
    yield layer
    for inner in getattr(layer, "layers", []):
        yield from _walk(inner)
