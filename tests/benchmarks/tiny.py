"""A tiny task for harness and peer tests: 2 categorical parameters, 9 epochs, known best configuration."""

from __future__ import annotations

from typing import Any

from harness import Task

LEVELS = ("a", "b", "c", "d")


def quality(h: dict[str, Any]) -> float:
    return (LEVELS.index(h["x"]) + LEVELS.index(h["y"])) / 6.0  # 0 .. 1, best at x=y="d"


def objective(h: dict[str, Any], epoch: int) -> float:
    growth: float = (epoch / 9.0) ** 0.5  # float ** float is typed Any (it may be complex)
    return 0.5 + 0.4 * quality(h) * growth


def cost(h: dict[str, Any], epoch: int) -> float:
    return 1.0 + LEVELS.index(h["x"])  # 1..4 s per epoch


def task(target: float = 0.9) -> Task:
    ranges = {"CategoricalParameterRanges": [{"Name": "x", "Values": list(LEVELS)},
                                             {"Name": "y", "Values": list(LEVELS)}]}
    return Task("tiny", ranges, objective, cost, 1, 9, (target,), floor=0.5)
