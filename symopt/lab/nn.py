r"""Small neural-network building blocks for the examples: the slides' layers and losses.

Layers hold their parameters as shared variables named ``<layer>.<role>`` (``hidden.W``,
``hidden.b``), in ``float32`` by default. Every layer has

- ``params``: the shared variables to train (pass them to an update rule);
- ``weights``: the subset to regularise (``l1``/``l2`` penalties, max-norm), never biases;
- ``output(x, training=False)``: the symbolic output; ``training`` switches dropout and
  batch normalisation between their training and inference forms;
- ``extra_updates``: ``(shared, expression)`` pairs to add to the *training* function,
  like TensorFlow's ``UPDATE_OPS``: batch normalisation's running statistics and dropout's
  random-generator state. They come from the latest call of ``output`` with
  ``training`` true (or symbolic).

``training`` is a Python bool (build one graph for training and one for inference, the
usual way) or a symbolic boolean scalar (one graph, the slides'
``tf.placeholder_with_default``).

>>> import numpy as np, pytensor, pytensor.tensor as pt, symopt
>>> from symopt.lab import nn
>>> net = nn.MLP([4, 8, 3], activation="relu", seed=0)
>>> [p.name for p in net.params], [w.name for w in net.weights]
(['hidden.W', 'hidden.b', 'output.W', 'output.b'], ['hidden.W', 'output.W'])
>>> x, y = pt.matrix("x", dtype="float32"), pt.lvector("y")
>>> loss = nn.categorical_crossentropy_from_log_probs(net.output(x, training=True), y)
>>> step = pytensor.function([x, y], loss, updates=symopt.sgd(loss, net.params, 0.5)
...                          + net.extra_updates)
>>> xs, ys = np.eye(3, 4, dtype="float32"), np.array([0, 1, 2])
>>> losses = [float(step(xs, ys)) for _ in range(50)]
>>> losses[-1] < 0.1 * losses[0]
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.raise_op import CheckAndRaise
from pytensor.tensor.elemwise import Elemwise
from pytensor.tensor.special import LogSoftmax, Softmax
from pytensor.tensor.special import log_softmax as _log_softmax
from pytensor.tensor.special import softmax as _softmax
from pytensor.tensor.variable import TensorVariable

from symopt._checks import as_scalar, like_param

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "MLP",
    "Activation",
    "BatchNorm",
    "Dense",
    "Dropout",
    "Layer",
    "PReLU",
    "RReLU",
    "Sequential",
    "accuracy",
    "binary_crossentropy",
    "binary_crossentropy_with_logits",
    "categorical_crossentropy",
    "categorical_crossentropy_from_log_probs",
    "elu",
    "get_activation",
    "get_initializer",
    "glorot_normal",
    "glorot_relu_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "kfac_layers",
    "leaky_relu",
    "linear",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

Seed = int | np.random.Generator | None

# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------


def linear(x: TensorVariable) -> TensorVariable:
    """The identity, for output layers that return logits."""
    return x


def sigmoid(x: TensorVariable) -> TensorVariable:
    r"""The logistic function :math:`1 / (1 + e^{-x})`."""
    return pt.sigmoid(x)


def tanh(x: TensorVariable) -> TensorVariable:
    """The hyperbolic tangent."""
    return pt.tanh(x)


def relu(x: TensorVariable) -> TensorVariable:
    r""":math:`\mathrm{ReLU}(x) = \max(0, x)`."""
    return pt.maximum(x, as_scalar(0, x.dtype))


def leaky_relu(x: TensorVariable, alpha: float = 0.01) -> TensorVariable:
    r"""The slides' leaky ReLU, :math:`\max(\alpha x, x)` for :math:`0 \le \alpha \le 1`.

    Written as ``x if x > 0 else alpha * x``, which is the same for such :math:`\alpha`.
    """
    return pt.switch(x > 0, x, as_scalar(alpha, x.dtype) * x)


def elu(x: TensorVariable, alpha: float = 1.0) -> TensorVariable:
    r"""The slides' ELU: :math:`x` for :math:`x \ge 0`, :math:`\alpha(e^x - 1)` below.

    The exponential is taken of :math:`\min(x, 0)`, so large inputs give no overflow and
    no NaN gradient.
    """
    negative = as_scalar(alpha, x.dtype) * pt.expm1(pt.minimum(x, as_scalar(0, x.dtype)))
    return pt.switch(x >= 0, x, negative)


def softmax(x: TensorVariable) -> TensorVariable:
    """Softmax over the last axis."""
    return _softmax(x, axis=-1)


def log_softmax(x: TensorVariable) -> TensorVariable:
    """Log-softmax over the last axis, computed stably (use it for cross-entropy)."""
    return _log_softmax(x, axis=-1)


#: Activations by name, for the ``activation`` arguments.
ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softmax": softmax,
    "log_softmax": log_softmax,
}


def get_activation(activation: str | Callable | None) -> Callable:
    """An activation function from its name, a callable, or None (the identity).

    Use ``functools.partial(nn.leaky_relu, alpha=0.2)`` for other hyperparameters.
    """
    if activation is None:
        return linear
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)} "
            "or pass a function"
        ) from None


# ---------------------------------------------------------------------------------------
# Initialisers: (shape, rng) -> float64 array
# ---------------------------------------------------------------------------------------


def _fans(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"weight initialisers need at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:], dtype=np.int64))
    return int(shape[0]) * receptive, int(shape[1]) * receptive


def glorot_normal(shape, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    r"""Xavier/Glorot normal: mean 0, :math:`\sigma = g \sqrt{2 / (n_{in} + n_{out})}`.

    The slides' initialisation for sigmoid layers (Glorot & Bengio, 2010); ``shape`` is
    ``(n_in, n_out)``.
    """
    n_in, n_out = _fans(shape)
    return rng.normal(0.0, gain * math.sqrt(2.0 / (n_in + n_out)), size=shape)


def glorot_uniform(shape, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    r"""Xavier/Glorot uniform on :math:`\pm g \sqrt{6 / (n_{in} + n_{out})}`.

    The same variance as :func:`glorot_normal`.
    """
    n_in, n_out = _fans(shape)
    limit = gain * math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=shape)


def glorot_relu_normal(shape, rng: np.random.Generator) -> np.ndarray:
    r"""The slides' ReLU variant: :math:`\sigma = \sqrt{2} \sqrt{2 / (n_{in} + n_{out})}`."""
    return glorot_normal(shape, rng, gain=math.sqrt(2.0))


