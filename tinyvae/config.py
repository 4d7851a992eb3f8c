"""The model's shape: its configuration, the parameters it has, and how they start.

A VAE is fixed by a handful of choices (sizes, activation, likelihood, β); `VAEConfig` holds
them, checked, and `param_shapes` turns them into the flat dict of parameters that every
other piece walks by key: `encoder.W0`, `encoder.b0`, ..., `encoder.W_mu`, `encoder.W_logvar`,
`decoder.W0`, ..., `decoder.W_out` (and `decoder.W_logvar` for a learned variance).

Shapes: D data, H hidden, Z latent, K samples of z per image.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ._checks import finite_real, positive_int
from .layers import ACTIVATIONS
from .losses import LIKELIHOODS

Params = dict[str, np.ndarray]  # the flat dict of parameters (and of their gradients), by key

# What a training step maximizes for each image (docs/04-gradients.md section 7):
#   "elbo"  the ELBO, its reconstruction term averaged over k samples, the KL in closed form
#   "iwae"  L_k = log (1/k) Σ_i p(x, z_i)/q(z_i|x), every term sampled (Burda et al. 2016;
#           docs/04-gradients.md eq. (18))
OBJECTIVES = ("elbo", "iwae")


@dataclass(frozen=True)
class VAEConfig:
    """Everything that fixes the model's shape and its loss.

    input_dim    D, pixels per image (784 for MNIST)
    hidden_dims  sizes of the hidden layers of the encoder; the decoder mirrors them
    latent_dim   Z, dimensions of z
    activation   "relu" or "tanh" for the hidden layers
    likelihood   p(x|z): "bernoulli" (logits), "gaussian" (fixed σ = gaussian_std), or
                 "gaussian-learned-variance" (a per-pixel log σ² from the decoder)
    beta         weight of the KL term (1 is the ELBO; β-VAE otherwise; 0 is a plain
                 autoencoder with a noisy code)
    gaussian_std σ of the fixed-variance Gaussian likelihood
    k            samples of z per image in the training loss (1: the classic VAE)
    objective    "elbo" or "iwae", see OBJECTIVES. At k = 1 both are the ELBO; they differ
                 only in its KL term, in closed form ("elbo") or sampled ("iwae")
    """

    input_dim: int = 784
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    activation: str = "relu"
    likelihood: str = "bernoulli"
    beta: float = 1.0
    gaussian_std: float = 1.0
    k: int = 1
    objective: str = "elbo"

    def __post_init__(self):
        # A frozen dataclass may still normalise its own fields while being built: plain ints,
        # a tuple, plain floats, so that equality and to_dict (JSON) behave.
        def put(name, value):
            object.__setattr__(self, name, value)

        put("input_dim", positive_int("VAEConfig.input_dim", self.input_dim))
        put("latent_dim", positive_int("VAEConfig.latent_dim", self.latent_dim))
        if isinstance(self.hidden_dims, (str, bytes)) or not hasattr(self.hidden_dims, "__iter__"):
            raise ValueError("VAEConfig.hidden_dims must be a tuple of positive integers, "
                             f"got {self.hidden_dims!r}")
        put("hidden_dims",
            tuple(positive_int("VAEConfig.hidden_dims", h) for h in self.hidden_dims))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"VAEConfig.activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"VAEConfig.likelihood must be one of {list(LIKELIHOODS)}, "
                             f"got {self.likelihood!r}")
        put("beta", finite_real("VAEConfig.beta", self.beta, minimum=0))
        put("gaussian_std",
            finite_real("VAEConfig.gaussian_std", self.gaussian_std, minimum=0, strict=True))
        # The loss divides by σ² and takes log σ²: outside this range σ² under- or overflows.
        if not 1e-100 <= self.gaussian_std <= 1e100:
            raise ValueError("VAEConfig.gaussian_std must lie in [1e-100, 1e100], "
                             f"got {self.gaussian_std!r}")
        put("k", positive_int("VAEConfig.k", self.k))
        if self.objective not in OBJECTIVES:
            raise ValueError(f"VAEConfig.objective must be one of {list(OBJECTIVES)}, "
                             f"got {self.objective!r}")
        if self.objective == "iwae" and self.beta != 1:
            # L_k bounds log p(x) only with every term at weight 1: there is no β-IWAE to
            # refuse silently.
            raise ValueError(f"VAEConfig.objective 'iwae' needs beta = 1 "
                             f"(L_k has no KL term to weigh), got beta = {self.beta!r}")

    @property
    def learned_variance(self) -> bool:
        """The decoder has a second head, a per-pixel log σ² (docs/04-gradients.md eq. (11))."""
        return self.likelihood == "gaussian-learned-variance"

    def to_dict(self) -> dict:
        """A JSON-able dict (tuples become lists), for checkpoints and metrics files."""
        d = dataclasses.asdict(self)
        d["hidden_dims"] = list(self.hidden_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        """The inverse of to_dict; unknown or missing fields raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"VAEConfig: unknown field(s) {sorted(unknown)}; "
                             f"expected some of {sorted(names)}")
        d = dict(d)
        if "hidden_dims" in d and isinstance(d["hidden_dims"], list):
            d["hidden_dims"] = tuple(d["hidden_dims"])
        return cls(**d)


