r"""Independent NumPy transcriptions of every update rule, for the reference tests.

Written from the papers' equations (and, for the text forms, from the texts' own code),
without importing symopt (a test holds it to that); :data:`symopt.lab.rulebook.ROWS`
pairs each library rule with its class here. Each rule is a small class: build it with the initial
parameters and the hyperparameters, then ``new_params = rule.step(params, grads)``.
Hyperparameters are plain attributes, so a test can change the learning rate between
steps exactly as it would change a shared variable.

State starts at zero and the step counter ``t`` is 1 at the first step. Scalars are cast
to the parameters' dtype (the library does the same), so a float32 transcription rounds
like a float32 graph.
"""

from __future__ import annotations

import numpy as np


def _zeros(params):
    return [np.zeros_like(p) for p in params]


class Rule:
    """Loops over the parameters; subclasses write one parameter's update."""

    def __init__(self, params, **hyperparameters):
        self.dtype = np.asarray(params[0]).dtype
        self.t = 0
        for name, value in hyperparameters.items():
            setattr(self, name, value)

    def c(self, value):
        """A hyperparameter as a scalar of the parameters' dtype."""
        return np.asarray(value, dtype=self.dtype)[()]

    def prepare(self, grads):
        """Whole-list gradient processing before the per-parameter updates."""
        return grads

    def step(self, params, grads):
        self.t += 1
        grads = self.prepare([np.asarray(g, dtype=self.dtype) for g in grads])
        return [self.update(i, np.asarray(p), g) for i, (p, g) in enumerate(zip(params, grads))]

    def update(self, i, theta, g):  # pragma: no cover - every rule overrides it
        raise NotImplementedError


# --------------------------------------------------------------------------------------
# The library's rules, from the papers
# --------------------------------------------------------------------------------------


class SGD(Rule):
    r""":math:`\theta \leftarrow \theta - \eta g`."""

    def __init__(self, params, learning_rate=1e-3):
        super().__init__(params, learning_rate=learning_rate)

    def update(self, i, theta, g):
        return theta - self.c(self.learning_rate) * g


class Momentum(Rule):
    r"""Polyak's heavy ball: :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + v`."""

    def __init__(self, params, learning_rate=1e-3, momentum=0.9):
        super().__init__(params, learning_rate=learning_rate, momentum=momentum)
        self.velocity = _zeros(params)

    def update(self, i, theta, g):
        v = self.c(self.momentum) * self.velocity[i] - self.c(self.learning_rate) * g
        self.velocity[i] = v
        return theta + v


class NesterovMomentum(Rule):
    r"""Sutskever et al. (2013) NAG on the look-ahead parameter (Bengio et al., 2013).

    :math:`v \leftarrow \mu v - \eta g,\ \theta \leftarrow \theta + \mu v - \eta g`.
    """

    def __init__(self, params, learning_rate=1e-3, momentum=0.9):
        super().__init__(params, learning_rate=learning_rate, momentum=momentum)
        self.velocity = _zeros(params)

    def update(self, i, theta, g):
        mu, lr = self.c(self.momentum), self.c(self.learning_rate)
        v = mu * self.velocity[i] - lr * g
        self.velocity[i] = v
        return theta + mu * v - lr * g


class Adagrad(Rule):
    r"""Duchi et al. (2011).

    :math:`r \leftarrow r + g^2,\ \theta \leftarrow \theta - \eta g/\sqrt{r+\epsilon}`.
    """

    def __init__(self, params, learning_rate=1.0, epsilon=1e-6):
        super().__init__(params, learning_rate=learning_rate, epsilon=epsilon)
        self.sum_square = _zeros(params)

    def update(self, i, theta, g):
        self.sum_square[i] = self.sum_square[i] + g**2
        return theta - self.c(self.learning_rate) * g / np.sqrt(
            self.sum_square[i] + self.c(self.epsilon))