def he_normal(shape, rng: np.random.Generator) -> np.ndarray:
    r"""He normal (He et al., 2015): mean 0, :math:`\sigma = \sqrt{2 / n_{in}}`."""
    n_in, _ = _fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / n_in), size=shape)


def he_uniform(shape, rng: np.random.Generator) -> np.ndarray:
    r"""He uniform on :math:`\pm \sqrt{6 / n_{in}}`."""
    n_in, _ = _fans(shape)
    limit = math.sqrt(6.0 / n_in)
    return rng.uniform(-limit, limit, size=shape)


#: Initialisers by name, for the ``init`` arguments.
INITIALIZERS: dict[str, Callable] = {
    "glorot_normal": glorot_normal,
    "xavier_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "xavier_uniform": glorot_uniform,
    "glorot_relu_normal": glorot_relu_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}

_RELU_FAMILY = (relu, leaky_relu, elu)


def get_initializer(init: str | Callable | None, activation: Callable = linear) -> Callable:
    """An initialiser from its name or a callable ``(shape, rng) -> array``.

    None picks the slides' choice for ``activation``: :func:`glorot_relu_normal` for the
    ReLU family (relu, leaky_relu, elu), :func:`glorot_normal` otherwise.
    """
    if init is None:
        base = getattr(activation, "func", activation)  # see through functools.partial
        return glorot_relu_normal if base in _RELU_FAMILY else glorot_normal
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except KeyError:
        raise ValueError(
            f"unknown initialiser {init!r}; choose one of {sorted(INITIALIZERS)} "
            "or pass a function (shape, rng) -> array"
        ) from None


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


def _shared(value, name: str, dtype: str) -> SharedVariable:
    value = np.asarray(value, dtype=dtype)
    return pytensor.shared(value, name=name, shape=value.shape)


def _dtype(dtype: str | None) -> str:
    dtype = str(np.dtype(dtype or "float32"))
    if not dtype.startswith("float"):
        raise ValueError(f"parameters need a floating-point dtype, got {dtype}")
    return dtype


