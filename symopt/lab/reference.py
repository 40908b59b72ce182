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