class AdagradWindow(Rule):
    r"""PyMC's ``adagrad_window``: Adagrad over the last ``n_win`` squared gradients.

    A ring buffer :math:`w` of ``n_win`` slots per element, zeros at first; step
    :math:`t` (1 at the first) writes slot :math:`(t - 1) \bmod n`:

    .. math::

        w_{(t-1) \bmod n} \leftarrow g^2, \qquad
        \theta \leftarrow \theta - \eta\, g / \sqrt{\textstyle\sum_k w_k + \epsilon}
    """

    def __init__(self, params, learning_rate=1e-3, epsilon=0.1, n_win=10):
        super().__init__(params, learning_rate=learning_rate, epsilon=epsilon, n_win=n_win)
        self.window = [np.zeros(np.shape(p) + (n_win,), dtype=self.dtype) for p in params]

    def update(self, i, theta, g):
        self.window[i][..., (self.t - 1) % self.n_win] = g**2
        total = self.window[i].sum(axis=-1)
        return theta - self.c(self.learning_rate) * g / np.sqrt(total + self.c(self.epsilon))


class RMSProp(Rule):
    r"""Tieleman & Hinton (2012), as TensorFlow's ``RMSPropOptimizer`` (epsilon inside the root).

    .. math::

        r &\leftarrow \rho r + (1-\rho) g^2 \\
        \bar g &\leftarrow \rho \bar g + (1-\rho) g \quad\text{(centered only; Graves, 2013)} \\
        v &\leftarrow \mu v + \eta\, g / \sqrt{r - \bar g^2 + \epsilon} \\
        \theta &\leftarrow \theta - v
    """

    def __init__(self, params, learning_rate=1.0, rho=0.9, epsilon=1e-6, momentum=0.0,
                 centered=False):
        super().__init__(params, learning_rate=learning_rate, rho=rho, epsilon=epsilon,
                         momentum=momentum, centered=centered)
        self.mean_square = _zeros(params)
        self.mean_grad = _zeros(params)
        self.moment = _zeros(params)

    def update(self, i, theta, g):
        rho = self.c(self.rho)
        self.mean_square[i] = rho * self.mean_square[i] + (1 - rho) * g**2
        denominator = self.mean_square[i]
        if self.centered:
            self.mean_grad[i] = rho * self.mean_grad[i] + (1 - rho) * g
            denominator = denominator - self.mean_grad[i] ** 2
        self.moment[i] = (self.c(self.momentum) * self.moment[i]
                          + self.c(self.learning_rate) * g / np.sqrt(denominator
                                                                     + self.c(self.epsilon)))
        return theta - self.moment[i]


class AdaDelta(Rule):
    r"""Zeiler (2012), Algorithm 1, with a learning rate on the final step (Lasagne's form).

    .. math::

        E[g^2] &\leftarrow \rho E[g^2] + (1-\rho) g^2 \\
        \Delta &= \frac{\sqrt{E[\Delta^2] + \epsilon}}{\sqrt{E[g^2] + \epsilon}}\, g \\
        E[\Delta^2] &\leftarrow \rho E[\Delta^2] + (1-\rho) \Delta^2, \qquad
        \theta \leftarrow \theta - \eta \Delta
    """

    def __init__(self, params, learning_rate=1.0, rho=0.95, epsilon=1e-6):
        super().__init__(params, learning_rate=learning_rate, rho=rho, epsilon=epsilon)
        self.eg2 = _zeros(params)
        self.edx2 = _zeros(params)

    def update(self, i, theta, g):
        rho, eps = self.c(self.rho), self.c(self.epsilon)
        self.eg2[i] = rho * self.eg2[i] + (1 - rho) * g**2
        delta = np.sqrt(self.edx2[i] + eps) / np.sqrt(self.eg2[i] + eps) * g
        self.edx2[i] = rho * self.edx2[i] + (1 - rho) * delta**2
        return theta - self.c(self.learning_rate) * delta


def _efficient(epsilon_placement):
    """Whether a rule of Adam's family takes Kingma & Ba's efficient form (section 2)."""
    if epsilon_placement not in ("after_correction", "before_correction"):
        raise ValueError(f"unknown epsilon_placement {epsilon_placement!r}")
    return epsilon_placement == "before_correction"


