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
  or may be promoted) when its rank among the n is at most ``keep_count``
  (``promote_count`` for a paused trial), and the rung holds at least
  ``MinRungResults`` values (:func:`keeps`; default 1: judged from the first).

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
    "keeps",
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


def keeps(rank: int, n: int, eta: int, min_results: int = 1, *, paused: bool = False) -> bool:
    """The rung rule: does the value of ``rank`` (1-based) among the ``n`` recorded at a rung go on?

    It does when the rung holds at least ``min_results`` values (``MinRungResults``) and the rank is within
    :func:`keep_count` (a running trial, Stopping variant) or :func:`promote_count` (a ``paused`` trial,
    Promotion variant). ``min_results`` above 1 is a delayed rule: a rung does not pass on the first trials
    to reach it before it has values to compare them with. With Stopping it is Optuna's ``bootstrap_count``
    (early arrivals are stopped); with Promotion they wait paused, in the spirit of Hyper-Tune's delayed
    ASHA (which waits for eta times the number already promoted; ``floor(n/eta)`` already needs eta values,
    so only ``min_results`` above eta changes Promotion). With the default 1, a lone first value is kept
    (Stopping) as in ASHA.

    >>> keeps(1, 1, 3), keeps(1, 1, 3, min_results=3), keeps(1, 3, 3, min_results=3), keeps(2, 3, 3)
    (True, False, True, False)
    """
    return n >= min_results and rank <= (promote_count(n, eta) if paused else keep_count(n, eta))


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
