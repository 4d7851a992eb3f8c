"""Learning-rate schedules: piecewise constant, [[first epoch, lr], ...], kept in checkpoints.

The runner (runner.py) sets the optimizer's rate at the start of every epoch from the
schedule, and a resumed run is refused unless its schedule is the same: the schedule is one
of the run's settings, like the batch size.
"""

from __future__ import annotations

from ..._checks import finite_real, nonnegative_int


def check_schedule(schedule) -> list[list] | None:
    """[[first epoch, lr], ...] as JSON-able lists, checked: epochs rise from 1, rates > 0."""
    if schedule is None:
        return None
    pairs = [[nonnegative_int("lr_schedule epoch", int(e) if float(e).is_integer() else e),
              finite_real("lr_schedule lr", lr, minimum=0, strict=True)] for e, lr in schedule]
    epochs = [e for e, _ in pairs]
    if not pairs or epochs[0] != 1 or any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ValueError(f"lr_schedule must start at epoch 1 with rising epochs, got {schedule!r}")
    return pairs


def scheduled_lr(schedule: list[list], epoch: int) -> float:
    """The learning rate of `epoch` under a piecewise-constant schedule [[first epoch, lr], ...]."""
    return [lr for first, lr in schedule if first <= epoch][-1]


def iwae_stages(n_stages: int = 8, base_lr: float = 1e-3, passes_base: int = 3,
                decay_over: int = 7) -> list[dict]:
    """Burda et al.'s (2016, section 5) schedule as stages: stage i = 0 .. n_stages−1 runs
    passes_base^i passes over the data at lr = base_lr · 10^(−i/decay_over).

    Each stage is {"stage", "first_epoch", "last_epoch", "epochs", "lr"}, epochs counted from 1
    across the whole schedule: for the paper's 8 stages, 1 + 3 + ... + 2187 = 3,280 passes.
    """
    n_stages = nonnegative_int("n_stages", n_stages)
    stages, first = [], 1
    for i in range(n_stages):
        epochs = passes_base ** i
        stages.append({"stage": i, "first_epoch": first, "last_epoch": first + epochs - 1,
                       "epochs": epochs, "lr": base_lr * 10.0 ** (-i / decay_over)})
        first += epochs
    return stages


def schedule_of_stages(stages: list[dict]) -> list[list]:
    """The runner's lr_schedule, [[first epoch, lr], ...], of a list of stages (iwae_stages)."""
    return check_schedule([[s["first_epoch"], s["lr"]] for s in stages])
