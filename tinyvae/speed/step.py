"""The fast training step: the mathematics of vae.loss_and_grads, arranged for speed.

`vae.loss_and_grads` is the reference. It is docs/04-gradients.md written out line by
line, the docs follow it, and the gradient checker checks it. `FastStep` computes the
same loss and the same gradients (tests/test_fast.py compares the two to float32
precision, and to ~1e-12 in float64) and then takes the optimizer's step, but it spends
its time almost only in the matrix multiplies that NumPy hands to BLAS. These are the
differences, and why each one pays:

1. One flat parameter buffer. Every parameter lives in one contiguous array and
   `.params` holds views into it under the usual keys, so the optimizer updates all
   ~650,000 numbers of the default model with a handful of whole-array operations
   instead of a dozen small ones per key. The gradients and the optimizer's moments
   have the same layout.
2. Fused heads. W_mu and W_logvar are the two column halves of one (H, 2Z) matrix,
   so μ and log σ² come out of one matrix multiply (and their gradients go back through
   one); the decoder's mean and log-variance heads are fused the same way.
3. No gradient for the images: the first encoder layer's dx = dout · Wᵀ is a full
   (B, H) × (H, D) multiply whose result nobody uses, so it is skipped.
4. No temporaries. Every activation, gradient and scratch array is allocated once, for
   `max_batch` rows, and reused on every step through `out=` arguments and in-place
   operators; a smaller last batch uses the first rows. Allocating a fresh (128, 784)
   array per operation costs more than the arithmetic: glibc hands large freed blocks
   back to the operating system and every new one is faulted in again, page by page.
5. The Bernoulli loss computed once. e = exp(−|l|) serves both the stable loss,
   docs/04-gradients.md eq. (7), and its gradient σ(l) − x, docs/04-gradients.md eq. (8).
6. The optimizer in place, in few passes over the flat buffer. Adam uses the form at the
   end of Kingma & Ba (2015), Sec. 2, which folds both bias corrections into the step size
   and ε: θ ← θ − α_t m / (√v + ε̂) with α_t = η √(1 − β2ᵗ) / (1 − β1ᵗ) and ε̂ = ε √(1 − β2ᵗ),
   the same numbers as m̂ / (√v̂ + ε) with two fewer passes: twelve NumPy operations over
   the whole buffer, each one pass through memory.
7. float32: half the memory traffic of float64 and twice the SIMD width. Float64 works
   too, for checks against the reference.

The optimizer object passed in supplies the hyperparameters, read at every step (so a
changed `lr` takes effect); its state is copied in at construction and from then on
lives in the flat buffers: `optimizer_state_dict()` and `load_optimizer_state_dict()`
speak exactly the format of `optim.Optimizer.state_dict()`, so checkpoints written by
either path resume on either path.

`ReferenceStep` has the same interface around vae.loss_and_grads and optimizer.step, so
a training loop can switch between the two with one argument (`make_step`).

Shapes: B batch, D data, H hidden, Z latent; P the number of parameters.
"""

from __future__ import annotations

import math

import numpy as np

from ..optim import SGD, Adagrad, Adam, Optimizer, make_optimizer
from ..vae import VAEConfig, loss_and_grads, param_shapes

LOG_2PI = math.log(2 * math.pi)