class Adam(Rule):
    r"""Kingma & Ba (2015), Algorithm 1, or the efficient form of their section 2.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        \hat m &= m / (1-\beta_1^t), \qquad \hat v = v / (1-\beta_2^t), \qquad
        \theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)

    ``epsilon_placement="before_correction"``, the efficient form (Lasagne, PyMC):
    :math:`\alpha_t = \eta \sqrt{1-\beta_2^t} / (1-\beta_1^t)`,
    :math:`\theta \leftarrow \theta - \alpha_t\, m / (\sqrt{v} + \epsilon)`.
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
                 epsilon_placement="after_correction"):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon)
        self.efficient = _efficient(epsilon_placement)
        self.m = _zeros(params)
        self.v = _zeros(params)

    def direction(self, i, g):
        b1, b2, t = self.c(self.beta1), self.c(self.beta2), self.c(self.t)
        self.m[i] = b1 * self.m[i] + (1 - b1) * g
        self.v[i] = b2 * self.v[i] + (1 - b2) * g**2
        if self.efficient:
            alpha = np.sqrt(1 - b2**t) / (1 - b1**t)
            return alpha * self.m[i] / (np.sqrt(self.v[i]) + self.c(self.epsilon))
        m_hat = self.m[i] / (1 - b1**t)
        v_hat = self.v[i] / (1 - b2**t)
        return m_hat / (np.sqrt(v_hat) + self.c(self.epsilon))

    def update(self, i, theta, g):
        return theta - self.c(self.learning_rate) * self.direction(i, g)


class AdaMax(Rule):
    r"""Kingma & Ba (2015), Algorithm 2, with epsilon added to :math:`u` (Lasagne, torch).

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1) g, \qquad u \leftarrow \max(\beta_2 u, |g|),
        \qquad \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t} \frac{m}{u + \epsilon}

    :math:`u` has no bias correction: ``epsilon_placement`` does not change the equation.
    """

    def __init__(self, params, learning_rate=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
                 epsilon_placement="after_correction"):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon)
        _efficient(epsilon_placement)
        self.m = _zeros(params)
        self.u = _zeros(params)

    def update(self, i, theta, g):
        b1, b2, t = self.c(self.beta1), self.c(self.beta2), self.c(self.t)
        self.m[i] = b1 * self.m[i] + (1 - b1) * g
        self.u[i] = np.maximum(b2 * self.u[i], np.abs(g))
        return theta - self.c(self.learning_rate) / (1 - b1**t) * self.m[i] / (
            self.u[i] + self.c(self.epsilon))


class AMSGrad(Rule):
    r"""Reddi et al. (2018) as ``torch.optim.Adam(amsgrad=True)``.

    The maximum is taken over the raw second moment, then bias-corrected:

    .. math::

        v_{max} \leftarrow \max(v_{max}, v), \qquad
        \theta \leftarrow \theta - \frac{\eta}{1-\beta_1^t}
            \frac{m}{\sqrt{v_{max}}/\sqrt{1-\beta_2^t} + \epsilon}

    ``max_was_active`` records whether the maximum ever kept an older, larger value.
    ``epsilon_placement="before_correction"`` is Lasagne's ``amsgrad``:
    :math:`\theta \leftarrow \theta - \eta \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}
    \frac{m}{\sqrt{v_{max}} + \epsilon}`.
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, *,
                 epsilon_placement="after_correction"):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon)
        self.efficient = _efficient(epsilon_placement)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.v_max = _zeros(params)
        self.max_was_active = False

    def update(self, i, theta, g):
        b1, b2, t = self.c(self.beta1), self.c(self.beta2), self.c(self.t)
        self.m[i] = b1 * self.m[i] + (1 - b1) * g
        self.v[i] = b2 * self.v[i] + (1 - b2) * g**2
        self.max_was_active |= bool(np.any(self.v_max[i] > self.v[i]))
        self.v_max[i] = np.maximum(self.v_max[i], self.v[i])
        if self.efficient:
            alpha = self.c(self.learning_rate) * np.sqrt(1 - b2**t) / (1 - b1**t)
            return theta - alpha * self.m[i] / (np.sqrt(self.v_max[i]) + self.c(self.epsilon))
        denominator = np.sqrt(self.v_max[i]) / np.sqrt(1 - b2**t) + self.c(self.epsilon)
        return theta - self.c(self.learning_rate) / (1 - b1**t) * self.m[i] / denominator


