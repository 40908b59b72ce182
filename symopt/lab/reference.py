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

import math

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
# Kronecker-factored preconditioners
# --------------------------------------------------------------------------------------


def _sym_eig(S):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix, in float64."""
    return np.linalg.eigh(np.asarray(S, dtype=np.float64))


def inverse_root(S, shift, p):
    r""":math:`(S + \text{shift}\, I)^{-p}` of a symmetric positive semi-definite ``S``.

    Eigenvalues below zero, which only rounding produces, count as zero.
    """
    w, Q = _sym_eig(S)
    return (Q * (np.maximum(w, 0.0) + shift) ** (-p)) @ Q.T


def eigenvectors_descending(S):
    """The eigenvectors of a symmetric ``S`` as columns, by decreasing eigenvalue."""
    _, Q = _sym_eig(S)
    return Q[:, ::-1]


def _preconditioned_sides(shape, max_dim):
    """``(left, right)`` for a matrix with a side of at most ``max_dim``, else None."""
    if len(shape) != 2:
        return None
    sides = (shape[0] <= max_dim, shape[1] <= max_dim)
    return sides if any(sides) else None


class Shampoo(Rule):
    r"""Gupta, Koren & Singer (2018), Algorithm 1, with the extensions of Anil et al. (2020).

    For a matrix :math:`W` (gradient :math:`G`), at step :math:`t`:

    .. math::

        M &\leftarrow \beta_1 M + (1-\beta_1) G, \qquad \hat M = M / (1 - \beta_1^t) \\
        L &\leftarrow \beta_L L + w\, G G^T, \qquad R \leftarrow \beta_L R + w\, G^T G,
            \qquad w = 1 - \beta_L \text{ if } \beta_L < 1 \text{ else } 1 \\
        P_L &= (L + \epsilon_L I)^{-1/4},\ P_R = (R + \epsilon_L I)^{-1/4}
            \quad\text{at } t = 1, 1 + k, 1 + 2k, \dots \text{ (kept otherwise)} \\
        S &= P_L \hat M P_R, \qquad W \leftarrow W - \eta \big(S \cdot
            \lVert A \rVert_F / \lVert S \rVert_F \text{ (grafted) or } S\big)
            - \eta \lambda W

    :math:`A` is Adam's step :math:`\hat M / (\sqrt{V / (1-\beta_2^t)} + \epsilon)`,
    :math:`V \leftarrow \beta_2 V + (1-\beta_2) G^2`; other parameters take :math:`A`.
    ``beta1=0, shampoo_beta=1, update_every=1, graft=False`` is the paper's algorithm:
    :math:`L_t = \epsilon I + \sum_s G_s G_s^T` and
    :math:`W \leftarrow W - \eta L_t^{-1/4} G_t R_t^{-1/4}`. A side longer than
    ``max_dim`` is not preconditioned.
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 shampoo_beta=1.0, shampoo_epsilon=1e-6, update_every=10, graft=True,
                 weight_decay=0.0, max_dim=1024):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, shampoo_beta=shampoo_beta,
                         shampoo_epsilon=shampoo_epsilon, update_every=update_every,
                         graft=graft, weight_decay=weight_decay, max_dim=max_dim)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.L = [np.zeros((p.shape[0],) * 2, self.dtype) if p.ndim == 2 else None
                  for p in params]
        self.R = [np.zeros((p.shape[1],) * 2, self.dtype) if p.ndim == 2 else None
                  for p in params]
        self.PL = [None] * len(params)
        self.PR = [None] * len(params)

    def update(self, i, theta, g):
        b1, b2, t = self.c(self.beta1), self.c(self.beta2), self.c(self.t)
        self.m[i] = b1 * self.m[i] + (1 - b1) * g
        self.v[i] = b2 * self.v[i] + (1 - b2) * g**2
        m_hat = self.m[i] / (1 - b1**t)
        adam = m_hat / (np.sqrt(self.v[i] / (1 - b2**t)) + self.c(self.epsilon))
        sides = _preconditioned_sides(theta.shape, self.max_dim)
        if sides is None:
            step = adam
        else:
            beta_l = self.c(self.shampoo_beta)
            weight = 1 - beta_l if beta_l < 1 else self.c(1)
            refresh = (self.t - 1) % self.update_every == 0
            step = m_hat
            if sides[0]:
                self.L[i] = beta_l * self.L[i] + weight * (g @ g.T)
                if refresh:
                    self.PL[i] = inverse_root(self.L[i], self.shampoo_epsilon, 0.25).astype(
                        self.dtype)
                step = self.PL[i] @ step
            if sides[1]:
                self.R[i] = beta_l * self.R[i] + weight * (g.T @ g)
                if refresh:
                    self.PR[i] = inverse_root(self.R[i], self.shampoo_epsilon, 0.25).astype(
                        self.dtype)
                step = step @ self.PR[i]
            if self.graft:
                norm = np.linalg.norm(step)
                step = step * (np.linalg.norm(adam) / norm if norm > 0 else 0)
        lr = self.c(self.learning_rate)
        return theta - lr * (step + self.c(self.weight_decay) * theta)


class SOAP(Rule):
    r"""Vyas et al. (2024), Algorithm 3 (SOAP), with Adam's bias correction.

    For a matrix :math:`W` (gradient :math:`G`), with :math:`Q_L, Q_R` the eigenvectors
    of :math:`L, R` by decreasing eigenvalue:

    .. math::

        L &\leftarrow \beta_s L + (1-\beta_s) G G^T, \quad
        R \leftarrow \beta_s R + (1-\beta_s) G^T G, \quad
        M \leftarrow \beta_1 M + (1-\beta_1) G \\
        G' &= Q_L^T G Q_R, \quad M' = Q_L^T M Q_R, \quad
        V \leftarrow \beta_2 V + (1-\beta_2) G'^2 \\
        W &\leftarrow W - \eta\, Q_L \frac{M'/(1-\beta_1^t)}{\sqrt{V/(1-\beta_2^t)}
            + \epsilon} Q_R^T - \eta\lambda W

    The bases come from the first step's statistics at :math:`t = 1`, and are recomputed
    at the end of every step :math:`t` with :math:`t \bmod f = 0` (the paper's lines
    12-15), by an eigendecomposition. Other parameters: AdamW (both bases the identity).
    A side longer than ``max_dim`` is not rotated.
    """

    def __init__(self, params, learning_rate=3e-3, beta1=0.95, beta2=0.95, epsilon=1e-8,
                 shampoo_beta=None, update_every=10, weight_decay=0.01, max_dim=1024):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, shampoo_beta=shampoo_beta,
                         update_every=update_every, weight_decay=weight_decay,
                         max_dim=max_dim)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.L = [np.zeros((p.shape[0],) * 2, self.dtype) if p.ndim == 2 else None
                  for p in params]
        self.R = [np.zeros((p.shape[1],) * 2, self.dtype) if p.ndim == 2 else None
                  for p in params]
        self.QL = [None] * len(params)
        self.QR = [None] * len(params)

    def update(self, i, theta, g):
        b1, b2, t = self.c(self.beta1), self.c(self.beta2), self.c(self.t)
        b_s = b2 if self.shampoo_beta is None else self.c(self.shampoo_beta)
        sides = _preconditioned_sides(theta.shape, self.max_dim) or (False, False)
        if sides[0]:
            self.L[i] = b_s * self.L[i] + (1 - b_s) * (g @ g.T)
        if sides[1]:
            self.R[i] = b_s * self.R[i] + (1 - b_s) * (g.T @ g)
        if self.t == 1:  # the first bases, from the first gradient
            if sides[0]:
                self.QL[i] = eigenvectors_descending(self.L[i]).astype(self.dtype)
            if sides[1]:
                self.QR[i] = eigenvectors_descending(self.R[i]).astype(self.dtype)
        self.m[i] = b1 * self.m[i] + (1 - b1) * g
        g_rot, m_rot = g, self.m[i]
        if sides[0]:
            g_rot, m_rot = self.QL[i].T @ g_rot, self.QL[i].T @ m_rot
        if sides[1]:
            g_rot, m_rot = g_rot @ self.QR[i], m_rot @ self.QR[i]
        self.v[i] = b2 * self.v[i] + (1 - b2) * g_rot**2
        step = (m_rot / (1 - b1**t)) / (np.sqrt(self.v[i] / (1 - b2**t))
                                         + self.c(self.epsilon))
        if sides[0]:
            step = self.QL[i] @ step
        if sides[1]:
            step = step @ self.QR[i].T
        if self.t % self.update_every == 0:  # the paper's lines 12-15, after the step
            if sides[0]:
                self.QL[i] = eigenvectors_descending(self.L[i]).astype(self.dtype)
            if sides[1]:
                self.QR[i] = eigenvectors_descending(self.R[i]).astype(self.dtype)
        lr = self.c(self.learning_rate)
        return theta - lr * (step + self.c(self.weight_decay) * theta)