def _blocks(config: VAEConfig) -> list[tuple[str, tuple[int, ...], dict]]:
    """The arrays of the flat buffer, in order: (block name, shape, {parameter key: index}).

    A block is a whole matrix the step multiplies by; the parameter keys of vae.param_shapes
    are views of the blocks. Only the fused heads hold two keys each.
    """
    D, Z = config.input_dim, config.latent_dim
    blocks = []
    sizes = (D, *config.hidden_dims)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        blocks.append((f"encoder.W{i}", (fan_in, fan_out), {f"encoder.W{i}": ...}))
        blocks.append((f"encoder.b{i}", (fan_out,), {f"encoder.b{i}": ...}))
    # μ and log σ² side by side: columns [0, Z) and [Z, 2Z) of one (H, 2Z) matrix
    blocks.append(("encoder.W_head", (sizes[-1], 2 * Z),
                   {"encoder.W_mu": np.s_[:, :Z], "encoder.W_logvar": np.s_[:, Z:]}))
    blocks.append(("encoder.b_head", (2 * Z,), {"encoder.b_mu": np.s_[:Z], "encoder.b_logvar": np.s_[Z:]}))
    sizes = (Z, *reversed(config.hidden_dims))
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        blocks.append((f"decoder.W{i}", (fan_in, fan_out), {f"decoder.W{i}": ...}))
        blocks.append((f"decoder.b{i}", (fan_out,), {f"decoder.b{i}": ...}))
    if config.likelihood == "gaussian-learned-variance":
        # the mean and the per-pixel log-variance side by side: (H, 2D)
        blocks.append(("decoder.W_head", (sizes[-1], 2 * D),
                       {"decoder.W_out": np.s_[:, :D], "decoder.W_logvar": np.s_[:, D:]}))
        blocks.append(("decoder.b_head", (2 * D,), {"decoder.b_out": np.s_[:D], "decoder.b_logvar": np.s_[D:]}))
    else:
        blocks.append(("decoder.W_head", (sizes[-1], D), {"decoder.W_out": ...}))
        blocks.append(("decoder.b_head", (D,), {"decoder.b_out": ...}))
    return blocks


def _views(flat: np.ndarray, blocks, key_order) -> tuple[dict, dict]:
    """Cut `flat` into the blocks; returns ({block name: array}, {parameter key: view})."""
    arrays, views, offset = {}, {}, 0
    for name, shape, keys in blocks:
        size = math.prod(shape)
        arrays[name] = flat[offset:offset + size].reshape(shape)
        offset += size
        for key, index in keys.items():
            views[key] = arrays[name][index]
    return arrays, {key: views[key] for key in key_order}


def _check_params(config: VAEConfig, params) -> np.dtype:
    shapes = param_shapes(config)
    if set(params) != set(shapes):
        raise ValueError(f"params must have exactly the keys of vae.param_shapes(config): "
                         f"missing {sorted(set(shapes) - set(params))}, unexpected {sorted(set(params) - set(shapes))}")
    dtype = np.asarray(params["encoder.W_mu"]).dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"params must be float32 or float64, got {dtype}")
    for key, shape in shapes.items():
        arr = np.asarray(params[key])
        if arr.shape != shape or arr.dtype != dtype:
            raise ValueError(f"params[{key!r}] has shape {arr.shape} and dtype {arr.dtype}; "
                             f"expected {shape} and {dtype}")
    return dtype


class _Activations:
    """The preallocated arrays of one step, for `rows` rows; `.first(B)` gives views of B rows.

    Names follow vae.py: enc[i] / dec[i] hold a hidden layer's activation, mask[i] its
    ReLU mask 1[a > 0] (or, for tanh, scratch for 1 − h²), d_* the gradients.
    """

    def __init__(self, config: VAEConfig, rows: int, dtype, n_out: int):
        H, Z, D = config.hidden_dims, config.latent_dim, config.input_dim
        new = lambda *shape: np.zeros((rows, *shape), dtype=dtype)  # noqa: E731
        self.enc = [new(h) for h in H]  # (B, H_i) encoder activations
        self.enc_mask = [new(h) for h in H]
        self.enc_d = [new(h) for h in H]  # (B, H_i) their gradients
        self.head = new(2 * Z)  # (B, 2Z) [μ | log σ²]
        self.d_head = new(2 * Z)  # (B, 2Z) [dμ | d log σ²]
        self.std = new(Z)  # (B, Z) σ
        self.z = new(Z)  # (B, Z)
        self.dz = new(Z)  # (B, Z)
        self.kl = new(Z)  # (B, Z) scratch for the KL
        self.mu_sq = new(Z)  # (B, Z) μ²
        self.var_m1 = new(Z)  # (B, Z) σ² − 1
        self.dec = [new(h) for h in reversed(H)]  # (B, H_i) decoder activations
        self.dec_mask = [new(h) for h in reversed(H)]
        self.dec_d = [new(h) for h in reversed(H)]
        self.out = new(n_out)  # (B, D) logits or mean, or (B, 2D) [mean | log σ²]
        self.d_out = new(n_out)  # (B, D) or (B, 2D)
        self.e = new(D)  # (B, D) scratch for the likelihood
        self.t = new(D)  # (B, D) scratch
        self.c = new(D)  # (B, D) scratch
        self.pos = new(D)  # (B, D) scratch
        self.rows = rows

    def first(self, B: int) -> "_Activations":
        """The same arrays cut to their first B rows (views: nothing is copied)."""
        if B == self.rows:
            return self
        view = object.__new__(_Activations)
        for name, value in vars(self).items():
            if isinstance(value, list):
                setattr(view, name, [a[:B] for a in value])
            elif isinstance(value, np.ndarray):
                setattr(view, name, value[:B])
        view.rows = B
        return view