def param_shapes(config: VAEConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter, by key; W is (fan_in, fan_out) since layers compute x·W + b."""
    shapes = {}
    sizes = (config.input_dim, *config.hidden_dims)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"encoder.W{i}"] = (fan_in, fan_out)
        shapes[f"encoder.b{i}"] = (fan_out,)
    for head in ("mu", "logvar"):
        shapes[f"encoder.W_{head}"] = (sizes[-1], config.latent_dim)
        shapes[f"encoder.b_{head}"] = (config.latent_dim,)
    # The decoder mirrors the encoder: Z -> reversed hidden sizes -> D.
    sizes = (config.latent_dim, *reversed(config.hidden_dims))
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"decoder.W{i}"] = (fan_in, fan_out)
        shapes[f"decoder.b{i}"] = (fan_out,)
    shapes["decoder.W_out"] = (sizes[-1], config.input_dim)
    shapes["decoder.b_out"] = (config.input_dim,)
    if config.learned_variance:
        shapes["decoder.W_logvar"] = (sizes[-1], config.input_dim)
        shapes["decoder.b_logvar"] = (config.input_dim,)
    return shapes


def check_params_fit(config: VAEConfig, params, what: str = "params") -> np.dtype:
    """The parameters' one dtype, float32 or float64, after checking that they have exactly the
    keys and shapes of param_shapes(config); a ValueError naming the key otherwise."""
    shapes = param_shapes(config)
    if set(params) != set(shapes):
        raise ValueError(f"{what} must have exactly the keys of param_shapes(config): missing "
                         f"{sorted(set(shapes) - set(params))}, "
                         f"unexpected {sorted(set(params) - set(shapes))}")
    dtype = np.asarray(params["encoder.W_mu"]).dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{what} must be float32 or float64, got {dtype}")
    for key, shape in shapes.items():
        arr = np.asarray(params[key])
        if arr.shape != shape:
            raise ValueError(f"{what}[{key!r}] has shape {arr.shape}, the config needs {shape}")
        if arr.dtype != dtype:
            raise ValueError(f"{what}[{key!r}] has dtype {arr.dtype}, "
                             f"the other parameters have {dtype}")
    return dtype


def dtype_of(params: Params) -> np.dtype:
    """The parameters' dtype, which decides the arithmetic
    (float32 for speed, float64 for checks)."""
    return params["encoder.W_mu"].dtype


INIT_SCHEMES = ("uniform", "glorot")


def init_params(config: VAEConfig, rng: np.random.Generator, dtype: type | np.dtype = np.float64, *,
                scheme: str = "uniform") -> Params:
    """Random initial parameters, by `scheme`:

    "uniform" (the default): W and b uniform in ±1/√fan_in. This is the default of PyTorch's
        nn.Linear, so that a run compares with its VAE example like for like. The biases are
        random too: zero biases hide gradient bugs in the checks (a wrong `db` multiplied by
        zero passes).
    "glorot": W uniform in ±√(6 / (fan_in + fan_out)), b = 0 (Glorot & Bengio 2010, their
        equation 16, the "normalized initialization" for tanh layers; Burda et al. 2016 train
        with it). Only the weights draw from rng, key by key in param_shapes order.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init_params scheme must be one of {list(INIT_SCHEMES)}, got {scheme!r}")
    shapes = param_shapes(config)
    params = {}
    for key, shape in shapes.items():
        # A bias takes the fan-in of its layer's weight: "decoder.b_out" -> "decoder.W_out".
        weight_shape = shapes[key.replace(".b", ".W", 1)]
        if scheme == "glorot" and len(shape) == 1:
            params[key] = np.zeros(shape, dtype=dtype)  # Glorot & Bengio start the biases at zero
            continue
        if scheme == "glorot":
            bound = math.sqrt(6.0 / (weight_shape[0] + weight_shape[1]))
        else:
            bound = 1.0 / math.sqrt(weight_shape[0])
        params[key] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params