class KFAC:
    r"""Martens & Grosse (2015) for dense layers, with fixed learning rate and momentum and
    the KL clipping of Ba, Grosse & Martens (2017).

    Each step receives, per layer, the parameters ``(W, b)`` (``b`` may be None), the
    layer's inputs :math:`x` (batch x n_in), the examples' own gradients :math:`g` of
    their negative log-likelihoods with respect to the pre-activations (batch x n_out)
    and the gradient of the mini-batch loss :math:`(\nabla W, \nabla b)`:

    .. math::

        a &= [x, 1], \quad \epsilon_t = \min(1 - 1/t, \text{decay}), \quad
        A \leftarrow \epsilon_t A + (1-\epsilon_t) a^T a / n, \quad
        G \leftarrow \epsilon_t G + (1-\epsilon_t) g^T g / n \\
        \pi &= \sqrt{(\mathrm{tr} A / \dim A) / (\mathrm{tr} G / \dim G)}, \quad
        \gamma = \sqrt{\lambda}, \quad
        \Delta = (A + \pi\gamma I)^{-1} [\nabla W; \nabla b] (G + \gamma / \pi I)^{-1}
            \ \text{(inverses at } t = 1, 1+T, \dots) \\
        \nu &= \min\big(1, \sqrt{\kappa / (\eta^2 \textstyle\sum \langle\Delta,
            \nabla\rangle)}\big), \quad v \leftarrow \mu v - \eta\nu\Delta, \quad
        [W; b] \leftarrow [W; b] + v
    """

    def __init__(self, layers, learning_rate=1e-2, momentum=0.9, damping=1e-2, decay=0.95,
                 update_every=20, kl_clip=1e-3):
        self.learning_rate, self.momentum, self.damping = learning_rate, momentum, damping
        self.decay, self.update_every, self.kl_clip = decay, update_every, kl_clip
        self.t = 0
        self.A, self.G, self.A_inv, self.G_inv, self.velocity = [], [], [], [], []
        for W, b in layers:
            n_a = W.shape[0] + (b is not None)
            self.A.append(np.zeros((n_a, n_a)))
            self.G.append(np.zeros((W.shape[1],) * 2))
            self.A_inv.append(None)
            self.G_inv.append(None)
            self.velocity.append(np.zeros((n_a, W.shape[1])))

    def step(self, layers, inputs, output_grads, grads):
        """New ``[(W, b), ...]`` from the layers' values, inputs, output and loss gradients."""
        self.t += 1
        refresh = (self.t - 1) % self.update_every == 0
        eps_t = min(1 - 1 / self.t, self.decay)
        gamma = np.sqrt(self.damping)
        deltas, full_grads = [], []
        for i, ((_, b), x, g, (gW, gb)) in enumerate(zip(layers, inputs, output_grads, grads)):
            n = x.shape[0]
            a = x if b is None else np.hstack([x, np.ones((n, 1))])
            self.A[i] = eps_t * self.A[i] + (1 - eps_t) * (a.T @ a) / n
            self.G[i] = eps_t * self.G[i] + (1 - eps_t) * (g.T @ g) / n
            if refresh:
                pi = np.sqrt((np.trace(self.A[i]) / len(self.A[i]))
                             / (np.trace(self.G[i]) / len(self.G[i])))
                self.A_inv[i] = np.linalg.inv(self.A[i] + pi * gamma * np.eye(len(self.A[i])))
                self.G_inv[i] = np.linalg.inv(self.G[i] + gamma / pi * np.eye(len(self.G[i])))
            full = gW if b is None else np.vstack([gW, gb[None, :]])
            deltas.append(self.A_inv[i] @ full @ self.G_inv[i])
            full_grads.append(full)
        nu = 1.0
        if self.kl_clip is not None:
            total = sum(float((d * f).sum()) for d, f in zip(deltas, full_grads))
            nu = min(1.0, np.sqrt(self.kl_clip / (self.learning_rate**2 * total)))
        new = []
        for i, ((W, b), d) in enumerate(zip(layers, deltas)):
            self.velocity[i] = self.momentum * self.velocity[i] - self.learning_rate * nu * d
            full = (W if b is None else np.vstack([W, b[None, :]])) + self.velocity[i]
            new.append((full, None) if b is None else (full[:-1], full[-1]))
        return new


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


# --------------------------------------------------------------------------------------
# The modern rules (issue 17): each checked step by step against torch.optim 2.13 or
# optax 0.2.8 in float64 (tests/core/test_modern_peers.py). Where the peer departs from
# the paper the transcription follows the peer and the docstring says how they differ.
# State starts at zero; a rule whose state starts elsewhere (Yogi's moments, Prodigy's
# estimate, the schedule-free and Prodigy copies of the initial parameters) says so.
# --------------------------------------------------------------------------------------


def _norm(x):
    """The Frobenius (Euclidean) norm of the whole array."""
    return np.sqrt(np.sum(x * x))


def _newton_schulz(x, coefficients, normalise):
    r"""Quintic Newton-Schulz iteration towards the orthogonal factor of a matrix ``x``.

    ``coefficients`` is one ``(a, b, c)`` per iteration. Works on the wide orientation
    (transposes when rows > columns) after ``normalise`` scales the Frobenius norm to ~1:

    .. math:: A = X X^\top,\quad B = b A + c A A,\quad X \leftarrow a X + B X.
    """
    transposed = x.shape[0] > x.shape[1]
    if transposed:
        x = x.T
    x = normalise(x)
    for a, b, c in coefficients:
        gram = x @ x.T
        gram_update = b * gram + c * (gram @ gram)
        x = a * x + gram_update @ x
    return x.T if transposed else x


class RAdam(Rule):
    r"""RAdam, as ``torch.optim.RAdam`` computes it.

    Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020,
    https://arxiv.org/abs/1908.03265 (Algorithm 2).

    .. math::
        g &\leftarrow g + \lambda\theta \quad(\text{L2; or } \theta \leftarrow
              \theta(1-\eta\lambda) \text{ if decoupled\_weight\_decay})\\
        m &\leftarrow \beta_1 m + (1-\beta_1) g,\qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\qquad \hat m = m/(1-\beta_1^t)\\
        \rho_\infty &= 2/(1-\beta_2) - 1,\qquad
        \rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)\\
        \text{if } \rho_t > 5:&\quad r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}
              {(\rho_\infty-4)(\rho_\infty-2)\rho_t}},\quad
        \theta \leftarrow \theta - \eta\, r_t\, \hat m\,
              \frac{\sqrt{1-\beta_2^t}}{\sqrt{v}+\epsilon}\\
        \text{else}:&\quad \theta \leftarrow \theta - \eta \hat m

    Differences from the paper: the paper has no epsilon and switches at
    :math:`\rho_t > 4`; torch switches at :math:`\rho_t > 5` and adds epsilon to
    :math:`\sqrt{v}` before the bias correction. Defaults agree (lr 1e-3, betas
    0.9/0.999, eps 1e-8).
    """

    RHO_THRESHOLD = 5.0

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 weight_decay=0.0, decoupled_weight_decay=False):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, weight_decay=weight_decay,
                         decoupled_weight_decay=decoupled_weight_decay)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.rectified = 0  # steps that took the rectified branch

    def update(self, i, theta, g):
        lr, b1, b2 = self.learning_rate, self.beta1, self.beta2
        t = self.t
        if self.weight_decay != 0:
            if self.decoupled_weight_decay:
                theta = theta * self.c(1 - lr * self.weight_decay)
            else:
                g = g + self.c(self.weight_decay) * theta
        m = self.m[i] + self.c(1 - b1) * (g - self.m[i])
        v = self.c(b2) * self.v[i] + self.c(1 - b2) * g * g
        self.m[i], self.v[i] = m, v
        bc1 = 1 - b1**t
        bc2 = 1 - b2**t
        m_hat = m / self.c(bc1)
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2**t) / bc2
        if rho_t > self.RHO_THRESHOLD:
            self.rectified += i == 0
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = self.c(bc2**0.5) / (np.sqrt(v) + self.c(self.epsilon))
            return theta - m_hat * self.c(lr) * adaptive * self.c(rect)
        return theta - m_hat * self.c(lr)


