"""Server-rendered SVG charts: no JavaScript library, no CDN, no build step.

Two charts, each a pure function returning an ``<svg>`` string (every text
escaped): learning curves (objective against resource, one line per trial,
stopped and failed trials faded, rung levels marked) and the best value so far
against wall time. Hovering a line shows its trial (an SVG ``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from hb_core.state import Trial, TrialStatus, TuningState

__all__ = ["best_so_far_chart", "learning_curves_chart", "nice_ticks"]

WIDTH, HEIGHT = 720, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 14, 40
#: Drawing order: faded lines first, the best trial last (on top).
_LAYER = {TrialStatus.FAILED: 0, TrialStatus.STOPPED: 1, TrialStatus.PAUSED: 2, TrialStatus.COMPLETED: 3,
          TrialStatus.STOPPING: 4, TrialStatus.PENDING: 4, TrialStatus.IN_PROGRESS: 4}


@dataclass(frozen=True)
class _Scale:
    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def __call__(self, value: float) -> float:
        lo, hi, v = self.lo, self.hi, value
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(max(value, self.lo))
        span = (hi - lo) or 1.0
        return self.start + (v - lo) / span * (self.end - self.start)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers (1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + step * 1e-9 and k < 50:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def learning_curves_chart(state: TuningState, *, max_curves: int = 300) -> str:
    """Objective against resource, one polyline per trial (at most ``max_curves``: the best and the running)."""
    metric = state.config.objective.metric_name
    trials = [t for t in state.trials if any(math.isfinite(v) for _, v, _ in t.points)]
    if not trials:
        return _empty("No metric reported yet: learning curves appear with the first values.")
    shown = _pick(state, trials, max_curves)
    values = [v for t in shown for _, v, _ in t.points if math.isfinite(v)]
    resources = [r for t in shown for r, _, _ in t.points]
    levels = [r.level for r in state.rungs[0]] if state.rungs else []
    x_lo = max(1, min(resources + levels[:1]))
    x_hi = max(resources + levels[-1:] + [state.config.max_resource or 0])
    log_x = x_lo > 0 and x_hi / x_lo >= 8
    x = _Scale(x_lo, max(x_hi, x_lo + 1), MARGIN_LEFT, WIDTH - MARGIN_RIGHT, log=log_x)
    y_lo, y_hi = _value_range(values)
    y = _Scale(y_lo, y_hi, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)
    x_ticks = sorted(set(levels)) if log_x and levels else (_log_ticks(x_lo, x_hi) if log_x else nice_ticks(x_lo, x_hi))
    parts = [_frame("curves", f"{metric} against resource, one line per trial"),
             _axes(x, y, x_ticks, nice_ticks(y_lo, y_hi), "resource" + (" (log scale)" if log_x else ""), metric)]
    for level in levels:
        px = x(level)
        parts.append(f'<line class="rung" x1="{px:.1f}" x2="{px:.1f}" y1="{MARGIN_TOP}" '
                     f'y2="{HEIGHT - MARGIN_BOTTOM}"><title>rung level {level}</title></line>')
    best = state.best_trial(so_far=True)
    best_index = best.index if best is not None else None
    ordered = sorted(shown, key=lambda t: (t.index == best_index, _LAYER[t.status], t.index))
    parts.append('<g clip-path="url(#plot-curves)">')
    for trial in ordered:
        parts.append(_curve(trial, x, y, best=trial.index == best_index))
    parts.append("</g>")
    note = "" if len(shown) == len(trials) else f"showing {len(shown)} of {len(trials)} trials"
    parts.append(_legend(note))
    parts.append("</svg>")
    return "".join(parts)


def best_so_far_chart(trace: Sequence[tuple[float, float]], metric: str, *, until: float | None = None) -> str:
    """Best value so far (a step line) against seconds since the job started; ``until`` extends the last step."""
    if not trace:
        return _empty("No metric reported yet: the best-so-far curve appears with the first value.")
    end = max(until or 0.0, trace[-1][0])
    values = [v for _, v in trace]
    unit, suffix = (3600.0, "h") if end >= 7200 else (60.0, "min") if end >= 120 else (1.0, "s")
    x_ticks = [t * unit for t in nice_ticks(0.0, end / unit)]
    x = _Scale(0.0, end or 1.0, MARGIN_LEFT, WIDTH - MARGIN_RIGHT)
    y_lo, y_hi = _value_range(values, robust=False)
    y = _Scale(y_lo, y_hi, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP)
    parts = [_frame("best", f"best {metric} so far against wall time"),
             _axes(x, y, x_ticks, nice_ticks(y_lo, y_hi), "time since the tuning job started", f"best {metric}",
                   x_format=lambda t: f"{t / unit:g} {suffix}")]
    points = []
    for i, (t, v) in enumerate(trace):
        if i:
            points.append(f"{x(t):.1f},{y(trace[i - 1][1]):.1f}")
        points.append(f"{x(t):.1f},{y(v):.1f}")
    points.append(f"{x(end):.1f},{y(trace[-1][1]):.1f}")
    parts.append(f'<polyline class="best-line" points="{" ".join(points)}"/>')
    for t, v in trace if len(trace) <= 40 else ():
        parts.append(f'<circle class="best-dot" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3">'
                     f"<title>{escape(f'{v:.6g} at {_duration(t)}')}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def _pick(state: TuningState, trials: list[Trial], limit: int) -> list[Trial]:
    if len(trials) <= limit:
        return trials
    objective = state.config.objective
    active = [t for t in trials if t.status.active or t.index == state.best_index]
    rest = sorted((t for t in trials if not (t.status.active or t.index == state.best_index)),
                  key=lambda t: objective.key(t.last_value if t.last_value is not None else math.nan))
    return (active + rest)[:limit]


def _value_range(values: Sequence[float], *, robust: bool = True) -> tuple[float, float]:
    """The y range: all values, or for many values the 2nd to 98th percentile (an outlier does not flatten the rest)."""
    ordered = sorted(values)
    lo, hi = ordered[0], ordered[-1]
    if robust and len(ordered) >= 50:
        lo, hi = ordered[len(ordered) // 50], ordered[-1 - len(ordered) // 50]
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks: list[float] = []
    value = 10.0 ** math.floor(math.log10(lo))
    while value <= hi and len(ticks) < 12:
        for m in (1, 2, 5):
            if lo <= m * value <= hi:
                ticks.append(m * value)
        value *= 10
    return ticks


def _frame(name: str, label: str) -> str:
    return (f'<svg class="chart chart-{name}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            f'<defs><clipPath id="plot-{name}"><rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" '
            f'width="{WIDTH - MARGIN_LEFT - MARGIN_RIGHT}" height="{HEIGHT - MARGIN_TOP - MARGIN_BOTTOM}"/>'
            f"</clipPath></defs>")


def _axes(x: _Scale, y: _Scale, x_ticks: Sequence[float], y_ticks: Sequence[float], x_label: str, y_label: str,
          *, x_format: Callable[[float], str] | None = None) -> str:
    fmt_x = x_format or _number
    bottom, left = HEIGHT - MARGIN_BOTTOM, MARGIN_LEFT
    parts = [(f'<g class="axes"><line x1="{left}" x2="{WIDTH - MARGIN_RIGHT}" y1="{bottom}" y2="{bottom}"/>'
              f'<line x1="{left}" x2="{left}" y1="{MARGIN_TOP}" y2="{bottom}"/>')]
    for tick in x_ticks:
        px = x(tick)
        parts.append(f'<line class="tick" x1="{px:.1f}" x2="{px:.1f}" y1="{bottom}" y2="{bottom + 4}"/>'
                     f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle">{escape(fmt_x(tick))}</text>')
    for tick in y_ticks:
        py = y(tick)
        if MARGIN_TOP - 1 <= py <= bottom + 1:
            parts.append(f'<line class="grid" x1="{left}" x2="{WIDTH - MARGIN_RIGHT}" y1="{py:.1f}" y2="{py:.1f}"/>'
                         f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{escape(_number(tick))}</text>')
    parts.append(f'<text class="label" x="{(left + WIDTH - MARGIN_RIGHT) / 2:.0f}" y="{HEIGHT - 6}" '
                 f'text-anchor="middle">{escape(x_label)}</text>'
                 f'<text class="label" transform="translate(14 {(MARGIN_TOP + bottom) / 2:.0f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text></g>')
    return "".join(parts)


def _curve(trial: Trial, x: _Scale, y: _Scale, *, best: bool) -> str:
    points = [(r, v) for r, v, _ in trial.points if math.isfinite(v)]
    status = trial.status.value.lower()
    hps = ", ".join(f"{k}={_number(v) if isinstance(v, float) else v}" for k, v in trial.hyperparameters.items())
    last = points[-1]
    title = escape(f"trial {trial.trial_id} ({trial.status.value}): {_number(last[1])} at resource {last[0]}; {hps}")
    css = f"curve s-{status}" + (" best" if best else "")
    if len(points) == 1:
        return (f'<circle class="{css}" data-trial="{trial.trial_id}" cx="{x(last[0]):.1f}" cy="{y(last[1]):.1f}" '
                f'r="2.5"><title>{title}</title></circle>')
    coords = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in points)
    return f'<polyline class="{css}" data-trial="{trial.trial_id}" points="{coords}"><title>{title}</title></polyline>'


def _legend(note: str) -> str:
    items = [("s-completed", "completed"), ("s-inprogress", "running"), ("s-paused", "paused"),
             ("s-stopped", "stopped"), ("s-failed", "failed"), ("best", "best")]
    parts = ['<g class="legend">']
    xpos = MARGIN_LEFT + 8
    for css, label in items:
        parts.append(f'<line class="curve {css}" x1="{xpos}" x2="{xpos + 16}" y1="{MARGIN_TOP + 8}" '
                     f'y2="{MARGIN_TOP + 8}"/><text x="{xpos + 20}" y="{MARGIN_TOP + 12}">{label}</text>')
        xpos += 28 + 7 * len(label)
    if note:
        parts.append(f'<text x="{WIDTH - MARGIN_RIGHT - 4}" y="{MARGIN_TOP + 12}" text-anchor="end">'
                     f"{escape(note)}</text>")
    parts.append("</g>")
    return "".join(parts)


def _empty(message: str) -> str:
    return (f'<svg class="chart chart-empty" viewBox="0 0 {WIDTH} 60" role="img" aria-label="{escape(message)}" '
            f'xmlns="http://www.w3.org/2000/svg"><text x="{WIDTH / 2:.0f}" y="34" text-anchor="middle">'
            f"{escape(message)}</text></svg>")


def _number(value: float) -> str:
    return f"{value:.4g}"


def _duration(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"