class NAdam(Rule):
    r"""Dozat (2016) in optax's form (``optax.nadam``: constant :math:`\beta_1`).

    .. math::

        \hat m = \frac{\beta_1 m}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g}{1-\beta_1^t}, \qquad
        \theta \leftarrow \theta - \eta\, \frac{\hat m}{\sqrt{v/(1-\beta_2^t)} + \epsilon}
    """

    def __init__(self, params, learning_rate=2e-3, beta1=0.9, beta2=0.999, epsilon=1e-8):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon)
        self.m = _zeros(params)
        self.v = _zeros(params)

    def update(self, i, theta, g):
        b1, b2, t = self.c(self.beta1), self.c(self.beta2), self.c(self.t)
        self.m[i] = b1 * self.m[i] + (1 - b1) * g
        self.v[i] = b2 * self.v[i] + (1 - b2) * g**2
        m_hat = b1 * self.m[i] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        v_hat = self.v[i] / (1 - b2**t)
        return theta - self.c(self.learning_rate) * m_hat / (np.sqrt(v_hat)
                                                             + self.c(self.epsilon))


class AdamW(Adam):
    r"""Loshchilov & Hutter (2019), as ``torch.optim.AdamW``: decay the weights, then Adam.

    :math:`\theta \leftarrow \theta (1 - \eta\lambda) - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)`.
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 weight_decay=1e-2):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon)
        self.weight_decay = weight_decay

    def update(self, i, theta, g):
        lr = self.c(self.learning_rate)
        decayed = theta * (1 - lr * self.c(self.weight_decay))
        return decayed - lr * self.direction(i, g)


class Rprop(Rule):
    r"""iRprop- (Igel & Hüsken, 2000), as ``torch.optim.Rprop``.

    Per element: the step size grows by :math:`\eta^+` while :math:`g\, g_{prev} > 0`,
    shrinks by :math:`\eta^-` when the sign flips (and then the element does not move and
    its remembered gradient is zero), and is clipped to ``step_sizes``;
    :math:`\theta \leftarrow \theta - \mathrm{sign}(g)\, \delta`. ``flips`` counts the
    sign flips seen, so a test can check that the branch was exercised.
    """

    def __init__(self, params, learning_rate=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
        super().__init__(params, learning_rate=learning_rate, etas=etas, step_sizes=step_sizes)
        self.prev = _zeros(params)
        self.step_size = [np.full_like(p, learning_rate) for p in params]
        self.flips = 0

    def update(self, i, theta, g):
        eta_minus, eta_plus = (self.c(e) for e in self.etas)
        smallest, largest = (self.c(s) for s in self.step_sizes)
        agreement = np.sign(g * self.prev[i])
        factor = np.where(agreement > 0, eta_plus, np.where(agreement < 0, eta_minus, 1))
        self.step_size[i] = np.clip(self.step_size[i] * factor, smallest, largest)
        g = np.where(agreement < 0, 0, g).astype(self.dtype)
        self.flips += int(np.sum(agreement < 0))
        self.prev[i] = g
        return theta - np.sign(g) * self.step_size[i]


# --------------------------------------------------------------------------------------
# The blog post "Parameters Update in Deep Learning"
# --------------------------------------------------------------------------------------


def momentum_update(x, v, df, learning_rate=0.01, momentum=0.9):
    """The blog's toy ``MomentumUpdate``: returns ``(x + v_next, v_next)``."""
    v_next = momentum * v - learning_rate * df
    return x + v_next, v_next