class Adafactor(Rule):
    r"""Adafactor without first moment, as ``torch.optim.Adafactor`` computes it.

    Shazeer & Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
    ICML 2018, https://arxiv.org/abs/1804.04235 (Algorithms 4 and 5, relative step size,
    update clipping, :math:`\hat\beta_{2t} = 1 - t^{-0.8}`).

    .. math::
        1-\hat\beta_{2t} &= t^{c}\ (c = \text{beta2\_decay} = -0.8),\qquad
        \rho_t = \min(\eta, 1/\sqrt t),\qquad
        \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\,\rho_t\\
        \theta &\leftarrow \theta(1 - \eta\lambda)\quad(\text{weight decay, after }\alpha_t)\\
        \text{ndim}\ge2:&\quad R \leftarrow \mathrm{lerp}(R, \mathrm{mean}_{-1}(g^2),
              1-\hat\beta_{2t}),\quad C \leftarrow \mathrm{lerp}(C, \mathrm{mean}_{-2}(g^2),
              1-\hat\beta_{2t}),\quad \hat V = \frac{R C}{\max(\mathrm{mean}_{-2}(R),
              \epsilon_1)}\\
        \text{ndim}<2:&\quad \hat V = V \leftarrow \mathrm{lerp}(V, g^2, 1-\hat\beta_{2t})\\
        U &= g / \sqrt{\max(\hat V, \epsilon_1^2)},\qquad
        \theta \leftarrow \theta - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U)/d)}\, U

    (R, C are row and column *means* rather than the paper's sums; the ratio
    :math:`RC/\mathrm{mean}(R)` equals the paper's :math:`RC/1^\top R`.) Factoring is over
    the last two axes of any tensor with ndim >= 2.

    Differences from the paper: torch uses ``lr`` as the cap of :math:`\rho_t` (paper:
    constant 1e-2; torch's default lr 1e-2 reproduces it) and for weight decay (none in
    the paper); epsilon1 defaults to the dtype's machine epsilon (paper: 1e-30) and is
    applied by clamping :math:`\hat V \ge \epsilon_1^2` and the row-mean normaliser
    :math:`\ge\epsilon_1` instead of adding :math:`\epsilon_1` to :math:`g^2`. No
    first moment (the paper's :math:`\beta_1 = 0`). Defaults: torch's (lr 1e-2,
    beta2_decay -0.8, eps (None, 1e-3), d 1, weight_decay 0).
    """

    def __init__(self, params, learning_rate=1e-2, beta2_decay=-0.8, epsilon1=None,
                 epsilon2=1e-3, d=1.0, weight_decay=0.0):
        super().__init__(params, learning_rate=learning_rate, beta2_decay=beta2_decay,
                         epsilon1=epsilon1, epsilon2=epsilon2, d=d,
                         weight_decay=weight_decay)
        self.row_var, self.col_var, self.variance = [], [], []
        for p in params:
            p = np.asarray(p)
            if p.ndim > 1:
                self.row_var.append(np.zeros(p.shape[:-1] + (1,), p.dtype))
                self.col_var.append(np.zeros(p.shape[:-2] + (1, p.shape[-1]), p.dtype))
                self.variance.append(None)
            else:
                self.row_var.append(None)
                self.col_var.append(None)
                self.variance.append(np.zeros_like(p))
        self.clipped = 0  # steps where RMS(U) > d

    def update(self, i, theta, g):
        lr, t = self.learning_rate, float(self.t)
        eps1 = np.finfo(self.dtype).eps if self.epsilon1 is None else self.epsilon1
        one_minus_beta2_t = t**self.beta2_decay
        rho_t = min(lr, 1 / (t**0.5))
        alpha = max(self.epsilon2, float(_norm(theta)) / (theta.size**0.5)) * rho_t
        if self.weight_decay != 0:
            theta = theta * self.c(1 - lr * self.weight_decay)
        w = self.c(one_minus_beta2_t)
        if g.ndim > 1:
            row_mean = np.mean(g * g, axis=-1, keepdims=True)
            self.row_var[i] = self.row_var[i] + w * (row_mean - self.row_var[i])
            col_mean = np.mean(g * g, axis=-2, keepdims=True)
            self.col_var[i] = self.col_var[i] + w * (col_mean - self.col_var[i])
            var_estimate = self.row_var[i] @ self.col_var[i]
            var_estimate = var_estimate / np.maximum(
                np.mean(self.row_var[i], axis=-2, keepdims=True), self.c(eps1))
        else:
            self.variance[i] = self.variance[i] + w * (g * g - self.variance[i])
            var_estimate = self.variance[i].copy()
        u = g / np.sqrt(np.maximum(var_estimate, self.c(eps1 * eps1)))
        denom = max(1.0, float(_norm(u)) / ((u.size**0.5) * self.d))
        self.clipped += denom > 1
        return theta - self.c(alpha / denom) * u


class ASGD(Rule):
    r"""Averaged SGD, as ``torch.optim.ASGD`` computes it (the average is state).

    Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J.
    Control Optim. 30(4), 1992; the step-size and averaging schedules of Xu, "Towards
    Optimal One Pass Large Scale Learning with Averaged Stochastic Gradient Descent",
    2011, https://arxiv.org/abs/1107.2490.

    .. math::
        g &\leftarrow g + \text{wd}\,\theta\\
        \theta &\leftarrow \theta(1 - \lambda\eta_{t-1}) - \eta_{t-1} g\\
        \bar\theta &\leftarrow \bar\theta + \mu_{t-1}(\theta - \bar\theta)
              \quad(\text{a copy when } \mu_{t-1} = 1)\\
        \eta_t &= \frac{\eta_0}{(1 + \lambda\eta_0 t)^{\alpha}},\qquad
        \mu_t = \frac{1}{\max(1, t - t_0)}

    with :math:`\eta_0` the learning rate and :math:`\mu_0 = 1`. :math:`\lambda`
    (``lambd``) is both a decay of the parameters and the step size's decay rate.
    Averaging starts after ``t0`` steps (before, :math:`\bar\theta` tracks
    :math:`\theta`). Defaults: torch's (lr 1e-2, lambd 1e-4, alpha 0.75, t0 1e6, wd 0).
    """

    def __init__(self, params, learning_rate=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
                 weight_decay=0.0):
        super().__init__(params, learning_rate=learning_rate, lambd=lambd, alpha=alpha,
                         t0=t0, weight_decay=weight_decay)
        self.eta = [learning_rate for _ in params]
        self.mu = [1.0 for _ in params]
        self.ax = _zeros(params)

    def averaged_params(self):
        return [a.copy() for a in self.ax]

    def update(self, i, theta, g):
        lr, lambd = self.learning_rate, self.lambd
        if self.weight_decay != 0:
            g = g + self.c(self.weight_decay) * theta
        eta = self.eta[i]
        theta = theta * self.c(1 - lambd * eta)
        theta = theta - self.c(eta) * g
        if self.mu[i] != 1:
            self.ax[i] = self.ax[i] + (theta - self.ax[i]) * self.c(self.mu[i])
        else:
            self.ax[i] = theta.copy()
        t = self.t
        self.eta[i] = lr / ((1 + lambd * lr * t) ** self.alpha)
        self.mu[i] = 1 / max(1, t - self.t0)
        return theta