def _is_false(training) -> bool:
    """True for a Python (or NumPy) false; symbolic flags are never known to be false."""
    return isinstance(training, (bool, np.bool_, int)) and not training


def _is_true(training) -> bool:
    return isinstance(training, (bool, np.bool_, int)) and bool(training)


class Layer:
    """Base class: no parameters, no extra updates, the identity."""

    name: str = "layer"

    def __init__(self):
        self._extra_updates: dict = {}

    @property
    def params(self) -> list[SharedVariable]:
        """The shared variables to train."""
        return []

    @property
    def weights(self) -> list[SharedVariable]:
        """The parameters to regularise (weights, not biases or scales)."""
        return []

    @property
    def variables(self) -> list[SharedVariable]:
        """The parameters and the state not trained by gradients (running statistics)."""
        return self.params

    @property
    def extra_updates(self) -> list[tuple]:
        """``(shared, expression)`` pairs to add to the training function's updates."""
        return list(self._extra_updates.items())

    def output(self, x, training=False) -> TensorVariable:
        """The symbolic output for input ``x``."""
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Dense(Layer):
    r"""A fully connected layer, :math:`\mathrm{activation}(x W + b)`.

    Parameters
    ----------
    n_in, n_out : int
        Input and output sizes; ``W`` has shape ``(n_in, n_out)``.
    activation : str or callable, default "linear"
        See :data:`ACTIVATIONS`.
    init : str or callable, optional
        The weights' initialiser (see :func:`get_initializer`); biases start at zero.
    bias : bool, default True
        Whether to have ``b`` (leave it out before batch normalisation, whose ``beta``
        plays its part).
    name : str, default "dense"
        Parameters are named ``<name>.W`` and ``<name>.b``.
    seed : int or numpy.random.Generator, optional
        For the initial weights.
    dtype : str, default "float32"
        The parameters' dtype. Inputs of another dtype are cast to it.
    """

    def __init__(self, n_in: int, n_out: int, activation: str | Callable | None = "linear",
                 init: str | Callable | None = None, bias: bool = True, name: str = "dense",
                 seed: Seed = None, dtype: str | None = None):
        super().__init__()
        self.name = name
        self.n_in, self.n_out = int(n_in), int(n_out)
        if self.n_in < 1 or self.n_out < 1:
            raise ValueError(f"{name}: sizes must be positive, got {n_in} -> {n_out}")
        self.activation = get_activation(activation)
        dtype = _dtype(dtype)
        rng = np.random.default_rng(seed)
        initializer = get_initializer(init, self.activation)
        self.W = _shared(initializer((self.n_in, self.n_out), rng), f"{name}.W", dtype)
        self.b = _shared(np.zeros(self.n_out), f"{name}.b", dtype) if bias else None

    @property
    def params(self):
        return [self.W] if self.b is None else [self.W, self.b]

    @property
    def weights(self):
        return [self.W]

    def output(self, x, training=False) -> TensorVariable:
        x = pt.as_tensor_variable(x)
        if x.dtype != self.W.dtype:
            x = pt.cast(x, self.W.dtype)
        z = pt.dot(x, self.W)
        if self.b is not None:
            z = z + self.b
        # what K-FAC needs of the latest graph: the input and the pre-activation
        self.last_input, self.last_preactivation = x, z
        return self.activation(z)


class Activation(Layer):
    """An activation function as a layer (no parameters)."""

    def __init__(self, activation: str | Callable, name: str = "activation"):
        super().__init__()
        self.name = name
        self.activation = get_activation(activation)

    def output(self, x, training=False) -> TensorVariable:
        return self.activation(x)