class FastStep:
    """One training step of the VAE on a batch, with everything preallocated.

    FastStep(config, params, optimizer, max_batch) copies `params` into one flat buffer;
    `.params` is a dict with the keys of vae.param_shapes whose values are views into it
    (use it for checkpoints and evaluation: the dict passed in is not updated). `.grads`
    views the gradient of the last step, as applied (after clipping). The optimizer may
    be optim.SGD, optim.Adagrad or optim.Adam; `clip_norm` is honoured.

    step(x, eps, beta=None) -> {"loss", "recon", "kl"}: batch means as in
    vae.loss_and_grads (the KL unweighted), after which the parameters have taken one
    optimizer step. x (B, D) with B <= max_batch, eps (B, Z); β defaults to config.beta.
    x and eps of another dtype than the parameters are converted (a copy per step).

    The optimizer's state lives here, not in the optimizer object: save it with
    optimizer_state_dict(), or call sync_optimizer() before saving the optimizer itself.
    """

    def __init__(self, config: VAEConfig, params: dict[str, np.ndarray], optimizer: Optimizer,
                 max_batch: int):
        if not isinstance(optimizer, (SGD, Adagrad, Adam)):
            raise ValueError(f"FastStep supports optim.SGD, optim.Adagrad and optim.Adam, got "
                             f"{type(optimizer).__name__}; use ReferenceStep for other optimizers")
        if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.config = config
        self.optimizer = optimizer
        self.max_batch = int(max_batch)
        self.dtype = _check_params(config, params)
        key_order = list(param_shapes(config))
        self._blocks = _blocks(config)
        self.n_params = sum(math.prod(shape) for _, shape, _ in self._blocks)  # P

        # Trick 1: parameters, gradients and optimizer state, each one flat (P,) array.
        self._theta = np.zeros(self.n_params, dtype=self.dtype)  # (P,)
        self._grad = np.zeros(self.n_params, dtype=self.dtype)  # (P,)
        self._scratch = np.zeros(self.n_params, dtype=self.dtype)  # (P,) for the update
        self.W, self.params = _views(self._theta, self._blocks, key_order)
        self.dW, self.grads = _views(self._grad, self._blocks, key_order)
        for key, view in self.params.items():
            view[...] = params[key]
        self._slots = {slot: np.zeros(self.n_params, dtype=self.dtype) for slot in optimizer.slots}
        self._slot_views = {slot: _views(flat, self._blocks, key_order)[1] for slot, flat in self._slots.items()}
        self.t = 0  # optimizer steps taken
        self._has_state = False  # like optim: no state arrays until the first step or a load
        self.last_grad_norm: float | None = None
        if optimizer.t > 0 or any(optimizer.state[slot] for slot in optimizer.slots):
            self.load_optimizer_state_dict(optimizer.state_dict())  # resume where it stands

        # Trick 4: every activation and gradient array, allocated once.
        n_out = 2 * config.input_dim if config.likelihood == "gaussian-learned-variance" else config.input_dim
        self._full = _Activations(config, self.max_batch, self.dtype, n_out)
        self._cut = {self.max_batch: self._full}  # views for each batch size met so far

    # ------------------------------------------------------------------ the step

    def step(self, x: np.ndarray, eps: np.ndarray, beta: float | None = None) -> dict[str, float]:
        """Forward, loss, backward and the optimizer's update; returns the batch-mean stats."""
        cfg = self.config
        beta = cfg.beta if beta is None else float(beta)
        x = np.ascontiguousarray(x, dtype=self.dtype)  # no copy when it already is
        eps = np.asarray(eps, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != cfg.input_dim or not 1 <= x.shape[0] <= self.max_batch:
            raise ValueError(f"x must have shape (B, {cfg.input_dim}) with 1 <= B <= max_batch = "
                             f"{self.max_batch}, got {x.shape}")
        B = x.shape[0]
        if eps.shape != (B, cfg.latent_dim):
            raise ValueError(f"eps must have shape (batch, latent_dim) = {(B, cfg.latent_dim)}, got {eps.shape}")
        if B not in self._cut:
            self._cut[B] = self._full.first(B)
        a = self._cut[B]

        # ---- forward: docs/02-variational-inference.md eq. (11) ----
        mu, log_var = self._encode(x, a)  # (B, Z), (B, Z)
        np.multiply(log_var, 0.5, out=a.std)
        np.exp(a.std, out=a.std)  # σ = exp(½ log σ²)
        np.multiply(a.std, eps, out=a.z)
        a.z += mu  # z = μ + σ ⊙ ε, docs/04-gradients.md eq. (14)
        out = self._decode(a.z, a)  # (B, D) or (B, 2D)
        recon_sum = self._recon(out, x, a)  # fills a.d_out with d(Σ recon)/d out
        kl_sum = self._kl(mu, log_var, a)

        # ---- backward: the loss is a batch mean, docs/04-gradients.md eq. (17) ----
        a.d_out *= 1.0 / B
        self._decode_backward(a)  # fills a.dz
        Z = cfg.latent_dim
        dmu, dlog_var = a.d_head[:, :Z], a.d_head[:, Z:]
        # Two paths into μ: through z and through the KL; docs/04-gradients.md eq. (16).
        np.multiply(mu, beta / B, out=dmu)  # β/B · dKL/dμ, dKL/dμ = μ
        dmu += a.dz
        # Two paths into log σ²: through z (½ σ ε, docs/04-gradients.md eq. (15)) and through
        # the KL (½ (σ² − 1)), summed as in docs/04-gradients.md eq. (16).
        np.multiply(a.dz, 0.5, out=dlog_var)
        dlog_var *= a.std
        dlog_var *= eps
        np.multiply(a.var_m1, 0.5 * beta / B, out=a.kl)
        dlog_var += a.kl
        self._encode_backward(x, a)

        self._update()
        return {"loss": (recon_sum + beta * kl_sum) / B, "recon": recon_sum / B, "kl": kl_sum / B}

    # ------------------------------------------------------------------ pieces

    def _activate(self, h: np.ndarray, mask: np.ndarray) -> None:
        """h ← act(h) in place. For ReLU keep the mask 1[a > 0] for the backward."""
        if self.config.activation == "relu":
            np.greater(h, 0, out=mask)  # 1[a > 0]
            h *= mask  # relu(a) = a ⊙ 1[a > 0]
        else:
            np.tanh(h, out=h)

    def _activate_backward(self, dh: np.ndarray, h: np.ndarray, mask: np.ndarray) -> None:
        """dh ← da in place: docs/04-gradients.md eq. (3) for ReLU, docs/04-gradients.md eq. (4) for tanh."""
        if self.config.activation == "relu":
            dh *= mask  # da = dh ⊙ 1[a > 0]
        else:
            np.multiply(h, h, out=mask)
            np.subtract(1, mask, out=mask)
            dh *= mask  # da = dh ⊙ (1 − h²)

    def _encode(self, x, a):
        """The encoder's MLP and its fused head: [μ | log σ²] = h · [W_mu | W_logvar] + [b_mu | b_logvar]."""
        W, n = self.W, len(self.config.hidden_dims)
        h = x
        for i in range(n):
            np.matmul(h, W[f"encoder.W{i}"], out=a.enc[i])  # (B, H_i), docs/04-gradients.md eq. (1)
            a.enc[i] += W[f"encoder.b{i}"]
            self._activate(a.enc[i], a.enc_mask[i])
            h = a.enc[i]
        np.matmul(h, W["encoder.W_head"], out=a.head)  # (B, 2Z): trick 2, one multiply for both heads
        a.head += W["encoder.b_head"]
        Z = self.config.latent_dim
        return a.head[:, :Z], a.head[:, Z:]

    def _decode(self, z, a):
        """The decoder's MLP and its output layer (for a learned variance, the fused [mean | log σ²])."""
        W, n = self.W, len(self.config.hidden_dims)
        h = z
        for i in range(n):
            np.matmul(h, W[f"decoder.W{i}"], out=a.dec[i])  # (B, H_i)
            a.dec[i] += W[f"decoder.b{i}"]
            self._activate(a.dec[i], a.dec_mask[i])
            h = a.dec[i]
        np.matmul(h, W["decoder.W_head"], out=a.out)  # (B, D) or (B, 2D)
        a.out += W["decoder.b_head"]
        return a.out

    def _recon(self, out, x, a) -> float:
        """Σ over the batch of −log p(x|z); writes its gradient with respect to `out` into a.d_out."""
        if self.config.likelihood == "bernoulli":
            return self._bernoulli(out, x, a)
        if self.config.likelihood == "gaussian":
            return self._gaussian(out, x, a)
        return self._gaussian_learned(out, x, a)

    def _bernoulli(self, logits, x, a) -> float:
        """Trick 5: Σ [max(l, 0) − x·l + log(1 + e)] and σ(l) − x from one e = exp(−|l|).

        The loss is docs/04-gradients.md eq. (7), the gradient docs/04-gradients.md eq. (8).
        σ(l) = 1/(1 + e) where l ≥ 0 and e/(1 + e) where l < 0; since 0 < e ≤ 1, the
        numerator is max(e, 1[l ≥ 0]), which keeps σ(l) accurate even where it is tiny.
        """
        e, t, pos, c = a.e, a.t, a.pos, a.c  # (B, D) scratch
        np.greater_equal(logits, 0, out=pos)  # 1[l ≥ 0]
        np.abs(logits, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # e = exp(−|l|) ∈ (0, 1]: the one exponential
        np.log1p(e, out=t)
        np.subtract(pos, x, out=c)  # max(l, 0) − x·l = (1[l ≥ 0] − x)·l
        nll = float(np.vdot(c, logits)) + float(t.sum())
        np.add(e, 1, out=t)  # the denominator 1 + e
        np.maximum(e, pos, out=e)  # the numerator: 1 where l ≥ 0, e where l < 0
        np.divide(e, t, out=a.d_out)  # σ(l)
        a.d_out -= x  # σ(l) − x
        return nll

    def _gaussian(self, mean, x, a) -> float:
        """Σ ½ [(x − m)²/σ² + log σ² + log 2π] and (m − x)/σ², docs/04-gradients.md eq. (9) and (10)."""
        var = float(self.config.gaussian_std) ** 2
        diff = a.d_out
        np.subtract(mean, x, out=diff)  # (B, D) m − x
        sq = float(np.vdot(diff, diff))
        diff *= 1.0 / var  # the gradient (m − x)/σ², docs/04-gradients.md eq. (10)
        return 0.5 * (sq / var + x.size * (math.log(var) + LOG_2PI))

    def _gaussian_learned(self, out, x, a) -> float:
        """Σ ½ [(x − m)² e^(−s) + s + log 2π] with its two gradients, docs/04-gradients.md eq. (11) and (12)."""
        D = self.config.input_dim
        mean, log_var = out[:, :D], out[:, D:]
        dmean, dlog_var = a.d_out[:, :D], a.d_out[:, D:]
        diff, inv_var, sq = a.t, a.e, a.c
        np.subtract(mean, x, out=diff)  # (B, D) m − x
        np.negative(log_var, out=inv_var)
        np.exp(inv_var, out=inv_var)  # e^(−s)
        np.multiply(diff, diff, out=sq)
        sq *= inv_var  # (x − m)² e^(−s): the squared error in units of the variance
        total = 0.5 * (float(sq.sum()) + float(log_var.sum()) + x.size * LOG_2PI)
        np.multiply(diff, inv_var, out=dmean)  # (m − x) e^(−s)
        np.subtract(1, sq, out=dlog_var)
        dlog_var *= 0.5  # ½ [1 − (x − m)² e^(−s)]
        return total

    def _kl(self, mu, log_var, a) -> float:
        """Σ over the batch of ½ Σ_j (μ² + σ² − 1 − log σ²), docs/02-variational-inference.md eq. (10).

        Keeps σ² − 1 = expm1(log σ²) in a.var_m1 for the gradient, docs/04-gradients.md eq. (13).
        """
        np.expm1(log_var, out=a.var_m1)  # σ² − 1, accurate near the prior
        np.subtract(a.var_m1, log_var, out=a.kl)
        np.multiply(mu, mu, out=a.mu_sq)
        a.kl += a.mu_sq
        return 0.5 * float(a.kl.sum())

    def _decode_backward(self, a) -> None:
        """The mirror of _decode: docs/04-gradients.md eq. (2) per layer; leaves dL/dz in a.dz."""
        W, dW, n = self.W, self.dW, len(self.config.hidden_dims)
        inputs = [a.z, *a.dec[:-1]]
        h_last = a.dec[-1] if n else a.z
        np.matmul(h_last.T, a.d_out, out=dW["decoder.W_head"])  # (H, D)
        np.sum(a.d_out, axis=0, out=dW["decoder.b_head"])
        d = a.dec_d[-1] if n else a.dz
        np.matmul(a.d_out, W["decoder.W_head"].T, out=d)  # (B, H): one multiply for both heads
        for i in reversed(range(n)):
            self._activate_backward(a.dec_d[i], a.dec[i], a.dec_mask[i])
            np.matmul(inputs[i].T, a.dec_d[i], out=dW[f"decoder.W{i}"])
            np.sum(a.dec_d[i], axis=0, out=dW[f"decoder.b{i}"])
            d_in = a.dec_d[i - 1] if i > 0 else a.dz
            np.matmul(a.dec_d[i], W[f"decoder.W{i}"].T, out=d_in)

    def _encode_backward(self, x, a) -> None:
        """The mirror of _encode, from [dμ | d log σ²] in a.d_head; no gradient for x (trick 3)."""
        W, dW, n = self.W, self.dW, len(self.config.hidden_dims)
        inputs = [x, *a.enc[:-1]]
        h_last = a.enc[-1] if n else x
        np.matmul(h_last.T, a.d_head, out=dW["encoder.W_head"])  # (H, 2Z)
        np.sum(a.d_head, axis=0, out=dW["encoder.b_head"])
        if n:
            np.matmul(a.d_head, W["encoder.W_head"].T, out=a.enc_d[-1])  # (B, H): both heads feed h
        for i in reversed(range(n)):
            self._activate_backward(a.enc_d[i], a.enc[i], a.enc_mask[i])
            np.matmul(inputs[i].T, a.enc_d[i], out=dW[f"encoder.W{i}"])
            np.sum(a.enc_d[i], axis=0, out=dW[f"encoder.b{i}"])
            if i > 0:
                np.matmul(a.enc_d[i], W[f"encoder.W{i}"].T, out=a.enc_d[i - 1])

    # ------------------------------------------------------------------ the optimizer

    def _update(self) -> None:
        """Clip (if asked), then one optimizer step over the flat buffers (trick 6)."""
        opt = self.optimizer
        if opt.clip_norm is not None:
            # ‖g‖ of all gradients as one vector; scale them together (optim.clip_by_global_norm)
            # accumulated in float64, as optim.clip_by_global_norm does, so both paths clip alike
            norm = math.sqrt(math.fsum(np.square(self._grad, dtype=np.float64)))
            self.last_grad_norm = norm
            if math.isfinite(norm) and norm > opt.clip_norm:
                self._grad *= opt.clip_norm / norm
        self.t += 1
        self._has_state = True
        if isinstance(opt, Adam):
            b1, b2, t = opt.beta1, opt.beta2, self.t
            # Kingma & Ba (2015), end of Sec. 2: both bias corrections folded into α_t and ε̂
            alpha = opt.lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
            eps_hat = opt.eps * math.sqrt(1.0 - b2**t)
            self._adam(b1, b2, alpha, eps_hat)
        elif isinstance(opt, Adagrad):
            self._adagrad(opt.lr, opt.eps)
        else:
            self._sgd(opt.lr, opt.momentum)

    def _adam(self, b1, b2, alpha, eps_hat) -> None:
        theta, g, m, v, tmp = self._theta, self._grad, self._slots["m"], self._slots["v"], self._scratch  # (P,)
        m *= b1  # m ← β1 m + (1 − β1) g
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2  # v ← β2 v + (1 − β2) g²
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        np.sqrt(v, out=tmp)  # √v + ε̂
        tmp += eps_hat
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        theta -= tmp  # θ ← θ − α_t m / (√v + ε̂)

    def _adagrad(self, lr, eps) -> None:
        theta, g, G, tmp = self._theta, self._grad, self._slots["sum_sq"], self._scratch  # (P,)
        np.multiply(g, g, out=tmp)
        G += tmp  # G ← G + g²
        np.sqrt(G, out=tmp)
        tmp += eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        theta -= tmp  # θ ← θ − η g / (√G + ε)

    def _sgd(self, lr, momentum) -> None:
        theta, g, tmp = self._theta, self._grad, self._scratch  # (P,)
        np.multiply(g, lr, out=tmp)
        if momentum > 0.0:
            v = self._slots["velocity"]
            v *= momentum  # v ← μ v − η g
            v -= tmp
            theta += v  # θ ← θ + v
        else:
            theta -= tmp  # θ ← θ − η g

    # ------------------------------------------------------------------ optimizer state

    def optimizer_state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state in the format of optim.Optimizer.state_dict(): "step" and "<slot>/<key>"."""
        state = {"step": np.array(self.t, dtype=np.int64)}
        if self._has_state:
            for slot, views in self._slot_views.items():
                for key, view in views.items():
                    state[f"{slot}/{key}"] = view.copy()
        return state

    def load_optimizer_state_dict(self, state) -> None:
        """Restore a state written by optimizer_state_dict() or by the optimizer's own state_dict()."""
        # A fresh optimizer of the same kind checks the state exactly as a resume of the
        # reference path would (keys, shapes, dtypes against these params).
        probe = make_optimizer(**self.optimizer.hparams())
        # (optim refuses a state without arrays, like a fresh optimizer's, when given params)
        has_arrays = any(key != "step" for key in state)
        probe.load_state_dict(state, self.params if has_arrays else None)
        self.t = probe.t
        self._has_state = bool(probe.slots) and bool(probe.state[probe.slots[0]])
        for slot, views in self._slot_views.items():
            self._slots[slot][...] = 0
            for key, arr in probe.state[slot].items():
                views[key][...] = arr

    def sync_optimizer(self) -> None:
        """Copy the state into the optimizer object, for code that saves `optimizer.state_dict()`
        (checkpoint.save_checkpoint does); the FastStep itself keeps using its flat buffers."""
        state = self.optimizer_state_dict()
        self.optimizer.load_state_dict(state, self.params if len(state) > 1 else None)


class ReferenceStep:
    """The readable path with FastStep's interface: vae.loss_and_grads, then optimizer.step.

    Updates `params` in place (`.params` is the dict passed in); the optimizer keeps its own
    state, as it always does.
    """

    def __init__(self, config: VAEConfig, params: dict[str, np.ndarray], optimizer: Optimizer):
        self.config = config
        self.params = params
        self.optimizer = optimizer
        self.grads: dict[str, np.ndarray] | None = None

    def step(self, x: np.ndarray, eps: np.ndarray, beta: float | None = None) -> dict[str, float]:
        _, self.grads, stats = loss_and_grads(self.params, x, eps, self.config, beta=beta)
        self.optimizer.step(self.params, self.grads)
        return stats

    @property
    def last_grad_norm(self) -> float | None:
        return self.optimizer.last_grad_norm

    def optimizer_state_dict(self) -> dict[str, np.ndarray]:
        return self.optimizer.state_dict()

    def load_optimizer_state_dict(self, state) -> None:
        self.optimizer.load_state_dict(state, self.params if any(key != "step" for key in state) else None)

    def sync_optimizer(self) -> None:
        pass  # the optimizer object already holds the state


def make_step(path: str, config: VAEConfig, params: dict[str, np.ndarray], optimizer: Optimizer,
              max_batch: int):
    """FastStep ("fast") or ReferenceStep ("reference"); both have .step, .params and the state methods."""
    if path == "fast":
        return FastStep(config, params, optimizer, max_batch)
    if path == "reference":
        return ReferenceStep(config, params, optimizer)
    raise ValueError(f"path must be 'fast' or 'reference', got {path!r}")