def blog_toy(grad, x0, steps, learning_rate=0.01, momentum=0.9, look_ahead=False):
    """The blog's toy loop; with ``look_ahead`` the gradient is taken at ``x + momentum * v``.

    Returns the lists of ``x`` and ``v`` after each step.
    """
    dtype = np.asarray(x0).dtype
    lr, mu = np.asarray(learning_rate, dtype)[()], np.asarray(momentum, dtype)[()]
    x, v = np.array(x0), np.zeros_like(x0)
    xs, vs = [], []
    for _ in range(steps):
        df = grad(x + mu * v) if look_ahead else grad(x)
        x, v = momentum_update(x, v, df, lr, mu)
        xs.append(x)
        vs.append(v)
    return xs, vs



class Lion(Rule):
    r"""Lion (EvoLved Sign Momentum), as ``optax.lion`` computes it.

    Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023,
    https://arxiv.org/abs/2302.06675 (Program 1 / Algorithm 2).

    .. math::
        u &= \mathrm{sign}(\beta_1 m + (1-\beta_1) g)\\
        m &\leftarrow \beta_2 m + (1-\beta_2) g\\
        \theta &\leftarrow \theta - \eta(u + \lambda\theta)

    Same as the paper. Defaults: betas 0.9/0.99 (paper and optax); weight_decay 1e-3
    (optax's; the authors' PyTorch code defaults to 0); learning_rate 1e-4 (optax
    requires one; the authors' code default, the paper advises 3-10x below AdamW's).
    """

    def __init__(self, params, learning_rate=1e-4, beta1=0.9, beta2=0.99, weight_decay=1e-3):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         weight_decay=weight_decay)
        self.m = _zeros(params)

    def update(self, i, theta, g):
        b1, b2 = self.c(self.beta1), self.c(self.beta2)
        u = np.sign((1 - b1) * g + b1 * self.m[i])
        self.m[i] = (1 - b2) * g + b2 * self.m[i]
        return theta + self.c(-self.learning_rate) * (u + self.c(self.weight_decay) * theta)

class BlogSGD(SGD):
    """The MLP script's ``sgd``: ``param - learning_rate * grad``."""

    def __init__(self, params, learning_rate=0.01):
        super().__init__(params, learning_rate)


class BlogMomentum(Momentum):
    """The MLP script's ``momentum``: velocity first, then ``param + velocity``."""

    def __init__(self, params, learning_rate=0.01, momentum=0.9):
        super().__init__(params, learning_rate, momentum)


class BlogNag(Rule):
    """The MLP script's ``nag``, step by step as the script writes it."""

    def __init__(self, params, learning_rate=0.01, momentum=0.9):
        super().__init__(params, learning_rate=learning_rate, momentum=momentum)
        self.velocity = _zeros(params)

    def update(self, i, param, grad):
        mu, lr = self.c(self.momentum), self.c(self.learning_rate)
        stepped = param - lr * grad
        self.velocity[i] = mu * self.velocity[i] + stepped - param
        return mu * self.velocity[i] + stepped


# --------------------------------------------------------------------------------------
# The book Deep Learning with Theano, "Optimization and other update rules"
# --------------------------------------------------------------------------------------


def clip_norms(gs, c):
    """The book's clip: all gradients times ``c / norm`` when their total norm is >= ``c``."""
    norm = np.sqrt(sum(np.sum(g**2) for g in gs))
    return [g * c / norm if norm >= c else g for g in gs]


class Book(Rule):
    """The book's loops all start with ``grads = clip_norms(grads, 50)``.

    ``clipped_steps`` counts the steps at which the clip changed the gradients.
    """

    clip = 50
    clipped_steps = 0

    def prepare(self, grads):
        if self.clip is None:
            return grads
        clipped = clip_norms(grads, self.c(self.clip))
        self.clipped_steps += any(a is not b for a, b in zip(clipped, grads))
        return [np.asarray(g, dtype=self.dtype) for g in clipped]


class BookSGD(Book):
    def __init__(self, params, learning_rate=0.01, clip=50):
        super().__init__(params, learning_rate=learning_rate, clip=clip)

    def update(self, i, p, g):
        return p - self.c(self.learning_rate) * g


class BookMomentum(Book):
    def __init__(self, params, learning_rate=0.01, momentum=0.9, clip=50):
        super().__init__(params, learning_rate=learning_rate, momentum=momentum, clip=clip)
        self.m = _zeros(params)

    def update(self, i, p, g):
        v = self.c(self.momentum) * self.m[i] - self.c(self.learning_rate) * g
        self.m[i] = v
        return p + v