class PReLU(Layer):
    r"""The parametric ReLU (He et al., 2015): a leaky ReLU whose slope is learned.

    .. math:: f(x) = \max(0, x) + a \min(0, x)

    with one slope :math:`a` per unit (per feature of the last axis), a parameter
    trained with the others, starting at 0.25 as in the paper. It is not a weight: the
    paper does not decay it (``weights`` is empty), since decay would pull it to 0, the
    ReLU.

    Parameters
    ----------
    n_features : int
        The number of units (the size of the last axis of the input).
    init : float, default 0.25
        The initial slope.
    name : str, default "prelu"
        The slope is ``<name>.alpha``.
    dtype : str, default "float32"

    References
    ----------
    K. He, X. Zhang, S. Ren and J. Sun (2015), "Delving Deep into Rectifiers: Surpassing
    Human-Level Performance on ImageNet Classification", ICCV 2015.
    https://arxiv.org/abs/1502.01852
    """

    def __init__(self, n_features: int, init: float = 0.25, name: str = "prelu",
                 dtype: str | None = None):
        super().__init__()
        self.name = name
        n = int(n_features)
        if n < 1:
            raise ValueError(f"{name}: n_features must be positive, got {n_features!r}")
        self.alpha = _shared(np.full(n, float(init)), f"{name}.alpha", _dtype(dtype))

    @property
    def params(self):
        return [self.alpha]

    def output(self, x, training=False) -> TensorVariable:
        x = pt.as_tensor_variable(x)
        if x.dtype != self.alpha.dtype:
            x = pt.cast(x, self.alpha.dtype)
        zero = as_scalar(0, x.dtype)
        return pt.maximum(x, zero) + self.alpha * pt.minimum(x, zero)


class RReLU(Layer):
    r"""The randomized leaky ReLU (Xu et al., 2015): a random slope in training, its mean
    in inference.

    .. math::

        f(x) = \begin{cases} x & x \ge 0 \\ a\, x & x < 0 \end{cases}, \qquad
        a \sim U(l, u) \text{ per element in training}, \quad
        a = \frac{l + u}{2} \text{ in inference}

    The slides' RReLU ("picked randomly during training, fixed during testing"). Xu et
    al. write the negative part as :math:`x / a'` with :math:`a' \sim U(3, 8)`; the
    defaults here are PyTorch's, a slope drawn directly from :math:`U(1/8, 1/3)`, whose
    bounds are the reciprocals of the paper's. Like :class:`Dropout`, the layer keeps a
    random generator whose next state is an :attr:`extra_updates` pair of the training
    graph.

    Parameters
    ----------
    lower, upper : float, default 1/8, 1/3
        :math:`l \le u`, the bounds of the slope.
    seed : int or numpy.random.Generator, optional
    name : str, default "rrelu"

    References
    ----------
    B. Xu, N. Wang, T. Chen and M. Li (2015), "Empirical Evaluation of Rectified
    Activations in Convolutional Network", ICML 2015 Deep Learning Workshop.
    https://arxiv.org/abs/1505.00853
    """

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, seed: Seed = None,
                 name: str = "rrelu"):
        super().__init__()
        self.name = name
        self.lower, self.upper = float(lower), float(upper)
        if not 0.0 <= self.lower <= self.upper:
            raise ValueError(f"{name}: the slopes need 0 <= lower <= upper, got lower={lower!r}, "
                             f"upper={upper!r}")
        generator = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.rng = pytensor.shared(generator, name=f"{name}.rng")

    @property
    def mean_slope(self) -> float:
        """The slope used in inference, :math:`(l + u) / 2`."""
        return 0.5 * (self.lower + self.upper)

    def output(self, x, training=False) -> TensorVariable:
        x = pt.as_tensor_variable(x)
        fixed = pt.switch(x >= 0, x, as_scalar(self.mean_slope, x.dtype) * x)
        if _is_false(training):
            return fixed
        draw, next_rng = _uniform_draw(self.rng, x.shape, x.dtype)
        slope = as_scalar(self.lower, x.dtype) + as_scalar(self.upper - self.lower, x.dtype) * draw
        random = pt.switch(x >= 0, x, slope * x)
        self._extra_updates = {self.rng: next_rng}
        return random if _is_true(training) else pt.switch(training, random, fixed)


def _uniform_draw(rng: SharedVariable, shape, dtype: str):
    """Uniform [0, 1) numbers and the generator's next state, on PyTensor 2 and 3."""
    try:
        next_rng, draw = pt.random.uniform(0.0, 1.0, size=shape, rng=rng, dtype=dtype,
                                           return_next_rng=True)
    except TypeError:  # PyTensor 2.x: the next state is the node's first output
        draw = pt.random.uniform(0.0, 1.0, size=shape, rng=rng, dtype=dtype)
        next_rng = draw.owner.outputs[0]
    return draw, next_rng


