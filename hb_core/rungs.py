"""Rung and bracket math of Hyperband and ASHA.

Terms:

- *resource*: the unit a trial is trained in (epochs by default). With AMT
  semantics it is the count of objective values the trial has reported.
- *rung level* (milestone): a resource at which a trial is judged. The levels
  are ``min_resource * eta**k`` for k = 0, 1, ... while they stay below
  ``max_resource``, plus a last rung at ``max_resource`` itself.
- *bracket* s: the rung levels from index s on. Bracket 0 judges at
  ``min_resource`` first (the most aggressive); bracket s gives every trial
  ``min_resource * eta**s`` resource before its first judgement. Hyperband
  hedges over brackets; ASHA is bracket 0 alone.
- *keep rule*: at a rung holding n values, a value is kept (the trial goes on,
  or may be promoted) when its rank among the n is at most ``keep_count``.

Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Sequence

__all__ = [
    "bracket_for",
    "bracket_weights",
    "keep_count",
    "promote_count",
    "rank",
    "rung_levels",
    "stable_unit",
]


def rung_levels(min_resource: int, max_resource: int, eta: int) -> tuple[int, ...]:
    """The rung levels ``min * eta**k < max``, then ``max`` itself.

    >>> rung_levels(1, 27, 3)
    (1, 3, 9, 27)
    >>> rung_levels(1, 20, 3)
    (1, 3, 9, 20)
    """
    levels: list[int] = []
    level = min_resource
    while level < max_resource:
        levels.append(level)
        level *= eta
    levels.append(max_resource)
    return tuple(levels)


def keep_count(n: int, eta: int) -> int:
    """How many of ``n`` values at a rung are kept by the stopping rule: the top 1/eta.

    At least one is kept, so the first trial to reach an empty rung goes on.
    """
    return max(1, math.ceil(n / eta))


def promote_count(n: int, eta: int) -> int:
    """How many of ``n`` paused trials at a rung may be promoted (ASHA: ``floor(n/eta)``)."""
    return n // eta


def rank(sorted_keys: Sequence[float], key: float) -> int:
    """1-based rank of ``key`` among ascending ``sorted_keys`` (lower key is better).

    Ties share the better rank: the rank is one more than the count of keys
    strictly better than ``key``.
    """
    return bisect.bisect_left(sorted_keys, key) + 1


def bracket_weights(n_levels: int, n_brackets: int, eta: int) -> tuple[float, ...]:
    """Probabilities of brackets 0..n_brackets-1, as in the Hyperband paper.

    With ``s_max = n_levels - 1``, bracket b corresponds to the paper's
    ``s = s_max - b`` and starts ``ceil((s_max + 1) / (s + 1) * eta**s)``
    configurations; the weights are those counts, normalised over the brackets
    in use.
    """
    s_max = n_levels - 1
    counts = [math.ceil((s_max + 1) / (s_max - b + 1) * eta ** (s_max - b)) for b in range(n_brackets)]
    total = float(sum(counts))
    return tuple(c / total for c in counts)


def stable_unit(*parts: str) -> float:
    """A number in [0, 1) that depends only on ``parts``: the same in every process and after restarts."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def bracket_for(job_name: str, trial_id: str, weights: Sequence[float]) -> int:
    """The bracket of a trial, chosen by a stable hash of (tuning job, trial id)."""
    u = stable_unit(job_name, trial_id)
    cumulative = 0.0
    for bracket, weight in enumerate(weights):
        cumulative += weight
        if u < cumulative:
            return bracket
    return len(weights) - 1