class Muon(Rule):
    r"""Muon, as ``torch.optim.Muon`` computes it for matrices; AdamW for other shapes.

    Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024 blog
    post, https://kellerjordan.github.io/posts/muon/; learning-rate matching from Liu et
    al., "Muon is Scalable for LLM Training", 2025, https://arxiv.org/abs/2502.16982.

    For a matrix of shape (A, B):

    .. math::
        M &\leftarrow \mu M + (1-\mu) g,\qquad
        \tilde M = (1-\mu) g + \mu M \ \text{(nesterov)} \quad\text{or}\quad M\\
        O &= \mathrm{NS}^{(a,b,c)}_k\big(\tilde M / \max(\|\tilde M\|_F, \epsilon)\big)\\
        \theta &\leftarrow \theta(1 - \eta\lambda) - \eta' O,\qquad
        \eta' = \eta\sqrt{\max(1, A/B)}\ (\text{"original"}),\ \
              0.2\,\eta\sqrt{\max(A, B)}\ (\text{"match\_rms\_adamw"})

    torch refuses any parameter that is not a matrix; symopt (and this class) update
    the others with AdamW, as ``torch.optim.AdamW`` computes it, with the ``adam_*``
    hyperparameters (``adam_learning_rate`` None: the learning rate), so that one rule
    trains a whole network, as optax's muon does. torch runs the Newton-Schulz iteration
    in bfloat16; this transcription (like symopt) in the parameters' dtype. Defaults:
    torch's (lr 1e-3, weight_decay 0.1, momentum 0.95, nesterov, coefficients (3.4445,
    -4.7750, 2.0315), eps 1e-7, 5 steps, "original") and AdamW's (betas 0.9/0.999, eps
    1e-8) with no weight decay (optax's muon's default for the other shapes).
    """

    def __init__(self, params, learning_rate=1e-3, weight_decay=0.1, momentum=0.95,
                 nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315), epsilon=1e-7,
                 ns_steps=5, adjust_lr_fn=None, adam_learning_rate=None, adam_beta1=0.9,
                 adam_beta2=0.999, adam_epsilon=1e-8, adam_weight_decay=0.0):
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"unknown adjust_lr_fn {adjust_lr_fn}")
        super().__init__(params, learning_rate=learning_rate, weight_decay=weight_decay,
                         momentum=momentum, nesterov=nesterov,
                         ns_coefficients=ns_coefficients, epsilon=epsilon,
                         ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
                         adam_learning_rate=adam_learning_rate, adam_beta1=adam_beta1,
                         adam_beta2=adam_beta2, adam_epsilon=adam_epsilon,
                         adam_weight_decay=adam_weight_decay)
        self.buf = _zeros(params)
        self.v = _zeros(params)  # AdamW's second moment, for the other shapes

    def update(self, i, theta, g):
        if theta.ndim != 2:
            return self.adamw(i, theta, g)
        mu = self.momentum
        buf = self.buf[i] + self.c(1 - mu) * (g - self.buf[i])
        self.buf[i] = buf
        u = g + self.c(mu) * (buf - g) if self.nesterov else buf
        eps = self.c(self.epsilon)
        o = _newton_schulz(u, [tuple(self.c(x) for x in self.ns_coefficients)] * self.ns_steps,
                           lambda x: x / np.maximum(_norm(x), eps))
        a, b = theta.shape
        if self.adjust_lr_fn in (None, "original"):
            ratio = math.sqrt(max(1, a / b))
        else:
            ratio = 0.2 * math.sqrt(max(a, b))
        lr = self.learning_rate
        theta = theta * self.c(1 - lr * self.weight_decay)
        return theta - self.c(lr * ratio) * o

    def adamw(self, i, theta, g):
        """``torch.optim.AdamW``'s step."""
        lr = self.learning_rate if self.adam_learning_rate is None else self.adam_learning_rate
        b1, b2, t = self.adam_beta1, self.adam_beta2, self.t
        theta = theta * self.c(1 - lr * self.adam_weight_decay)
        self.buf[i] = self.buf[i] + self.c(1 - b1) * (g - self.buf[i])
        self.v[i] = self.c(b2) * self.v[i] + self.c(1 - b2) * g * g
        step_size = lr / (1 - b1**t)
        denom = np.sqrt(self.v[i]) / self.c((1 - b2**t) ** 0.5) + self.c(self.adam_epsilon)
        return theta - self.c(step_size) * (self.buf[i] / denom)