class BookNag(Book):
    def __init__(self, params, learning_rate=0.01, momentum=0.9, clip=50):
        super().__init__(params, learning_rate=learning_rate, momentum=momentum, clip=clip)
        self.m = _zeros(params)

    def update(self, i, p, g):
        mu, lr = self.c(self.momentum), self.c(self.learning_rate)
        v = mu * self.m[i] - lr * g
        self.m[i] = v
        return p + mu * v - lr * g


class BookAdagrad(Book):
    def __init__(self, params, learning_rate=0.01, clip=50):
        super().__init__(params, learning_rate=learning_rate, clip=clip)
        self.acc = _zeros(params)

    def update(self, i, p, g):
        self.acc[i] = self.acc[i] + g**2
        return p - (self.c(self.learning_rate) / np.sqrt(self.acc[i] + self.c(1e-6))) * g


class BookAdaDelta(Book):
    def __init__(self, params, learning_rate=1.0, rho=0.95, clip=50):
        super().__init__(params, learning_rate=learning_rate, rho=rho, clip=clip)
        self.acc = _zeros(params)
        self.acc_delta = _zeros(params)

    def update(self, i, p, g):
        rho, eps = self.c(self.rho), self.c(1e-6)
        self.acc[i] = rho * self.acc[i] + (1 - rho) * g**2
        update = g * np.sqrt(self.acc_delta[i] + eps) / np.sqrt(self.acc[i] + eps)
        self.acc_delta[i] = rho * self.acc_delta[i] + (1 - rho) * update**2
        return p - self.c(self.learning_rate) * update


class BookRMSProp(Book):
    def __init__(self, params, learning_rate=0.001, rho=0.9, clip=50):
        super().__init__(params, learning_rate=learning_rate, rho=rho, clip=clip)
        self.acc = _zeros(params)

    def update(self, i, p, g):
        rho = self.c(self.rho)
        self.acc[i] = rho * self.acc[i] + (1 - rho) * g**2
        return p - self.c(self.learning_rate) * (g / np.sqrt(self.acc[i] + self.c(1e-6)))


class BookAdam(Book):
    r"""The book's Adam: :math:`\beta_{1,t} = \beta_1 \lambda^{t-1}`, a float ``t`` from 1,
    bias correction with the undecayed :math:`\beta_1^t`, epsilon 1e-6 outside the root.
    """

    def __init__(self, params, learning_rate=0.001, b1=0.9, b2=0.999, l=1 - 1e-8,  # noqa: E741
                 clip=50):
        super().__init__(params, learning_rate=learning_rate, b1=b1, b2=b2, l=l, clip=clip)
        self.m = _zeros(params)
        self.v = _zeros(params)

    def update(self, i, p, g):
        b1, b2, t = self.c(self.b1), self.c(self.b2), self.c(self.t)
        l = self.c(self.l)  # noqa: E741 (the book's name)
        b1_t = b1 * l ** (t - 1)
        self.m[i] = b1_t * self.m[i] + (1 - b1_t) * g
        self.v[i] = b2 * self.v[i] + (1 - b2) * g**2
        return p - (self.c(self.learning_rate) * self.m[i] / (1 - b1**t)) / (
            np.sqrt(self.v[i] / (1 - b2**t)) + self.c(1e-6))


#: The text forms, by module and name.
BLOG = {"sgd": BlogSGD, "momentum": BlogMomentum, "nag": BlogNag}
BOOK = {
    "sgd": BookSGD,
    "momentum": BookMomentum,
    "nag": BookNag,
    "adagrad": BookAdagrad,
    "adadelta": BookAdaDelta,
    "rmsprop": BookRMSProp,
    "adam": BookAdam,
}


def run(rule, params, grad, steps):
    """Run ``rule`` for ``steps`` steps from ``params``; the parameter lists after each step."""
    trajectory = []
    for _ in range(steps):
        params = rule.step(params, grad(params))
        trajectory.append(params)
    return trajectory
