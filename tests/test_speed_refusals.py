"""The speed wing refuses what it has no fast form for; it never substitutes another.

The core's registry of activations (layers.ACTIVATIONS) decides what a model may use.
The speed wing keeps in-place forms of some of them under the same names; a model using one
it lacks must be refused with a message that names it, lists what the fast path supports and
points to the readable path, which handles it. (The old fast step treated every activation
that was not ReLU as tanh.) Each test registers a new entry in the core's registry, so the
readable path really does support it.
"""

import numpy as np
import pytest

from tinyvae import layers, optim
from tinyvae.config import VAEConfig, init_params
from tinyvae.speed import iw
from tinyvae.speed.mlp import IN_PLACE
from tinyvae.speed.step import FastStep, make_step
from tinyvae.train import ReferenceStep


@pytest.fixture
def sigmoid_registered(monkeypatch):
    monkeypatch.setitem(layers.ACTIVATIONS, "sigmoid", layers.Activation(layers.sigmoid_forward,
                                                                          layers.sigmoid_backward))


def model(**kw):
    config = VAEConfig(input_dim=11, hidden_dims=(7,), latent_dim=3, **kw)
    return config, init_params(config, np.random.default_rng(0))


def test_the_fast_tables_use_the_core_registries_names():
    assert set(IN_PLACE) <= set(layers.ACTIVATIONS)


def test_the_fast_step_refuses_an_activation_it_has_no_in_place_form_for(sigmoid_registered):
    config, params = model(activation="sigmoid")
    x, eps = np.full((2, 11), 0.5), np.zeros((2, 3))
    ReferenceStep(config, params, optim.Adam()).step(x, eps)  # the readable path supports it
    with pytest.raises(ValueError) as info:
        FastStep(config, params, optim.Adam(), max_batch=2)
    message = str(info.value)
    assert "'sigmoid'" in message and str(sorted(IN_PLACE)) in message \
        and "step='reference'" in message
    with pytest.raises(ValueError, match="'sigmoid'"):
        make_step("fast", config, params, optim.Adam(), max_batch=2)


def test_the_fast_bound_refuses_an_activation_it_has_no_in_place_form_for(sigmoid_registered):
    config, params = model(activation="sigmoid")
    x = np.full((2, 11), 0.5)
    with pytest.raises(ValueError, match=r"'sigmoid'.*\['relu', 'tanh'\]"):
        iw.iw_bound(params, x, config, np.random.default_rng(0), k=3)


def test_an_unknown_name_is_refused_as_unknown():
    config, params = model()
    object.__setattr__(config, "activation", "swish")  # past VAEConfig's own check
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        FastStep(config, params, optim.Adam(), max_batch=2)