class LAMB(Rule):
    r"""LAMB, as ``optax.lamb`` computes it.

    You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", ICLR 2020, https://arxiv.org/abs/1904.00962 (Algorithm 2).

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g,\quad v \leftarrow \beta_2 v + (1-\beta_2) g^2,
        \quad \hat m = \frac{m}{1-\beta_1^t},\ \hat v = \frac{v}{1-\beta_2^t}\\
        u &= \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon} + \lambda\theta\\
        \theta &\leftarrow \theta - \eta\, \frac{\|\theta\|}{\|u\|}\, u
              \quad(\text{ratio} = 1 \text{ if either norm is } 0)

    Norms are per parameter array (the paper's "layer"). The paper's scaling function
    :math:`\phi` is the identity here. Defaults: betas 0.9/0.999, eps 1e-6 (paper and
    optax), eps_root 0, weight_decay 0 (optax); learning_rate 1e-3 (optax requires one).
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-6,
                 eps_root=0.0, weight_decay=0.0):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, eps_root=eps_root, weight_decay=weight_decay)
        self.m = _zeros(params)
        self.v = _zeros(params)

    def update(self, i, theta, g):
        b1, b2, t = self.beta1, self.beta2, self.t
        self.m[i] = self.c(1 - b1) * g + self.c(b1) * self.m[i]
        self.v[i] = self.c(1 - b2) * g * g + self.c(b2) * self.v[i]
        m_hat = self.m[i] / self.c(1 - b1**t)
        v_hat = self.v[i] / self.c(1 - b2**t)
        u = m_hat / (np.sqrt(v_hat + self.c(self.eps_root)) + self.c(self.epsilon))
        if self.weight_decay != 0:
            u = u + self.c(self.weight_decay) * theta
        pn, un = _norm(theta), _norm(u)
        ratio = self.c(1.0) if (pn == 0 or un == 0) else pn / un
        return theta + self.c(-self.learning_rate) * (u * ratio)


class LARS(Rule):
    r"""LARS, as ``optax.lars`` computes it.

    You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", 2017,
    https://arxiv.org/abs/1708.03888 (Algorithm 1).

    .. math::
        d &= g + \lambda\theta,\qquad
        r = \frac{\kappa\,\|\theta\|}{\|d\| + \epsilon}\ (1 \text{ if either norm is } 0)\\
        v &\leftarrow \mu v - \eta\, r\, d,\qquad
        \theta \leftarrow \theta + v\quad(\text{nesterov: } \theta + \mu v - \eta r d)

    with :math:`\kappa` the trust coefficient. Differences from the paper: the paper's
    local rate is :math:`\kappa\|\theta\|/(\|g\| + \lambda\|\theta\|)`; optax divides by
    :math:`\|g + \lambda\theta\| + \epsilon`. Defaults: optax's (weight_decay 0,
    trust_coefficient 1e-3 = the paper's eta, eps 0, momentum 0.9, no nesterov);
    learning_rate 1.0 (optax requires one; the paper's global rates are O(1-10)).
    """

    def __init__(self, params, learning_rate=1.0, weight_decay=0.0, trust_coefficient=1e-3,
                 epsilon=0.0, momentum=0.9, nesterov=False):
        super().__init__(params, learning_rate=learning_rate, weight_decay=weight_decay,
                         trust_coefficient=trust_coefficient, epsilon=epsilon,
                         momentum=momentum, nesterov=nesterov)
        self.trace = _zeros(params)

    def update(self, i, theta, g):
        if self.weight_decay != 0:
            g = g + self.c(self.weight_decay) * theta
        pn, gn = _norm(theta), _norm(g)
        if pn == 0 or gn == 0:
            ratio = self.c(1.0)
        else:
            ratio = self.c(self.trust_coefficient) * pn / (gn + self.c(self.epsilon))
        u = self.c(-self.learning_rate) * (g * ratio)
        mu = self.c(self.momentum)
        self.trace[i] = u + mu * self.trace[i]
        step = u + mu * self.trace[i] if self.nesterov else self.trace[i]
        return theta + step


class Yogi(Rule):
    r"""Yogi, as ``optax.yogi`` (with ``optax.scale_by_yogi``'s options) computes it.

    Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for Nonconvex Optimization",
    NeurIPS 2018, https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
    (Algorithm 2).

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g\\
        v &\leftarrow v - (1-\beta_2)\,\mathrm{sign}(v - g^2)\, g^2\\
        \theta &\leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}
              {\sqrt{v/(1-\beta_2^t) + \epsilon_{root}} + \epsilon}

    Differences from the paper: optax bias-corrects both moments (the paper does not)
    and starts both m and v at ``initial_accumulator_value`` (paper: m_0 = 0, v_0
    small). Defaults: lr 1e-2, betas 0.9/0.999, eps 1e-3 (paper and optax agree),
    initial_accumulator_value 1e-6, eps_root 0 (optax).
    """

    def __init__(self, params, learning_rate=1e-2, beta1=0.9, beta2=0.999, epsilon=1e-3,
                 initial_accumulator_value=1e-6, eps_root=0.0):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, initial_accumulator_value=initial_accumulator_value,
                         eps_root=eps_root)
        self.m = [np.full_like(np.asarray(p), initial_accumulator_value) for p in params]
        self.v = [np.full_like(np.asarray(p), initial_accumulator_value) for p in params]

    def update(self, i, theta, g):
        b1, b2, t = self.beta1, self.beta2, self.t
        self.m[i] = self.c(1 - b1) * g + self.c(b1) * self.m[i]
        g2 = g * g
        self.v[i] = self.v[i] - self.c(1 - b2) * np.sign(self.v[i] - g2) * g2
        m_hat = self.m[i] / self.c(1 - b1**t)
        v_hat = self.v[i] / self.c(1 - b2**t)
        u = m_hat / (np.sqrt(v_hat + self.c(self.eps_root)) + self.c(self.epsilon))
        return theta + self.c(-self.learning_rate) * u


class Adan(Rule):
    r"""Adan, as its paper and its authors' code compute it (with optax's decoupled decay).

    Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
    Models", 2022, https://arxiv.org/abs/2208.06677 (Algorithm 1), with the betas written
    as optax and the authors' code write them (:math:`1-\beta` of the paper's).

    .. math::
        \Delta &= g_t - g_{t-1}\ (0 \text{ at } t=1)\\
        m &\leftarrow \beta_1 m + (1-\beta_1) g,\quad
        v \leftarrow \beta_2 v + (1-\beta_2)\Delta,\quad
        n \leftarrow \beta_3 n + (1-\beta_3)\big(g + \beta_2\Delta\big)^2\\
        u &= \frac{\hat m + \beta_2\hat v}{\sqrt{\hat n + \epsilon_{root}} + \epsilon}
              \quad(\hat\cdot = \cdot/(1-\beta^t))\\
        \theta &\leftarrow \theta - \eta(u + \lambda\theta)

    optax 0.2.8 (``optax.adan``) puts :math:`1-\beta_2` where the paper and the authors'
    code put :math:`\beta_2` (the two :math:`\beta_2\Delta` terms above; optax pull
    request 1715 corrects it): the two agree only for :math:`\beta_2 = 1/2`, where the
    peer test compares them. The bias corrections are the authors' code's and optax's;
    the weight decay is decoupled, :math:`-\eta\lambda\theta`, as in optax and the
    authors' ``no_prox=True``, instead of the paper's proximal
    :math:`\theta/(1+\eta\lambda)`. Defaults: optax's and the authors' (betas
    0.98/0.92/0.99, eps 1e-8, eps_root 1e-8, weight_decay 0); learning_rate 1e-3.
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.98, beta2=0.92, beta3=0.99,
                 epsilon=1e-8, eps_root=1e-8, weight_decay=0.0):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         beta3=beta3, epsilon=epsilon, eps_root=eps_root,
                         weight_decay=weight_decay)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.n = _zeros(params)
        self.g_prev = _zeros(params)

    def update(self, i, theta, g):
        b1, b2, b3, t = self.beta1, self.beta2, self.beta3, self.t
        diff = np.zeros_like(g) if t == 1 else g - self.g_prev[i]
        self.g_prev[i] = g
        self.m[i] = self.c(1 - b1) * g + self.c(b1) * self.m[i]
        self.v[i] = self.c(1 - b2) * diff + self.c(b2) * self.v[i]
        sq = g + self.c(b2) * diff
        self.n[i] = self.c(1 - b3) * sq * sq + self.c(b3) * self.n[i]
        m_hat = self.m[i] / self.c(1 - b1**t)
        v_hat = self.v[i] / self.c(1 - b2**t)
        n_hat = self.n[i] / self.c(1 - b3**t)
        u = (m_hat + self.c(b2) * v_hat) / (
            np.sqrt(n_hat + self.c(self.eps_root)) + self.c(self.epsilon))
        if self.weight_decay != 0:
            u = u + self.c(self.weight_decay) * theta
        return theta + self.c(-self.learning_rate) * u


class AdaBelief(Rule):
    r"""AdaBelief, as ``optax.adabelief`` computes it.

    Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
    Gradients", NeurIPS 2020, https://arxiv.org/abs/2010.07468 (Algorithm 2).

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g\\
        s &\leftarrow \beta_2 s + (1-\beta_2)(g - m)^2 + \epsilon_{root}\\
        \theta &\leftarrow \theta - \eta\,\frac{\hat m}{\sqrt{s/(1-\beta_2^t)} + \epsilon},
        \qquad \hat m = \frac{m}{1-\beta_1^t}\ \text{or (nesterov)}\
        \frac{\beta_1 m}{1-\beta_1^{t+1}} + \frac{(1-\beta_1) g}{1-\beta_1^t}

    Same as the paper (its :math:`\epsilon` inside :math:`s` is optax's ``eps_root``).
    Defaults: betas 0.9/0.999, eps 1e-16, eps_root 1e-16 (optax and the authors' code);
    learning_rate 1e-3 (optax requires one).
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-16,
                 eps_root=1e-16, nesterov=False):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, eps_root=eps_root, nesterov=nesterov)
        self.m = _zeros(params)
        self.s = _zeros(params)

    def update(self, i, theta, g):
        b1, b2, t = self.beta1, self.beta2, self.t
        self.m[i] = self.c(1 - b1) * g + self.c(b1) * self.m[i]
        e = g - self.m[i]
        self.s[i] = self.c(1 - b2) * e * e + self.c(b2) * self.s[i] + self.c(self.eps_root)
        if self.nesterov:
            m_hat = (self.c(b1) * (self.m[i] / self.c(1 - b1 ** (t + 1)))
                     + self.c(1 - b1) * (g / self.c(1 - b1**t)))
        else:
            m_hat = self.m[i] / self.c(1 - b1**t)
        s_hat = self.s[i] / self.c(1 - b2**t)
        u = m_hat / (np.sqrt(s_hat) + self.c(self.epsilon))
        return theta + self.c(-self.learning_rate) * u


class NovoGrad(Rule):
    r"""NovoGrad, as ``optax.novograd`` computes it.

    Ginsburg et al., "Stochastic Gradient Methods with Layer-wise Adaptive Moments for
    Training of Deep Networks", 2019, https://arxiv.org/abs/1905.11286 (Algorithm 1).

    .. math::
        v_1 &= \|g_1\|^2,\qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\|g_t\|^2
              \quad(\text{one scalar per parameter array})\\
        d_t &= \frac{g_t}{\sqrt{v_t + \epsilon_{root}} + \epsilon} + \lambda\theta,\qquad
        m_1 = d_1,\quad m_t = \beta_1 m_{t-1} + d_t\\
        \theta &\leftarrow \theta - \eta\, m_t

    Same as the paper. Defaults: optax's (betas 0.9/0.25, eps 1e-6, eps_root 0,
    weight_decay 0); learning_rate 1e-3 (optax requires one).
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.25, epsilon=1e-6,
                 eps_root=0.0, weight_decay=0.0):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, eps_root=eps_root, weight_decay=weight_decay)
        self.m = _zeros(params)
        self.v = [self.c(0.0) for _ in params]

    def update(self, i, theta, g):
        b1, b2 = self.beta1, self.beta2
        sq_norm = np.sum(g * g)
        if self.t == 1:
            self.v[i] = sq_norm
        else:
            self.v[i] = self.c(1 - b2) * sq_norm + self.c(b2) * self.v[i]
        d = (g / (np.sqrt(self.v[i] + self.c(self.eps_root)) + self.c(self.epsilon))
             + self.c(self.weight_decay) * theta)
        self.m[i] = d if self.t == 1 else self.c(b1) * self.m[i] + d
        return theta + self.c(-self.learning_rate) * self.m[i]