class Dropout(Layer):
    r"""Inverted dropout: in training, zero each unit with probability ``rate``.

    In training the kept units are divided by the keep probability :math:`1 - p`, so the
    expected output equals the input and inference is the identity (what
    ``tf.layers.dropout`` does, the slides' version).

    Parameters
    ----------
    rate : float
        :math:`p`, the dropout rate, in ``[0, 1)`` ("specify the dropout rate rather than
        the keep probability").
    seed : int or numpy.random.Generator, optional
        Seeds the layer's random generator, a shared variable; its next state is an
        :attr:`extra_updates` pair, so add those to the training function (without them
        every step draws the same mask).
    name : str, default "dropout"
    """

    def __init__(self, rate: float, seed: Seed = None, name: str = "dropout"):
        super().__init__()
        self.name = name
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"{name}: the dropout rate must be in [0, 1), got {rate!r}")
        generator = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.rng = pytensor.shared(generator, name=f"{name}.rng")

    def output(self, x, training=False) -> TensorVariable:
        x = pt.as_tensor_variable(x)
        if _is_false(training) or self.rate == 0.0:
            return x
        draw, next_rng = _uniform_draw(self.rng, x.shape, x.dtype)
        keep = as_scalar(1.0 - self.rate, x.dtype)
        dropped = x * pt.cast(draw < keep, x.dtype) / keep
        self._extra_updates = {self.rng: next_rng}
        return dropped if _is_true(training) else pt.switch(training, dropped, x)


class BatchNorm(Layer):
    r"""Batch normalisation (Ioffe & Szegedy, 2015) over the first axis, as in the slides.

    .. math::

        \hat x = \frac{x - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \qquad z = \gamma \hat x + \beta

    In training, :math:`\mu_B` and :math:`\sigma_B^2` are the mini-batch's mean and
    (biased) variance, and the extra updates move the running statistics towards them:
    :math:`m \leftarrow \rho\, m + (1 - \rho)\, \mu_B` and the same for the variance. At
    inference the running statistics replace the batch's.

    Parameters
    ----------
    n_features : int
    momentum : float, default 0.9
        :math:`\rho` (Lasagne's and PyTorch's default; TensorFlow's is 0.99).
    epsilon : float, default 1e-3
        TensorFlow's default.
    name : str, default "bn"
        Parameters ``<name>.gamma`` (ones) and ``<name>.beta`` (zeros); running
        statistics ``<name>.running_mean`` (zeros) and ``<name>.running_var`` (ones),
        which are not parameters.
    dtype : str, default "float32"
    """

    def __init__(self, n_features: int, momentum: float = 0.9, epsilon: float = 1e-3,
                 name: str = "bn", dtype: str | None = None):
        super().__init__()
        self.name = name
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1), got {momentum!r}")
        if self.epsilon <= 0:
            raise ValueError(f"{name}: epsilon must be > 0, got {epsilon!r}")
        dtype = _dtype(dtype)
        n = int(n_features)
        self.gamma = _shared(np.ones(n), f"{name}.gamma", dtype)
        self.beta = _shared(np.zeros(n), f"{name}.beta", dtype)
        self.running_mean = _shared(np.zeros(n), f"{name}.running_mean", dtype)
        self.running_var = _shared(np.ones(n), f"{name}.running_var", dtype)

    @property
    def params(self):
        return [self.gamma, self.beta]

    @property
    def variables(self):
        return [self.gamma, self.beta, self.running_mean, self.running_var]

    def _normalize(self, x, mean, var):
        eps = as_scalar(self.epsilon, x.dtype)
        return (x - mean) / pt.sqrt(var + eps) * self.gamma + self.beta

    def output(self, x, training=False) -> TensorVariable:
        x = pt.as_tensor_variable(x)
        if x.dtype != self.gamma.dtype:
            x = pt.cast(x, self.gamma.dtype)
        inference = self._normalize(x, self.running_mean, self.running_var)
        if _is_false(training):
            return inference
        mean, var = x.mean(axis=0), x.var(axis=0)
        train = self._normalize(x, mean, var)
        rho = as_scalar(self.momentum, x.dtype)
        new = {
            self.running_mean: rho * self.running_mean + (1 - rho) * mean,
            self.running_var: rho * self.running_var + (1 - rho) * var,
        }
        if not _is_true(training):
            new = {s: pt.switch(training, e, s) for s, e in new.items()}
            train = pt.switch(training, train, inference)
        self._extra_updates = {s: like_param(e, s) for s, e in new.items()}
        return train


