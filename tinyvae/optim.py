"""Optimizers: SGD with momentum, Adagrad and Adam, each walking the keys of a params/grads pair.

An optimizer is handed two flat dicts with the same keys, ``params`` and the ``grads`` that
``vae.loss_and_grads`` returns, and moves every parameter a little way downhill. It works
IN PLACE: each array of ``params`` is overwritten by NumPy ufuncs (``out=``, or ``-=`` which
is the same thing) and no dict entry is ever rebound, so a training loop, a checkpoint or a
fast path that holds a reference to ``params["encoder.W0"]`` always sees the current values.

An optimizer's memory (a velocity, a running sum of squares, two moment estimates) is a set of
plain arrays, one per parameter, with the parameter's shape and dtype (float32 training stays
float32), plus a step counter. ``state_dict()`` returns it as a flat dict of arrays with string
keys, ``"step"`` (a 0-d int64 array) and ``"<slot>/<parameter key>"`` such as
``"m/encoder.W0"``, which ``np.savez`` writes as is; ``load_state_dict`` restores it exactly, so
a resumed run continues bit for bit as if it had never stopped. (Whether a saved state can be
trusted is checked where checkpoints are read: tinyvae/lab/storage/optimizer_state.py.)

Notation in the docstrings: θ a parameter, g its gradient, η the learning rate ``lr``,
t the number of steps taken, counting this one (so t = 1 on the first step). (The docs keep θ for
the decoder's weights and φ for the encoder's; an optimizer treats both alike, so θ here is any.)

References
- B. T. Polyak (1964), "Some methods of speeding up the convergence of iteration methods",
  USSR Comp. Math. and Math. Physics 4(5); I. Sutskever, J. Martens, G. Dahl, G. Hinton (2013),
  "On the importance of initialization and momentum in deep learning", ICML, equation 1.
- J. Duchi, E. Hazan, Y. Singer (2011), "Adaptive subgradient methods for online learning and
  stochastic optimization", JMLR 12. Kingma & Welling (2014), "Auto-Encoding Variational Bayes",
  ICLR, Section 5, trained their VAEs with it.
- D. P. Kingma, J. Ba (2015), "Adam: a method for stochastic optimization", ICLR, Algorithm 1.
- R. Pascanu, T. Mikolov, Y. Bengio (2013), "On the difficulty of training recurrent neural
  networks", ICML, Algorithm 1 (clipping the gradient by its norm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ._checks import finite_real, lookup

__all__ = ["Optimizer", "SGD", "Adagrad", "Adam", "make_optimizer", "clip_by_global_norm"]


class Optimizer:
    """What the three optimizers share: walking the keys, clipping, and the state.

    A subclass names its per-parameter state arrays in ``slots``, its hyperparameters beyond
    lr and clip_norm in ``hyper``, and implements ``_update(theta, g, state)``, which changes
    ``theta`` (and the arrays in ``state``) in place.
    """

    name = "optimizer"
    slots: tuple[str, ...] = ()  # names of the per-parameter state arrays
    hyper: tuple[str, ...] = ()  # names of the hyperparameters beyond lr and clip_norm

    def __init__(self, lr: float, clip_norm: float | None = None):
        self.lr = _positive("lr", lr)
        self.clip_norm = None if clip_norm is None else _positive("clip_norm", clip_norm)
        self.t = 0  # number of steps taken
        self.last_grad_norm: float | None = None  # ‖g‖ before clipping (only when clip_norm is set)
        # one dict per slot, keyed like params; created on the first step (or by load_state_dict)
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update every array of ``params`` in place from the gradient under the same key."""
        _check_params_and_grads(params, grads)
        if self.clip_norm is not None:
            grads, self.last_grad_norm = clip_by_global_norm(grads, self.clip_norm)
        for slot in self.slots:
            if not self.state[slot]:
                # zeros of each parameter's shape and dtype: float32 stays float32
                self.state[slot] = {key: np.zeros_like(theta) for key, theta in params.items()}
        self.t += 1
        for key, theta in params.items():
            self._update(theta, grads[key], {slot: self.state[slot][key] for slot in self.slots})

    def _update(self, theta: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def hparams(self) -> dict:
        """The hyperparameters as a JSON-able dict;
        ``make_optimizer(**opt.hparams())`` rebuilds it."""
        return {"name": self.name, "lr": self.lr, **{h: getattr(self, h) for h in self.hyper},
                "clip_norm": self.clip_norm}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of copies: ``"step"`` (0-d int64) and ``"<slot>/<key>"``
        for each state array."""
        out = {"step": np.array(self.t, dtype=np.int64)}
        for slot in self.slots:
            for key, arr in self.state[slot].items():
                out[f"{slot}/{key}"] = arr.copy()
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what ``state_dict()`` returned, as copies
        (later steps do not write into ``state``).

        The state is taken as it is: a checkpoint's is checked before it gets here
        (tinyvae/lab/storage/optimizer_state.py, load_checked).
        """
        self.t = int(state["step"])
        self.state = {slot: {key[len(slot) + 1:]: np.array(arr) for key, arr in state.items()
                             if key.startswith(slot + "/")} for slot in self.slots}


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum.

    Without momentum:   θ ← θ − η g
    With momentum ρ:    v ← ρ v − η g ;  θ ← θ + v
                        (Polyak 1964; Sutskever et al. 2013, equation 1)

    The velocity v starts at zero; it is a running sum of past steps that shrinks by ρ each step,
    so a direction the gradient keeps pointing in gathers speed, up to η g / (1 − ρ). (The
    momentum is ρ here, not the usual μ: in this codebase μ is the encoder's mean.)
    """

    name = "sgd"
    hyper = ("momentum",)

    def __init__(self, lr: float, momentum: float = 0.0, clip_norm: float | None = None):
        self.momentum = _decay("momentum", momentum)
        # Set before Optimizer.__init__, which makes one state dict per slot:
        # no momentum, no velocity.
        self.slots = ("velocity",) if self.momentum > 0.0 else ()
        super().__init__(lr, clip_norm)

    def _update(self, theta, g, state):
        if not self.slots:
            theta -= self.lr * g  # θ ← θ − η g
            return
        v = state["velocity"]
        v *= self.momentum  # v ← ρ v − η g
        v -= self.lr * g
        theta += v  # θ ← θ + v


class Adagrad(Optimizer):
    """Adagrad: a per-coordinate step size that shrinks with the sum of that coordinate's
    squared gradients.

    G ← G + g²                      (elementwise; G starts at zero)
    θ ← θ − η g / (√G + ε)

    Coordinates that keep receiving large gradients take ever smaller steps, rare ones keep large
    steps (Duchi, Hazan & Singer 2011). This is the optimizer of Kingma & Welling (2014), who chose
    the global step size η from {0.01, 0.02, 0.1}. ε only guards against dividing by zero.
    """

    name = "adagrad"
    slots = ("sum_sq",)
    hyper = ("eps",)

    def __init__(self, lr: float = 1e-2, eps: float = 1e-8, clip_norm: float | None = None):
        self.eps = _positive("eps", eps)
        super().__init__(lr, clip_norm)

    def _update(self, theta, g, state):
        G = state["sum_sq"]
        G += g * g  # G ← G + g²
        denom = np.sqrt(G)  # √G + ε   (a fresh array: G itself must keep the plain sum)
        denom += self.eps
        theta -= self.lr * g / denom  # θ ← θ − η g / (√G + ε)


class Adam(Optimizer):
    """Adam: momentum on the gradient, scaled per coordinate by a running RMS, with bias correction.

    m ← β1 m + (1 − β1) g           (first moment: running mean of g; m, v start at zero)
    v ← β2 v + (1 − β2) g²          (second moment: running mean of g², elementwise)
    m̂ = m / (1 − β1ᵗ) ;  v̂ = v / (1 − β2ᵗ)   (bias correction: undo the pull toward the zero start)
    θ ← θ − η m̂ / (√v̂ + ε)

    This is Algorithm 1 of Kingma & Ba (2015) as written. Thanks to the bias correction the
    very first step moves each coordinate by almost exactly η in the direction of −g,
    whatever the scale of g.
    """

    name = "adam"
    slots = ("m", "v")
    hyper = ("beta1", "beta2", "eps")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, clip_norm: float | None = None):
        self.beta1 = _decay("beta1", beta1)
        self.beta2 = _decay("beta2", beta2)
        self.eps = _positive("eps", eps)
        super().__init__(lr, clip_norm)

    def _update(self, theta, g, state):
        b1, b2 = self.beta1, self.beta2
        m, v = state["m"], state["v"]
        m *= b1  # m ← β1 m + (1 − β1) g
        m += (1.0 - b1) * g
        v *= b2  # v ← β2 v + (1 − β2) g²
        v += (1.0 - b2) * (g * g)
        m_hat = m / (1.0 - b1**self.t)  # Python-float factors keep float32 arrays float32
        v_hat = v / (1.0 - b2**self.t)
        denom = np.sqrt(v_hat)
        denom += self.eps
        theta -= self.lr * m_hat / denom  # θ ← θ − η m̂ / (√v̂ + ε)


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    ‖g‖ = sqrt(Σ_keys Σ_elements g²)   (the norm of all gradients as one long vector)
    g ← g · max_norm / ‖g‖   if ‖g‖ > max_norm, else g unchanged

    Scaling every key by the same factor keeps the direction of the step (Pascanu et al. 2013).
    Returns ``(clipped, norm)`` where ``norm`` is ‖g‖ before clipping, as a Python float.
    The input arrays are never modified: when clipping happens ``clipped`` is a new dict of new
    arrays (same dtypes); otherwise it is ``grads`` itself. A non-finite norm (an inf or nan
    gradient) is returned as is with the gradients untouched, so the caller's divergence check
    sees it instead of a silently zeroed step.
    """
    max_norm = _positive("max_norm", max_norm)
    # accumulate in float64 so that float32 gradients neither overflow nor lose the small terms
    total = 0.0
    for g in grads.values():
        g64 = np.asarray(g).astype(np.float64, copy=False).ravel()
        total += float(np.dot(g64, g64))
    norm = math.sqrt(total)
    if not math.isfinite(norm) or norm <= max_norm:
        return grads, norm
    scale = max_norm / norm
    return {key: g * scale for key, g in grads.items()}, norm


# The optimizers by the name a command line or a checkpoint gives.
OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}


def make_optimizer(name: str, lr: float | None = None, **kw) -> Optimizer:
    """Build an optimizer by name ("sgd", "adagrad" or "adam"); ``lr=None`` takes the class default.

    The keyword arguments are the class's own (``momentum``, ``beta1``, ``eps``,
    ``clip_norm``, ...); an unknown one raises ValueError naming it.
    """
    key = str(name).lower()
    cls = lookup(OPTIMIZERS, key, "optimizer")
    if lr is None and key == "sgd":
        raise ValueError("lr is required for sgd (it has no sensible default)")
    if lr is not None:
        kw["lr"] = lr
    try:
        return cls(**kw)
    except TypeError as exc:  # an unknown keyword: say which optimizer did not take it
        raise ValueError(f"bad argument for optimizer {key!r}: {exc}") from None


def _positive(name: str, value) -> float:
    return finite_real(name, value, minimum=0, strict=True)


def _decay(name: str, value) -> float:
    """A decay rate: 0 <= value < 1 (at 1 the running average would never forget its start)."""
    value = finite_real(name, value, minimum=0)
    if value >= 1.0:
        raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {value!r}")
    return value


def _check_params_and_grads(params: Mapping[str, np.ndarray],
                            grads: Mapping[str, np.ndarray]) -> None:
    """The same keys, float arrays to update in place, and gradients of the parameters' shapes."""
    if params.keys() != grads.keys():
        missing, extra = sorted(params.keys() - grads.keys()), sorted(grads.keys() - params.keys())
        raise ValueError(f"grads must have exactly the keys of params: missing {missing}, "
                         f"unexpected {extra}")
    for key, theta in params.items():
        if not isinstance(theta, np.ndarray) or not np.issubdtype(theta.dtype, np.floating):
            raise ValueError(f"params[{key!r}] must be a floating-point ndarray "
                             "(it is updated in place)")
        if np.shape(grads[key]) != theta.shape:
            raise ValueError(f"grads[{key!r}] has shape {np.shape(grads[key])}, "
                             f"params[{key!r}] has shape {theta.shape}")