class ADOPT(Rule):
    r"""ADOPT, as ``optax.contrib.adopt`` computes it.

    Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any :math:`\beta_2` with the
    Optimal Rate", NeurIPS 2024, https://arxiv.org/abs/2411.02853 (Algorithm 2, clipped).

    With :math:`k = t-1` (the number of earlier steps):

    .. math::
        k = 0:&\quad v \leftarrow g^2,\quad \text{no parameter change}\\
        k \ge 1:&\quad \tilde g = \mathrm{clip}\Big(\frac{g}{\max(\sqrt{v_{old}},\epsilon)},
              \pm c(k)\Big),\quad m \leftarrow \beta_1 m + (1-\beta_1)\tilde g,\quad
              v \leftarrow \beta_2 v + (1-\beta_2) g^2\\
        &\quad \theta \leftarrow \theta - \eta\,m\quad(\text{nesterov: }
              \theta - \eta(\beta_1 m + (1-\beta_1)\tilde g))

    where :math:`c(k)` is ``clip_value_fn(k)``, :math:`k^{1/4}` when None (no clipping
    with ``use_clipping=False``). Defaults: optax's and the paper's (betas 0.9/0.9999,
    eps 1e-6, clipping on, no nesterov); learning_rate 1e-3 (the authors' code).
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.9999, epsilon=1e-6,
                 nesterov=False, use_clipping=True, clip_value_fn=None):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, nesterov=nesterov, use_clipping=use_clipping,
                         clip_value_fn=clip_value_fn)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.clipped = 0  # elements clipped over the run

    def update(self, i, theta, g):
        k = self.t - 1
        if k == 0:
            self.v[i] = g * g
            return theta + self.c(-self.learning_rate) * self.m[i]  # m is 0: no change
        b1, b2 = self.beta1, self.beta2
        normed = g / np.maximum(np.sqrt(self.v[i]), self.c(self.epsilon))
        if self.use_clipping:
            clip = self.clip_value_fn or (lambda count: count**0.25)
            cv = self.c(clip(k))
            self.clipped += int(np.sum(np.abs(normed) > cv))
            normed = np.clip(normed, -cv, cv)
        self.v[i] = self.c(1 - b2) * g * g + self.c(b2) * self.v[i]
        self.m[i] = self.c(1 - b1) * normed + self.c(b1) * self.m[i]
        u = self.c(1 - b1) * normed + self.c(b1) * self.m[i] if self.nesterov else self.m[i]
        return theta + self.c(-self.learning_rate) * u


class AdEMAMix(Rule):
    r"""AdEMAMix, as ``optax.contrib.ademamix`` computes it.

    Pagliardini, Ablin & Grangier, "The AdEMAMix Optimizer: Better, Faster, Older",
    2024, https://arxiv.org/abs/2409.03137 (Algorithm 1).

    .. math::
        m_1 &\leftarrow \beta_1 m_1 + (1-\beta_1) g,\quad
        m_2 \leftarrow \beta_3 m_2 + (1-\beta_3) g,\quad
        \nu \leftarrow \beta_2 \nu + (1-\beta_2) g^2\\
        \theta &\leftarrow \theta - \eta\Big(\frac{m_1/(1-\beta_1^t) + \alpha\, m_2}
              {\sqrt{\nu/(1-\beta_2^t) + \epsilon_{root}} + \epsilon} + \lambda\theta\Big)

    The slow EMA :math:`m_2` is not bias-corrected (as in the paper). ``beta3`` and
    ``alpha`` may be callables of the step count :math:`t-1` (the paper's warm-up
    schedulers). Defaults: optax.contrib.ademamix's (betas 0.9/0.999/0.9999, alpha 5.0,
    eps 1e-8, eps_root 0, weight_decay 0); learning_rate 1e-3 (optax requires one).
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, beta3=0.9999,
                 alpha=5.0, epsilon=1e-8, eps_root=0.0, weight_decay=0.0):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         beta3=beta3, alpha=alpha, epsilon=epsilon, eps_root=eps_root,
                         weight_decay=weight_decay)
        self.m1 = _zeros(params)
        self.m2 = _zeros(params)
        self.nu = _zeros(params)

    def update(self, i, theta, g):
        b1, b2, t = self.beta1, self.beta2, self.t
        b3 = self.beta3(t - 1) if callable(self.beta3) else self.beta3
        alpha = self.alpha(t - 1) if callable(self.alpha) else self.alpha
        self.m1[i] = self.c(1 - b1) * g + self.c(b1) * self.m1[i]
        self.m2[i] = self.c(1 - b3) * g + self.c(b3) * self.m2[i]
        self.nu[i] = self.c(1 - b2) * g * g + self.c(b2) * self.nu[i]
        m1_hat = self.m1[i] / self.c(1 - b1**t)
        nu_hat = self.nu[i] / self.c(1 - b2**t)
        u = (m1_hat + self.c(alpha) * self.m2[i]) / (
            np.sqrt(nu_hat + self.c(self.eps_root)) + self.c(self.epsilon))
        if self.weight_decay != 0:
            u = u + self.c(self.weight_decay) * theta
        return theta + self.c(-self.learning_rate) * u


