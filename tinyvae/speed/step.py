"""The fast training step: the mathematics of vae.loss_and_grads, arranged for speed.

`vae.loss_and_grads` is the reference. It is docs/04-gradients.md written out line by
line, the docs follow it, and the gradient checker checks it. `FastStep` computes the
same loss and the same gradients (tests/test_fast.py compares the two to float32
precision, and to ~1e-12 in float64) and then takes the optimizer's step, but it spends
its time almost only in the matrix multiplies that NumPy hands to BLAS. These are the
differences, and why each one pays (each is written where it lives):

1. One flat parameter buffer, and 2. fused heads (μ and log σ² from one product):
   speed/layout.py.
3. No gradient for the images: the first encoder layer's dx = dout · Wᵀ is a full
   (B, H) × (H, D) multiply whose result nobody uses, so it is skipped (here).
4. No temporaries: every activation, gradient and scratch array is allocated once, for
   `max_batch` rows (layout.Buffers), and reused on every step through `out=` arguments
   and in-place operators (speed/mlp.py runs the hidden layers so); a smaller last
   batch uses the first rows.
5. The Bernoulli loss computed once: one exponential for the loss and its gradient
   (speed/losses.py).
6. The optimizer in place, in few passes over the flat buffer (speed/flat_optim.py),
   its two halves at once on two cores where a second core is available and OpenBLAS
   runs on one thread (speed/halves.py).
7. float32: half the memory traffic of float64 and twice the SIMD width. Float64 works
   too, for checks against the reference.

The step object owns the run's state. The parameters live in its flat buffer (`.params`
views it); the optimizer object passed in supplies the hyperparameters, read at every
step (a changed `lr` takes effect), and its state lives here too: once it has any (after
the first step, or a load), `optimizer.state[slot][key]` ARE views of the flat slot
buffers and `optimizer.t` is the step counter, so `optimizer.state_dict()` is always
current and checkpoints written by either path resume on either path.

An activation or a likelihood without a fast form (speed/mlp.py's IN_PLACE,
speed/losses.py's FAST_LIKELIHOODS) is refused with a ValueError; the readable step,
tinyvae.train.ReferenceStep, takes every model the core knows.

Shapes: B batch, D data, H hidden, Z latent; P the number of parameters.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_batch, check_noise, positive_int
from ..config import VAEConfig, check_params_fit, param_shapes
from ..layers import ACTIVATIONS
from ..losses import LOG_2PI, log_mean_exp, normalized_weights
from ..optim import Optimizer
from ..train import ReferenceStep
from . import flat_optim, halves, layout
from . import losses as fast
from .mlp import IN_PLACE, fast_form, mlp_backward, mlp_forward

USE_REFERENCE = "step='reference' (tinyvae.train.ReferenceStep)"


class FastStep:
    """One training step of the VAE on a batch, with everything preallocated.

    FastStep(config, params, optimizer, max_batch) copies `params` into one flat buffer;
    `.params` is a dict with the keys of param_shapes whose values are views into it
    (use it for checkpoints and evaluation: the dict passed in is not updated). `.grads`
    views the gradient of the last step, as applied (after clipping). The optimizer may
    be optim.SGD, optim.Adagrad or optim.Adam; `clip_norm` is honoured. `threads` (1 or 2;
    default: halves.default_threads(), 2 where a second core is available and OpenBLAS
    runs on one thread) runs the optimizer's
    update in that many halves at once: the same numbers either way, bit for bit.

    step(x, eps, beta=None) -> {"loss", "recon", "kl"}: batch means as in
    vae.loss_and_grads (the KL unweighted), after which the parameters have taken one
    optimizer step. x (B, D) with B <= max_batch, eps (B, K, Z) (or (B, Z) when K = 1);
    β defaults to config.beta. Both objectives, "elbo" and "iwae", at any K = config.k.
    x and eps of another dtype than the parameters are converted (a copy per step).
    """

    def __init__(self, config: VAEConfig, params: dict[str, np.ndarray], optimizer: Optimizer,
                 max_batch: int, *, threads: int | None = None):
        self._activation = fast_form(IN_PLACE, config.activation, "activation", ACTIVATIONS,
                                     USE_REFERENCE)
        if not isinstance(optimizer, flat_optim.SUPPORTED):
            raise ValueError("FastStep supports optim.SGD, optim.Adagrad and optim.Adam, "
                             f"got {type(optimizer).__name__}; "
                             f"use {USE_REFERENCE} for other optimizers")
        self.config = config
        self.optimizer = optimizer
        self.max_batch = positive_int("max_batch", max_batch)
        self.threads = halves.default_threads() if threads is None else threads
        if type(self.threads) is not int or self.threads not in (1, 2):  # not True, not 2.0
            raise ValueError(f"threads must be 1 or 2, got {threads!r}")
        self.dtype = check_params_fit(config, params)
        key_order = list(param_shapes(config))
        blocks = layout.blocks(config)
        self.n_params = sum(p.size for p in params.values())  # P

        # Trick 1: parameters, gradients and optimizer state, each one flat (P,) array.
        self._theta = np.zeros(self.n_params, dtype=self.dtype)  # (P,)
        self._grad = np.zeros(self.n_params, dtype=self.dtype)  # (P,)
        self._scratch = np.zeros(self.n_params, dtype=self.dtype)  # (P,) for the update
        self.W, self.params = layout.views(self._theta, blocks, key_order)
        self.dW, self.grads = layout.views(self._grad, blocks, key_order)
        for key, view in self.params.items():
            view[...] = params[key]  # a copy: the dict passed in is never aliased
        self._slots = {slot: np.zeros(self.n_params, dtype=self.dtype) for slot in optimizer.slots}
        self._slot_views = {slot: layout.views(flat, blocks, key_order)[1]
                            for slot, flat in self._slots.items()}
        if optimizer.t > 0 or any(optimizer.state[slot] for slot in optimizer.slots):
            self.load_optimizer_state_dict(optimizer.state_dict())  # resume where it stands

        # Trick 4: every activation and gradient array, allocated once.
        n_out = 2 * config.input_dim if config.learned_variance else config.input_dim
        self._full = layout.Buffers(config, self.max_batch, self.dtype, n_out)
        self._cut = {self.max_batch: self._full}  # views for each batch size met so far

    @property
    def t(self) -> int:
        """The optimizer steps taken: the optimizer's own counter."""
        return self.optimizer.t

    @property
    def last_grad_norm(self) -> float | None:
        """‖g‖ before clipping at the last step (only with clip_norm):
        the optimizer's own record."""
        return self.optimizer.last_grad_norm

    def step(self, x: np.ndarray, eps: np.ndarray, beta: float | None = None) -> dict[str, float]:
        """Forward, loss, backward and the optimizer's update; returns the batch-mean stats."""
        cfg = self.config
        beta = cfg.beta if beta is None else float(beta)
        x = np.ascontiguousarray(x, dtype=self.dtype)  # no copy when it already is
        if x.ndim != 2 or x.shape[1] != cfg.input_dim or not 1 <= x.shape[0] <= self.max_batch:
            raise ValueError(f"x must have shape (B, {cfg.input_dim}) with 1 <= B <= max_batch = "
                             f"{self.max_batch}, got {x.shape}")
        lo, hi = x.min(), x.max()  # NaN reaches both: two reductions see NaN, inf and the range
        if not (0 <= lo and hi <= 1):
            # the reference's refusal and message (data outside [0, 1] may be fine)
            check_batch(x, cfg)
        B, K, Z = x.shape[0], cfg.k, cfg.latent_dim
        eps = check_noise(np.asarray(eps, dtype=self.dtype), B, cfg)  # (B, K, Z)
        if cfg.objective == "iwae" and beta != 1:
            raise ValueError(f"the 'iwae' objective takes no beta (got {beta!r})")
        if B not in self._cut:
            self._cut[B] = self._full.first(B)
        a = self._cut[B]

        # ---- forward: docs/02-variational-inference.md eq. (11) ----
        mu, log_var = self._encode(x, a)  # (B, Z), (B, Z)
        np.multiply(log_var, 0.5, out=a.std)
        np.exp(a.std, out=a.std)  # σ = exp(½ log σ²)
        z = a.z.reshape(B, K, Z)  # the same memory, (B, K, Z)
        np.multiply(a.std[:, None], eps, out=z)
        z += mu[:, None]  # z = μ + σ ⊙ ε, docs/04-gradients.md eq. (14)
        out = self._decode(a.z, a)  # (R, D) or (R, 2D), R = B·K
        if K > 1:
            a.x_rows.reshape(B, K, -1)[...] = x[:, None]  # each image beside each of its samples
        x_rows = x if K == 1 else a.x_rows  # (R, D)
        if cfg.objective == "iwae":
            return self._iwae(mu, log_var, eps, out, x_rows, a, x)

        recon_sum = self._recon(out, x_rows, a)  # fills a.d_out with d(Σ recon)/d out
        kl_sum = fast.kl_standard_normal(mu, log_var, a)

        # ---- backward: docs/04-gradients.md eq. (17) ----
        a.d_out *= 1.0 / (B * K)  # a batch mean, each sample's recon a mean over K
        self._decode_backward(a)  # fills a.dz
        dmu, dlog_var = a.d_head[:, :Z], a.d_head[:, Z:]
        # Two paths into μ: through z and through the KL; docs/04-gradients.md eq. (16).
        np.multiply(mu, beta / B, out=dmu)  # β/B · dKL/dμ, dKL/dμ = μ
        dmu += a.dz if K == 1 else a.dz.reshape(B, K, Z).sum(axis=1)  # μ fed all K samples
        # Two paths into log σ²: through z (½ σ ε, docs/04-gradients.md eq. (15)) and through
        # the KL (½ (σ² − 1)), summed as in docs/04-gradients.md eq. (16).
        self._path_into_log_var(eps, dlog_var, a)
        np.multiply(a.var_m1, 0.5 * beta / B, out=a.kl)
        dlog_var += a.kl
        self._encode_backward(x, a)

        self._update()
        R = B * K
        if K > 1:
            return {"loss": recon_sum / R + beta * kl_sum / B,
                    "recon": recon_sum / R, "kl": kl_sum / B}
        return {"loss": (recon_sum + beta * kl_sum) / B,
                "recon": recon_sum / B, "kl": kl_sum / B}

    def _path_into_log_var(self, eps, dlog_var, a) -> None:
        """dlog_var ← Σ_k dz ⊙ ½ σ ⊙ ε: the path through z, summed over each image's K samples."""
        B, K, Z = eps.shape
        d = dlog_var if K == 1 else a.dlog_var_z.reshape(B, K, Z)
        np.multiply(a.dz.reshape(B, K, Z) if K > 1 else a.dz, 0.5, out=d)
        d *= a.std[:, None] if K > 1 else a.std
        d *= eps if K > 1 else eps[:, 0]
        if K > 1:
            np.sum(d, axis=1, out=dlog_var)

    def _iwae(self, mu, log_var, eps, out, x_rows, a, x) -> dict[str, float]:
        """The rest of the step for the objective L_K:
        vae.iwae_loss_and_grads, arranged for speed."""
        B, K, Z = eps.shape
        # (B, K): −log p(x|z); a.d_out its gradient
        recon = self._recon(out, x_rows, a, per_row=True).reshape(B, K)
        z = a.z.reshape(B, K, Z)
        log_p = -0.5 * (np.einsum("bkz,bkz->bk", z, z) + Z * LOG_2PI)  # log N(z; 0, I)
        log_q = -0.5 * (np.einsum("bkz,bkz->bk", eps, eps) + log_var.sum(axis=1)[:, None]
                        + Z * LOG_2PI)
        log_w = -recon + log_p - log_q  # (B, K)
        bound = log_mean_exp(log_w, axis=1)  # (B,)

        # ---- backward: d(−(1/B) Σ L_K)/d log w = −w̃/B, docs/04-gradients.md eq. (19) ----
        weight = normalized_weights(log_w, axis=1)  # (B, K)
        # A weight under eps² moves no gradient by as much as its rounding. As zero, it keeps the
        # backward pass out of subnormal numbers, ~100 times slower to multiply (without this,
        # Table 1's model took 3 times as long per step at K = 20).
        weight[weight < np.finfo(self.dtype).eps ** 2] = 0
        weight /= B  # w̃/B = −dlog_w
        a.d_out *= weight.reshape(B * K, 1)
        self._decode_backward(a)  # fills a.dz
        dz = a.dz.reshape(B, K, Z)
        dz += weight[..., None] * z  # the path through log p(z): −dlog_w · (−z)
        dmu, dlog_var = a.d_head[:, :Z], a.d_head[:, Z:]
        np.sum(dz, axis=1, out=dmu)
        self._path_into_log_var(eps, dlog_var, a)
        dlog_var -= 0.5 / B  # the path through log q: ½ Σ_k dlog_w = −½ Σ_k w̃/B = −1/(2B)
        self._encode_backward(x, a)

        self._update()
        return {"loss": -float(bound.mean()), "recon": float(recon.mean()),
                "kl": float(np.mean(log_q - log_p))}

    def _encode(self, x, a):
        """The encoder's MLP and its fused head:
        [μ | log σ²] = h · [W_mu | W_logvar] + [b_mu | b_logvar]."""
        h = mlp_forward(self.W, "encoder", x, a.enc, self._activation, a.enc_mask)  # (B, H)
        # (B, 2Z): trick 2, one multiply for both heads
        np.matmul(h, self.W["encoder.W_head"], out=a.head)
        a.head += self.W["encoder.b_head"]
        Z = self.config.latent_dim
        return a.head[:, :Z], a.head[:, Z:]

    def _decode(self, z, a):
        """The decoder's MLP and its output layer
        (for a learned variance, the fused [mean | log σ²])."""
        h = mlp_forward(self.W, "decoder", z, a.dec, self._activation, a.dec_mask)  # (B, H)
        np.matmul(h, self.W["decoder.W_head"], out=a.out)  # (B, D) or (B, 2D)
        a.out += self.W["decoder.b_head"]
        return a.out

    def _recon(self, out, x, a, per_row: bool = False):
        """Σ over the rows of −log p(x|z) (or each row's, per_row); its gradient with respect to
        `out` goes into a.d_out."""
        cfg = self.config
        if cfg.likelihood == "bernoulli":
            return fast.bernoulli_nll(out, x, a, per_row)
        if cfg.likelihood == "gaussian":
            return fast.gaussian_nll(out, x, a, cfg.gaussian_std, per_row)
        return fast.gaussian_nll_learned(out, x, a, per_row)

    def _decode_backward(self, a) -> None:
        """The mirror of _decode: docs/04-gradients.md eq. (2) per layer; leaves dL/dz in a.dz."""
        W, dW, n = self.W, self.dW, len(self.config.hidden_dims)
        h_last = a.dec[-1] if n else a.z
        np.matmul(h_last.T, a.d_out, out=dW["decoder.W_head"])  # (H, D)
        np.sum(a.d_out, axis=0, out=dW["decoder.b_head"])
        d = a.dec_d[-1] if n else a.dz
        np.matmul(a.d_out, W["decoder.W_head"].T, out=d)  # (B, H): one multiply for both heads
        mlp_backward(W, dW, "decoder", [a.z, *a.dec[:-1]], a.dec, a.dec_d, a.dec_mask,
                     self._activation, a.dz)

    def _encode_backward(self, x, a) -> None:
        """The mirror of _encode, from [dμ | d log σ²] in a.d_head; no gradient for x (trick 3)."""
        W, dW, n = self.W, self.dW, len(self.config.hidden_dims)
        h_last = a.enc[-1] if n else x
        np.matmul(h_last.T, a.d_head, out=dW["encoder.W_head"])  # (H, 2Z)
        np.sum(a.d_head, axis=0, out=dW["encoder.b_head"])
        if n:
            np.matmul(a.d_head, W["encoder.W_head"].T, out=a.enc_d[-1])  # (B, H): both heads feed h
        mlp_backward(W, dW, "encoder", [x, *a.enc[:-1]], a.enc, a.enc_d, a.enc_mask,
                     self._activation, None)

    def _update(self) -> None:
        """Clip (if asked), then one optimizer step over the flat buffers (trick 6)."""
        self._home_optimizer_state(create=True)
        flat_optim.update(self.optimizer, self._theta, self._grad, self._slots, self._scratch,
                          self.threads)

    def _home_optimizer_state(self, create: bool) -> None:
        """Make optimizer.state[slot] the views of the flat slot buffers, moving in what it holds.

        A no-op (one identity test per slot) while the optimizer's state is already these
        views. State that the optimizer got elsewhere (optimizer.load_state_dict, already
        checked by it against the current state) is copied into the buffers. An empty state,
        as of an optimizer that never stepped, zeroes the buffers and is bound to them only
        when `create` (on the first step): until then state_dict() is {"step"}, as optim's own.
        """
        opt = self.optimizer
        for slot in opt.slots:
            views, held = self._slot_views[slot], opt.state[slot]
            if held is views:
                continue
            if held:
                for key, view in views.items():
                    view[...] = held[key]
            else:
                self._slots[slot][...] = 0
                if not create:
                    continue
            opt.state[slot] = views

    def optimizer_state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's own state_dict():
        "step" and "<slot>/<key>" copies of the flat buffers' views."""
        return self.optimizer.state_dict()

    def load_optimizer_state_dict(self, state) -> None:
        """Restore a state of optim.Optimizer.state_dict()'s format (a checkpoint's is checked where
        it is read, tinyvae/lab/storage/optimizer_state.py); its arrays move into the flat buffers.
        """
        self.optimizer.load_state_dict(state)
        self._home_optimizer_state(create=False)


def make_step(path: str, config: VAEConfig, params: dict[str, np.ndarray], optimizer: Optimizer,
              max_batch: int):
    """FastStep ("fast") or tinyvae.train.ReferenceStep ("reference"):
    .config, .params, .optimizer, .step."""
    if path == "fast":
        return FastStep(config, params, optimizer, max_batch)
    if path == "reference":
        return ReferenceStep(config, params, optimizer)
    raise ValueError(f"path must be 'fast' or 'reference', got {path!r}")