class Sequential(Layer):
    """Layers applied in order; ``params``, ``weights`` and ``extra_updates`` are joined."""

    def __init__(self, layers: Sequence[Layer], name: str = "sequential"):
        super().__init__()
        self.name = name
        self.layers = list(layers)
        names = [layer.name for layer in self.layers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique, repeated: {duplicates}")

    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def variables(self):
        return [v for layer in self.layers for v in layer.variables]

    @property
    def extra_updates(self):
        return [pair for layer in self.layers for pair in layer.extra_updates]

    def layer(self, name: str) -> Layer:
        """The layer called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers are {[layer.name for layer in self.layers]}")

    def output(self, x, training=False) -> TensorVariable:
        for layer in self.layers:
            x = layer.output(x, training)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{inner}])"


class MLP(Sequential):
    """A multilayer perceptron: dense hidden layers, then a dense output layer.

    Each hidden layer is ``Dense`` -> (``BatchNorm``) -> activation -> (``Dropout``), the
    slides' order (batch normalisation before the activation). With one hidden layer it
    is called ``hidden`` (parameters ``hidden.W``, ``hidden.b``), with more ``hidden1``,
    ``hidden2``...; the output layer is ``output``. ``MLP([784, 600, 10])`` is the blog's
    network.

    Parameters
    ----------
    sizes : sequence of int
        Input size, hidden sizes, output size (at least two numbers).
    activation : str or callable, default "relu"
        The hidden layers' activation; ``"prelu"`` and ``"rrelu"`` put a :class:`PReLU`
        layer (its slopes ``<layer>.prelu.alpha`` trained with the weights) or an
        :class:`RReLU` layer after each hidden layer.
    output_activation : str or callable, default "log_softmax"
        The default output is log-probabilities, what
        :func:`categorical_crossentropy_from_log_probs` takes; ``"softmax"`` gives
        probabilities (for :func:`categorical_crossentropy`), ``"linear"`` logits.
    init : str or callable, optional
        The weights' initialiser; by default the slides' choice for ``activation``
        (:func:`get_initializer`); the output layer uses :func:`glorot_normal`.
    dropout : float, default 0.0
        The dropout rate after each hidden layer.
    input_dropout : float, default 0.0
        The dropout rate on the inputs.
    batch_norm : bool, default False
        Batch-normalise each hidden layer (its dense layer then has no bias).
    seed : int, default 0
        Seeds the initial weights and the dropout masks.
    dtype : str, default "float32"

    Attributes
    ----------
    layers : list of Layer
    """

    def __init__(self, sizes: Sequence[int], *, activation: str | Callable = "relu",
                 output_activation: str | Callable = "log_softmax",
                 init: str | Callable | None = None, dropout: float = 0.0,
                 input_dropout: float = 0.0, batch_norm: bool = False, seed: int = 0,
                 dtype: str | None = None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input and an output size, got {sizes}")
        self.sizes = sizes
        dtype = _dtype(dtype)
        seeds = np.random.SeedSequence(seed).spawn(2 * len(sizes))
        layers: list[Layer] = []
        if input_dropout:
            layers.append(Dropout(input_dropout, seed=np.random.default_rng(seeds[-1]),
                                  name="input.dropout"))
        n_hidden = len(sizes) - 2
        layered = activation in ("prelu", "rrelu")  # activations with parameters or state
        activation_fn = relu if layered else get_activation(activation)
        for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
            name = "hidden" if n_hidden == 1 else f"hidden{i + 1}"
            layers.append(Dense(n_in, n_out, init=get_initializer(init, activation_fn),
                                bias=not batch_norm, name=name,
                                seed=np.random.default_rng(seeds[i]), dtype=dtype))
            if batch_norm:
                layers.append(BatchNorm(n_out, name=f"{name}.bn", dtype=dtype))
            if activation == "prelu":
                layers.append(PReLU(n_out, name=f"{name}.prelu", dtype=dtype))
            elif activation == "rrelu":
                # a child of the dropout's seed: a stream of its own
                rrelu_seed = np.random.default_rng(seeds[len(sizes) + i].spawn(1)[0])
                layers.append(RReLU(seed=rrelu_seed, name=f"{name}.rrelu"))
            else:
                layers.append(Activation(activation_fn, name=f"{name}.activation"))
            if dropout:
                layers.append(Dropout(dropout, seed=np.random.default_rng(seeds[len(sizes) + i]),
                                      name=f"{name}.dropout"))
        layers.append(Dense(sizes[-2], sizes[-1], init=init or "glorot_normal", name="output",
                            seed=np.random.default_rng(seeds[len(sizes) - 2]), dtype=dtype))
        layers.append(Activation(output_activation, name="output.activation"))
        super().__init__(layers, name="mlp")

    def logits(self, x, training=False) -> TensorVariable:
        """The output layer's input to its activation."""
        for layer in self.layers[:-1]:
            x = layer.output(x, training)
        return x


def kfac_layers(net: Layer) -> list:
    """The dense layers of ``net`` as :func:`symopt.kfac` takes them.

    One :class:`symopt.second_order.DenseLayer` per :class:`Dense` layer, in order, with
    the input and pre-activation variables of the latest call of ``net.output`` (build
    the training graph first, then call this).
    """
    from symopt.second_order import DenseLayer

    def dense(layer):
        if isinstance(layer, Dense):
            yield layer
        for inner in getattr(layer, "layers", []):
            yield from dense(inner)

    found = []
    for layer in dense(net):
        if not hasattr(layer, "last_input"):
            raise ValueError(f"{layer.name}: no graph yet; call net.output(x, training=True) "
                             "before kfac_layers(net)")
        found.append(DenseLayer(layer.W, layer.b, layer.last_input, layer.last_preactivation))
    if not found:
        raise ValueError(f"{net!r} has no dense layer")
    return found


# ---------------------------------------------------------------------------------------
# Losses and metrics (means over the mini-batch)
# ---------------------------------------------------------------------------------------


def _made_by(x, op_type) -> bool:
    """Whether ``x`` is the output of an ``op_type`` node (through casts)."""
    while x.owner is not None:
        op = x.owner.op
        if isinstance(op, op_type):
            return True
        if isinstance(op, Elemwise) and isinstance(op.scalar_op, ps.Cast):
            x = x.owner.inputs[0]
            continue
        return False
    return False


def _crossentropy(log_probs, targets, argument) -> TensorVariable:
    """The mean cross-entropy of ``log_probs`` against labels or target probabilities.

    Integer labels are checked when the loss is computed: a label outside
    ``[0, n_classes)`` raises a ValueError (a negative one would otherwise pick a class
    from the end, silently).
    """
    targets = pt.as_tensor_variable(targets)
    if targets.ndim == log_probs.ndim - 1:
        if not targets.dtype.startswith(("int", "uint")):
            raise TypeError(f"class-label targets must be integers, got dtype {targets.dtype}")
        n_classes = log_probs.shape[-1]
        valid = pt.and_(pt.all(pt.ge(targets, 0)), pt.all(pt.lt(targets, n_classes)))
        targets = CheckAndRaise(
            ValueError, f"class labels must be in [0, n_classes), n_classes being the number "
                        f"of columns of {argument}: a target is outside the classes")(targets,
                                                                                     valid)
        picked = log_probs[pt.arange(log_probs.shape[0]), targets]
        return -picked.mean()
    if targets.ndim != log_probs.ndim:
        raise ValueError(f"targets have ndim={targets.ndim}, {argument} ndim={log_probs.ndim}")
    return -(pt.cast(targets, log_probs.dtype) * log_probs).sum(axis=-1).mean()


def categorical_crossentropy(probs, targets) -> TensorVariable:
    r"""Mean cross-entropy :math:`-\frac1n \sum_i \log p_{i, y_i}` from probabilities.

    Lasagne's ``categorical_crossentropy``: ``probs`` are probabilities, e.g. a softmax
    output. For log-probabilities (a :func:`log_softmax` output, the default output of
    :class:`MLP`, which is stabler) use :func:`categorical_crossentropy_from_log_probs`;
    a :func:`log_softmax` output given here is refused.

    Parameters
    ----------
    probs : TensorVariable, shape (n, k)
        Probabilities, each row summing to 1.
    targets : TensorVariable
        Integer class labels in ``[0, k)``, shape ``(n,)`` (checked when the loss is
        computed), or a matrix of target probabilities (one-hot rows), shape ``(n, k)``.

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt
    >>> p = pt.special.softmax(pt.constant(np.log([[1.0, 3.0], [2.0, 2.0]])), axis=-1)
    >>> round(float(categorical_crossentropy(p, np.array([1, 0])).eval()), 6)
    0.490415
    """
    probs = pt.as_tensor_variable(probs)
    if _made_by(probs, LogSoftmax):
        raise ValueError("categorical_crossentropy takes probabilities, but these are the "
                         "output of log_softmax (log-probabilities); use "
                         "categorical_crossentropy_from_log_probs")
    return _crossentropy(pt.log(probs), targets, "probs")


def categorical_crossentropy_from_log_probs(log_probs, targets) -> TensorVariable:
    r"""Mean cross-entropy :math:`-\frac1n \sum_i \log p_{i, y_i}` from log-probabilities.

    For the output of :func:`log_softmax` (the default output of :class:`MLP`), stabler
    than the log of a softmax. Probabilities (a softmax output) are refused: use
    :func:`categorical_crossentropy` for them.

    Parameters
    ----------
    log_probs : TensorVariable, shape (n, k)
        Log-probabilities.
    targets : TensorVariable
        Integer class labels in ``[0, k)``, shape ``(n,)`` (checked when the loss is
        computed), or a matrix of target probabilities (one-hot rows), shape ``(n, k)``.
    """
    log_probs = pt.as_tensor_variable(log_probs)
    if _made_by(log_probs, Softmax):
        raise ValueError("categorical_crossentropy_from_log_probs takes log-probabilities, "
                         "but these are the output of softmax (probabilities); use "
                         "categorical_crossentropy, or log_softmax for the output")
    return _crossentropy(log_probs, targets, "log_probs")


def binary_crossentropy(probs, targets, epsilon: float = 1e-7) -> TensorVariable:
    r"""Mean binary cross-entropy :math:`-[t \log p + (1-t) \log(1-p)]` from probabilities.

    ``probs`` is clipped to :math:`[\epsilon, 1-\epsilon]`; prefer
    :func:`binary_crossentropy_with_logits` when logits are at hand.
    """
    probs = pt.as_tensor_variable(probs)
    t = pt.cast(targets, probs.dtype)
    p = pt.clip(probs, as_scalar(epsilon, probs.dtype), as_scalar(1 - epsilon, probs.dtype))
    return -(t * pt.log(p) + (1 - t) * pt.log1p(-p)).mean()


def binary_crossentropy_with_logits(logits, targets) -> TensorVariable:
    r"""Binary cross-entropy of :math:`\sigma(z)`, computed stably from the logits :math:`z`.

    :math:`\max(z, 0) - t z + \log(1 + e^{-|z|})`, averaged (TensorFlow's
    ``sigmoid_cross_entropy_with_logits``, which the slides use).
    """
    z = pt.as_tensor_variable(logits)
    t = pt.cast(targets, z.dtype)
    return (pt.maximum(z, as_scalar(0, z.dtype)) - t * z + pt.log1p(pt.exp(-pt.abs(z)))).mean()


def accuracy(outputs, targets) -> TensorVariable:
    """The fraction of correct predictions, in the dtype of ``outputs``.

    ``outputs`` of shape ``(n, k)`` (probabilities, log-probabilities or logits) predict
    their argmax, compared with integer ``targets``; ``outputs`` of shape ``(n,)`` are
    probabilities of the positive class, thresholded at 0.5.
    """
    outputs = pt.as_tensor_variable(outputs)
    targets = pt.as_tensor_variable(targets)
    if outputs.ndim == 1:
        predicted = pt.cast(outputs > as_scalar(0.5, outputs.dtype), "int64")
    else:
        predicted = pt.argmax(outputs, axis=-1)
    correct = pt.eq(predicted, pt.cast(targets, "int64"))
    return pt.cast(correct, outputs.dtype).mean()