class _ScheduleFree(Rule):
    r"""What schedule-free SGD and AdamW share (``optax.contrib.schedule_free``'s form).

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024,
    https://arxiv.org/abs/2405.15682. The parameters the rule sees (where gradients are
    taken) are :math:`y`; ``z`` is state, starting at the initial parameters; :math:`x`
    is recomputed from y and z each step, as optax does.
    """

    def _init_schedule_free(self, params):
        self.z = [np.array(p, dtype=self.dtype, copy=True) for p in params]
        self.weight_sum = 0.0
        self.max_lr = 0.0
        self.y = [np.array(p, dtype=self.dtype, copy=True) for p in params]

    def schedule(self, count):
        """``optax.warmup_constant_schedule(0, lr, warmup_steps)``, or the constant lr."""
        lr = self.learning_rate
        if self.warmup_steps is None or self.warmup_steps <= 0:
            return lr
        w = self.warmup_steps
        frac = 1 - min(max(count, 0), w) / w
        return (0 - lr) * frac + lr

    def base_update(self, i, y, g, lr):  # pragma: no cover - subclasses override
        raise NotImplementedError

    def step(self, params, grads):
        self.t += 1
        b1 = self.c(self.beta1)
        lr_weight = self.schedule(self.t)       # optax: learning_rate(step_count), from 1
        lr_base = self.schedule(self.t - 1)     # the inner optimizer's own count, from 0
        self.max_lr = max(self.max_lr, lr_weight)
        weight = self.max_lr**self.weight_lr_power
        total = self.weight_sum + weight
        ck = 0.0 if total == 0 else weight / total
        self.weight_sum = total
        ck = self.c(ck)
        new = []
        for i, (y, g) in enumerate(zip(params, grads)):
            y = np.asarray(y, dtype=self.dtype)
            g = np.asarray(g, dtype=self.dtype)
            z_old = self.z[i]
            z = z_old + self.base_update(i, y, g, lr_base)
            prev_x = (y - (1 - b1) * z_old) / b1
            x = (1 - ck) * prev_x + ck * z
            y_new = b1 * x + (1 - b1) * z
            self.z[i] = z
            new.append(y + (y_new - y))
        self.y = [p.copy() for p in new]
        return new

    def eval_params(self, params=None):
        r""":math:`x = (y - (1-\beta_1) z)/\beta_1`, optax's ``schedule_free_eval_params``."""
        ys = self.y if params is None else params
        b1 = self.c(self.beta1)
        return [(np.asarray(y, dtype=self.dtype) - (1 - b1) * z) / b1
                for y, z in zip(ys, self.z)]


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-free SGD, as ``optax.contrib.schedule_free_sgd`` computes it.

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024,
    https://arxiv.org/abs/2405.15682. The parameters are :math:`y`, where the gradients
    are taken.

    .. math::
        \gamma^w_t &= \mathrm{lr}(t),\ \ \gamma_t = \mathrm{lr}(t-1)
              \quad(\mathrm{lr}(k) = \eta\min(k, W)/W \text{ with warm-up, else } \eta)\\
        c_t &= \frac{(\max_{i\le t}\gamma^w_i)^{p}}{\sum_{i\le t}(\max_{j\le i}\gamma^w_j)^{p}}\\
        z &\leftarrow z - \gamma_t (g + \lambda y)\\
        x &\leftarrow (1-c_t)\,x + c_t z,\qquad
        y \leftarrow \beta_1 x + (1-\beta_1) z

    with :math:`x` recomputed as :math:`(y - (1-\beta_1) z_{old})/\beta_1` and
    :math:`x_1 = y_1 = z_1` the initial parameters. :meth:`eval_params` gives x.
    Differences from the paper: the paper weights by :math:`\gamma_t^2`; optax (like the
    authors' code) by the running maximum of the schedule to the power
    ``weight_lr_power``; with warm-up optax evaluates the weight's schedule one step
    ahead of the z step's (the first z step is zero). Defaults: optax's (lr 1.0, no
    warm-up, b1 0.9, weight_decay 0, weight_lr_power 2).
    """

    def __init__(self, params, learning_rate=1.0, warmup_steps=None, beta1=0.9,
                 weight_decay=0.0, weight_lr_power=2.0):
        super().__init__(params, learning_rate=learning_rate, warmup_steps=warmup_steps,
                         beta1=beta1, weight_decay=weight_decay,
                         weight_lr_power=weight_lr_power)
        self._init_schedule_free(params)

    def base_update(self, i, y, g, lr):
        if self.weight_decay:
            g = g + self.c(self.weight_decay) * y
        return self.c(-lr) * g


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-free AdamW, as ``optax.contrib.schedule_free_adamw`` computes it.

    Defazio et al., "The Road Less Scheduled", NeurIPS 2024,
    https://arxiv.org/abs/2405.15682 (Algorithm 1). As :class:`ScheduleFreeSGD`, with the
    z step

    .. math::
        v &\leftarrow \beta_2 v + (1-\beta_2) g^2\\
        z &\leftarrow z - \gamma_t\Big(\frac{g}{\sqrt{v/(1-\beta_2^t)} + \epsilon}
              + \lambda y\Big)

    Differences from the paper: the paper folds the bias correction into the step size
    (:math:`\gamma_t\sqrt{1-\beta_2^t}`, eps outside) and weights the average by that
    corrected :math:`\gamma_t^2`; optax bias-corrects v and weights by the uncorrected
    maximum. Weight decay at y, as in the paper. Defaults: optax's (lr 0.0025, no
    warm-up, betas 0.9/0.999, eps 1e-8, weight_decay 0, weight_lr_power 2).
    """

    def __init__(self, params, learning_rate=0.0025, warmup_steps=None, beta1=0.9,
                 beta2=0.999, epsilon=1e-8, weight_decay=0.0, weight_lr_power=2.0):
        super().__init__(params, learning_rate=learning_rate, warmup_steps=warmup_steps,
                         beta1=beta1, beta2=beta2, epsilon=epsilon,
                         weight_decay=weight_decay, weight_lr_power=weight_lr_power)
        self._init_schedule_free(params)
        self.v = _zeros(params)

    def base_update(self, i, y, g, lr):
        b2 = self.beta2
        self.v[i] = self.c(1 - b2) * g * g + self.c(b2) * self.v[i]
        v_hat = self.v[i] / self.c(1 - b2**self.t)
        u = (1 / (np.sqrt(v_hat) + self.c(self.epsilon))) * g
        if self.weight_decay != 0:
            u = u + self.c(self.weight_decay) * y
        return self.c(-lr) * u


class Prodigy(Rule):
    r"""Prodigy (its Adam form), as ``optax.contrib.prodigy`` computes it.

    Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
    ICML 2024, https://arxiv.org/abs/2306.06101 (the Adam form of the authors' code).

    With :math:`d` the current estimate (``estim_lr``, starting at estim_lr0 =
    :math:`d_0`), :math:`\gamma` the learning rate and :math:`x_0` the initial
    parameters:

    .. math::
        \hat\gamma &= d\,\gamma\,\sqrt{1-\beta_2^t}/(1-\beta_1^t)\\
        m &\leftarrow \beta_1 m + (1-\beta_1) d g,\quad
        v \leftarrow \beta_2 v + (1-\beta_2) d^2 g^2\\
        s &\leftarrow \beta_3 s + \hat\gamma\, d g / d_0\quad
              (\text{safeguard\_warmup: } d^2 g / d_0)\\
        r &\leftarrow \beta_3 r + (d/d_0)\,\hat\gamma\,\langle g, x_0 - x\rangle\\
        d' &= \max(d, \kappa\, r / \|s\|_1)\quad(\kappa = \text{estim\_lr\_coef})\\
        x &\leftarrow x - \hat\gamma\lambda x - \hat\gamma\, m / (\sqrt v + d'\epsilon)

    Inner products and the l1 norm run over all parameters together. The update uses
    the old :math:`d` in :math:`\hat\gamma` and the new :math:`d'` in the epsilon term
    (as the authors' code). Defaults: optax's (lr 1.0, betas 0.9/0.999, beta3 None =
    sqrt(beta2), eps 1e-8, estim_lr0 1e-6, estim_lr_coef 1, weight_decay 0, no
    safeguard), which are the authors' code's.
    """

    def __init__(self, params, learning_rate=1.0, beta1=0.9, beta2=0.999, beta3=None,
                 epsilon=1e-8, estim_lr0=1e-6, estim_lr_coef=1.0, weight_decay=0.0,
                 safeguard_warmup=False):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         beta3=beta3, epsilon=epsilon, estim_lr0=estim_lr0,
                         estim_lr_coef=estim_lr_coef, weight_decay=weight_decay,
                         safeguard_warmup=safeguard_warmup)
        self.exp_avg = _zeros(params)
        self.exp_avg_sq = _zeros(params)
        self.grad_sum = _zeros(params)
        self.params0 = [np.array(p, dtype=self.dtype, copy=True) for p in params]
        self.estim_lr = self.c(estim_lr0)
        self.numerator_weighted = self.c(0.0)

    def step(self, params, grads):
        self.t += 1
        t = self.t
        b1, b2 = self.beta1, self.beta2
        b3 = self.c(b2**0.5 if self.beta3 is None else self.beta3)
        params = [np.asarray(p, dtype=self.dtype) for p in params]
        grads = [np.asarray(g, dtype=self.dtype) for g in grads]
        d, d0 = self.estim_lr, self.c(self.estim_lr0)
        bc = ((1 - b2**t) ** 0.5) / (1 - b1**t)
        dlr = self.c(d * self.learning_rate * bc)
        dg = [d * g for g in grads]
        numerator_acum = sum(np.sum(g * (p0 - p)) for g, p0, p in zip(grads, self.params0, params))
        self.exp_avg = [self.c(b1) * ea + self.c(1 - b1) * x for ea, x in zip(self.exp_avg, dg)]
        self.exp_avg_sq = [self.c(b2) * s + self.c(1 - b2) * x * x
                           for s, x in zip(self.exp_avg_sq, dg)]
        scale = d if self.safeguard_warmup else dlr
        self.grad_sum = [b3 * s + scale * x / d0 for s, x in zip(self.grad_sum, dg)]
        self.numerator_weighted = b3 * self.numerator_weighted + (d / d0) * dlr * numerator_acum
        denominator = sum(np.sum(np.abs(s)) for s in self.grad_sum)
        lr_estimate = self.c(self.estim_lr_coef) * self.numerator_weighted / denominator
        self.estim_lr = max(d, lr_estimate)
        wd, eps = self.c(self.weight_decay), self.c(self.epsilon)
        return [p + (-wd * dlr * p - dlr * ea / (np.sqrt(es) + self.estim_lr * eps))
                for p, ea, es in zip(params, self.exp_avg, self.exp_avg_sq)]


# --------------------------------------------------------------------------------------
# Rules that need the loss: a test gives them ``gradient(params)`` and
# ``hessian_vector_product(params, vectors)`` of its problem, as attributes.
# --------------------------------------------------------------------------------------


