"""The curves every source fixture logs: two optimisers (the groups) x three seeds."""

from __future__ import annotations

from collections.abc import Iterator

GROUPS = {"adam": 0.001, "sgd": 0.1}
SEEDS = (0, 1, 2)
STEPS = tuple(range(0, 100, 5))


def curve(group: str, seed: int, step: int) -> dict[str, float]:
    """The values every source logs (float32-representable is not needed: TB is compared
    within float32 precision)."""
    lr = GROUPS[group]
    return {
        "loss": 1.0 / (1.0 + lr * 10 * step + 0.01 * seed) + 0.001 * seed,
        "acc": min(1.0, 0.5 + step * lr + 0.013 * seed),
    }


def all_runs() -> Iterator[tuple[str, float, int]]:
    for group, lr in GROUPS.items():
        for seed in SEEDS:
            yield group, lr, seed