class SAM(Rule):
    r"""Sharpness-aware minimisation with (momentum) SGD, one step per pair of gradients.

    Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for Efficiently
    Improving Generalization", ICLR 2021, https://arxiv.org/abs/2010.01412 (Algorithm 1,
    p = 2):

    .. math::
        \epsilon &= \rho\, g / \|g\|_2 \quad(\text{norm over all parameters; } 0
              \text{ when } g = 0)\\
        \tilde g &= \nabla L(\theta + \epsilon)\\
        v &\leftarrow \mu v - \eta \tilde g,\qquad \theta \leftarrow \theta + v

    (plain SGD with :math:`\mu = 0`). ``rule``, when given, is a rule of this module's
    (a class and its keyword arguments) that steps from :math:`\tilde g` instead of SGD.
    One step of this class is two calls of ``optax.contrib.sam`` in its plain mode with
    ``sync_period=2``. Defaults: rho 0.05 (the paper), learning_rate 1e-2, momentum 0.
    """

    gradient = None  # set by the test: params -> the gradients there

    def __init__(self, params, learning_rate=1e-2, rho=0.05, momentum=0.0, rule=None):
        super().__init__(params, learning_rate=learning_rate, rho=rho, momentum=momentum,
                         rule=rule)
        self.velocity = _zeros(params)
        if rule is not None:
            cls, kwargs = rule
            self.inner = cls(params, **kwargs)

    def step(self, params, grads):
        self.t += 1
        params = [np.asarray(p, dtype=self.dtype) for p in params]
        grads = [np.asarray(g, dtype=self.dtype) for g in grads]
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        rho = self.c(self.rho)
        perturbed = [p + (rho * (g / norm) if norm > 0 else np.zeros_like(g))
                     for p, g in zip(params, grads)]
        at_perturbed = [np.asarray(g, dtype=self.dtype) for g in self.gradient(perturbed)]
        if self.rule is not None:
            return self.inner.step(params, at_perturbed)
        lr, mu = self.c(self.learning_rate), self.c(self.momentum)
        out = []
        for i, (p, g) in enumerate(zip(params, at_perturbed)):
            if self.momentum:
                self.velocity[i] = mu * self.velocity[i] - lr * g
                out.append(p + self.velocity[i])
            else:
                out.append(p - lr * g)
        return out


def _hutchinson_probes(rng, params, kind, dtype):
    """One flat draw for all parameters, split and shaped (the order symopt draws in)."""
    n = sum(np.asarray(p).size for p in params)
    flat = (rng.normal(0.0, 1.0, size=n) if kind == "normal"
            else 2.0 * rng.integers(0, 2, size=n) - 1.0).astype(dtype)
    out, start = [], 0
    for p in params:
        p = np.asarray(p)
        out.append(flat[start:start + p.size].reshape(p.shape))
        start += p.size
    return out


class Sophia(Rule):
    r"""Sophia-H: a clipped, Hutchinson-preconditioned momentum (Algorithm 3 of the paper).

    Liu, Li, Hall, Liang & Ma, "Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training", ICLR 2024, https://arxiv.org/abs/2305.14342.

    .. math::
        m &\leftarrow \beta_1 m + (1-\beta_1) g\\
        \text{every } k \text{ steps } (t \bmod k = 1):&\quad
              \hat h = u \odot (H u),\ u \sim N(0, I)\ \text{(or random signs)},\quad
              h \leftarrow \beta_2 h + (1-\beta_2)\hat h\\
        \theta &\leftarrow \theta - \eta\big(\mathrm{clip}(m / \max(\gamma h, \epsilon), 1)
              + \lambda\theta\big)

    with clip(z, 1) = max(min(z, 1), -1). The probe :math:`u` is drawn at every step
    from ``numpy.random.default_rng(seed)``, one flat vector for all parameters, the
    way symopt draws it; only the refresh steps use it. Defaults: the authors' code's
    (lr 1e-4, beta1 0.965, beta2 0.99) and the paper's (eps 1e-12, gamma 0.01, every 10);
    weight decay 1e-4 (optax's).
    """

    hessian_vector_product = None  # set by the test: (params, vectors) -> H v

    def __init__(self, params, learning_rate=1e-4, beta1=0.965, beta2=0.99, epsilon=1e-12,
                 gamma=0.01, weight_decay=1e-4, every=10, probe="normal", seed=None):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, gamma=gamma, weight_decay=weight_decay,
                         every=every, probe=probe, seed=seed)
        self.m = _zeros(params)
        self.h = _zeros(params)
        self.rng = np.random.default_rng(seed)
        self.clipped = 0  # elements at the clip, over the run

    def step(self, params, grads):
        self.t += 1
        params = [np.asarray(p, dtype=self.dtype) for p in params]
        grads = [np.asarray(g, dtype=self.dtype) for g in grads]
        probes = _hutchinson_probes(self.rng, params, self.probe, self.dtype)
        refresh = (self.t - 1) % self.every == 0
        if refresh:
            hv = self.hessian_vector_product(params, probes)
        b1, b2 = self.c(self.beta1), self.c(self.beta2)
        lr, wd = self.c(self.learning_rate), self.c(self.weight_decay)
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            if refresh:
                self.h[i] = b2 * self.h[i] + (1 - b2) * (probes[i] * np.asarray(hv[i]))
            ratio = self.m[i] / np.maximum(self.c(self.gamma) * self.h[i],
                                           self.c(self.epsilon))
            self.clipped += int(np.sum(np.abs(ratio) > 1))
            out.append(p - lr * (np.clip(ratio, -1, 1) + wd * p))
        return out


class AdaHessian(Rule):
    r"""AdaHessian: Adam with the Hutchinson estimate of the Hessian's diagonal for the
    gradient's square.

    Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney, "ADAHESSIAN: An Adaptive Second
    Order Optimizer for Machine Learning", AAAI 2021, https://arxiv.org/abs/2006.00719
    (Algorithm 1).

    .. math::
        D &= z \odot (H z),\ z \text{ random signs (Rademacher)},\ \text{for a 4-D
              kernel } D \leftarrow \mathrm{mean}_{\text{last two axes}} |D|\\
        m &\leftarrow \beta_1 m + (1-\beta_1) g,\qquad
        v \leftarrow \beta_2 v + (1-\beta_2) D^2\\
        \theta &\leftarrow \theta - \eta\Big(\frac{m/(1-\beta_1^t)}
              {(\sqrt{v}/\sqrt{1-\beta_2^t})^k + \epsilon} + \lambda\theta\Big)

    with :math:`k` the Hessian power; the probe as in :class:`Sophia`. Defaults: the
    paper's and the authors' code's (lr 0.15, betas 0.9/0.999, eps 1e-4, weight_decay 0,
    hessian_power 1, Rademacher probes).
    """

    hessian_vector_product = None  # set by the test

    def __init__(self, params, learning_rate=0.15, beta1=0.9, beta2=0.999, epsilon=1e-4,
                 weight_decay=0.0, hessian_power=1.0, probe="rademacher", seed=None):
        super().__init__(params, learning_rate=learning_rate, beta1=beta1, beta2=beta2,
                         epsilon=epsilon, weight_decay=weight_decay,
                         hessian_power=hessian_power, probe=probe, seed=seed)
        self.m = _zeros(params)
        self.v = _zeros(params)
        self.rng = np.random.default_rng(seed)

    def step(self, params, grads):
        self.t += 1
        t = self.t
        params = [np.asarray(p, dtype=self.dtype) for p in params]
        grads = [np.asarray(g, dtype=self.dtype) for g in grads]
        probes = _hutchinson_probes(self.rng, params, self.probe, self.dtype)
        hv = self.hessian_vector_product(params, probes)
        b1, b2 = self.c(self.beta1), self.c(self.beta2)
        k = self.c(self.hessian_power)
        bc1, bc2 = self.c(1 - self.beta1**t), self.c(1 - self.beta2**t)
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            d = probes[i] * np.asarray(hv[i])
            if d.ndim == 4:
                d = np.mean(np.abs(d), axis=(2, 3), keepdims=True) * np.ones_like(d)
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * d * d
            denom = (np.sqrt(self.v[i]) / np.sqrt(bc2)) ** k + self.c(self.epsilon)
            u = (self.m[i] / bc1) / denom + self.c(self.weight_decay) * p
            out.append(p - self.c(self.learning_rate) * u)
        return out


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
