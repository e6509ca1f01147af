"""Outliers (issue 19, point 2): figures far from what a unit usually reports, by three methods.

Reported figures are rarely normal: counts are skewed (a few big wards, a few big months), and many
series are mostly zeros. Bounds of mean ± k standard deviations, as DHIS2's min-max generation makes,
then flag ordinary values by the dozen and miss real errors hidden by the spread they cause. Here:

- **MOD_Z_SCORE** — the robust score of Iglewicz and Hoaglin over the unit's series in the window
  (the periods asked and the `history` before them): z = (x − median) / σ, σ = 1.4826 × MAD (the
  median absolute deviation); where half the values are equal (MAD = 0), σ = 1.2533 × the mean
  absolute deviation. A count cannot vary by less than one, so for whole-number series σ ≥ 1: a 2
  among zeros is not an outlier, a 40 is. Flagged when |z| > threshold (3.5).
- **MIN_MAX** — bounds learnt from the unit's history alone (the `history` periods before the first
  one asked, at least 6 values): median ± threshold × σ as above, computed on log(1 + x) for series
  that are never negative, so that the bounds follow a skewed series' multiplicative spread; the
  answer gives the bounds.
- **SEASONAL** — against the same period of earlier years (up to 5, at least 2): expected = their
  median; σ the larger of the same-period values' spread and of the unit's deviations, in the
  `history` periods, from their own earlier years (the noise once the season is out); flagged when
  |x − expected| / σ > threshold. On log(1 + x) for series never negative, so that a December five
  times busier may vary five times more.

Figures come from `quality.grid`: stored values, or analytics (any level, either map, warehouse
counts `ev.…` from the rollups, indicators).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dieuhanh.errors import DomainError
from dieuhanh.indicators import analytics
from dieuhanh.indicators import formula as f
from dieuhanh.indicators.models import Indicator
from dieuhanh.indicators.periods import Period
from dieuhanh.indicators.quality import grid
from dieuhanh.units.models import Unit
from dieuhanh.units.scoping import Area
from dieuhanh.vnformat import number

ALGORITHMS = ("MOD_Z_SCORE", "MIN_MAX", "SEASONAL")
DEFAULT_THRESHOLD = 3.5
MIN_HISTORY = 6
SEASONAL_YEARS = 5


class OutlierError(DomainError):
    """A question the outlier detection cannot answer as asked: 422, `param` (the field) at fault."""

    def __init__(self, param: str, message: str | Promise) -> None:
        super().__init__(param, message)
        self.param = param


@dataclass
class Outlier:
    dx: str
    unit: Unit
    period: str
    value: float
    score: float | None
    middle: float  # median of the window, or the expected value (SEASONAL)
    lower: float
    upper: float
    history: int  # values the judgement rests on

    def as_dict(self) -> dict[str, Any]:
        return {
            "dx": self.dx,
            "pe": self.period,
            "ou": self.unit.ref,
            "ouName": self.unit.name,
            "value": self.value,
            "score": None if self.score is None or math.isinf(self.score) else round(self.score, 2),
            "median": _r(self.middle),
            "lowerBound": _r(self.lower),
            "upperBound": _r(self.upper),
            "history": self.history,
        }


def _r(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(x, 4)


def spread(values: list[float], centre: float, whole: bool) -> float:
    """A robust σ of values around centre: 1.4826 MAD, else 1.2533 mean absolute deviation; at least
    one unit for whole-number series."""
    deviations = [abs(v - centre) for v in values]
    sigma = 1.4826 * median(deviations) if deviations else 0.0
    if sigma == 0 and deviations:
        sigma = 1.2533 * sum(deviations) / len(deviations)
    if whole:
        sigma = max(sigma, 1.0)
    return sigma


def _whole(values: list[float]) -> bool:
    return all(float(v).is_integer() for v in values)


def history_periods(periods: list[Period], count: int) -> list[Period]:
    """The `count` periods of the asked type just before the earliest asked one."""
    first = min(periods)
    out, current = [], first
    for _step in range(count):
        current = current.previous()
        out.append(current)
    return out[::-1]


def seasonal_periods(periods: list[Period], years: int = SEASONAL_YEARS) -> list[Period]:
    """The same periods in each of the earlier years."""
    out: set[Period] = set()
    for period in periods:
        current = period
        for _year in range(years):
            current = current.last_year()
            out.add(current)
    return sorted(out)


def detect(
    refs: list[str],
    periods: list[Period],
    units: list[Unit],
    *,
    algorithm: str = "MOD_Z_SCORE",
    threshold: float = DEFAULT_THRESHOLD,
    history: int = 24,
    area: Area | None = None,
) -> tuple[list[Outlier], int]:
    """The outliers among the figures of refs at units × periods, and how many figures were judged."""
    if algorithm not in ALGORITHMS:
        raise OutlierError(
            "algorithm",
            _("'%(value)s' is not one of: %(choices)s")
            % {"value": algorithm, "choices": ", ".join(ALGORITHMS)},
        )
    if len({p.type for p in periods}) != 1:
        raise OutlierError("pe", _("all periods of one question are of one type (months, or quarters, …)"))
    for ref in refs:
        if analytics.reference(ref) is None and not Indicator.objects.filter(code=ref).exists():
            raise OutlierError(
                "dx", _("no indicator, data element or event count '%(code)s'") % {"code": ref}
            )
    noise: list[Period] = []
    if algorithm == "SEASONAL":
        earlier = seasonal_periods(periods)
        # The noise is measured on the months between: last year's months and their own earlier years.
        noise = history_periods(periods, history) if history else []
        window = sorted(set(earlier) | set(noise) | set(seasonal_periods(noise)) | set(periods))
    elif algorithm == "MIN_MAX":
        window = sorted(set(history_periods(periods, history)) | set(periods))
    else:
        window = sorted(set(history_periods(periods, history)) | set(periods))
    earlier_ids = {p.id for p in window if p < min(periods)}
    found: list[Outlier] = []
    judged = 0
    by_id = {u.pk: u for u in units}
    if algorithm == "MOD_Z_SCORE" and grid.database_pivots():
        # PostgreSQL pivots two million values in about half the time it takes to send them; SQLite
        # does not (it sorts to group: slower than reading the rows as they are, below).
        found, judged, rest = mod_z_stored(refs, units, window, periods, threshold)
        refs = [r for r in refs if r in rest]
    for batch in _batches(refs, 10):  # a few elements at a time: one query, memory bounded
        direct, rest = grid.series(batch, units, window)
        columns = _columns(sorted(rest), units, window, area) if rest else {}
        for ref in batch:
            whole = _whole_ref(ref)
            series = direct.get(ref)
            if series is None:
                series = defaultdict(dict)
                for (unit_id, pid), value in columns.get(ref, {}).items():
                    series[unit_id][pid] = value
            for unit_id, values in series.items():
                unit = by_id.get(unit_id)
                if unit is None:
                    continue
                if algorithm == "MOD_Z_SCORE":
                    outs, n = _mod_z(ref, unit, values, window, periods, threshold, whole)
                elif algorithm == "MIN_MAX":
                    outs, n = _min_max(ref, unit, values, periods, earlier_ids, threshold)
                else:
                    outs, n = _seasonal(ref, unit, values, periods, noise, threshold)
                found += outs
                judged += n
    found.sort(key=_rank)
    return found, judged


def _rank(o: Outlier) -> tuple:
    return (-(abs(o.score) if o.score is not None else math.inf), o.dx, o.unit.path, o.period)


def _whole_ref(ref: str) -> bool | None:
    """True for an integer element or an event count, None when only the values can tell."""
    found = analytics.reference(ref)
    if isinstance(found, analytics.EventRef):
        return True
    if isinstance(found, analytics.ElementRef) and found.element.value_type == "integer":
        return True
    return None


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _columns(
    refs: list[str], units: list[Unit], window: list[Period], area: Area | None
) -> dict[str, grid.Column]:
    plain = {r for r in refs if analytics.reference(r) is not None}
    columns = grid.read(plain, units, window, area).columns if plain else {}
    for ref in refs:
        if ref not in plain:
            columns[ref] = _indicator_column(ref, units, window, area)
    return columns


def _indicator_column(ref: str, units: list[Unit], window: list[Period], area: Area | None) -> grid.Column:
    """An indicator: evaluated through analytics, as the analytics API would answer it."""
    dim = analytics.dimension(ref)
    answer = analytics.compute([dim], window, units, area)
    out: grid.Column = {}
    for unit in units:
        for period in window:
            value = f.evaluate(dim.tree, analytics.CellEnv(answer, unit.pk, period, analytics.Track()))
            if value is not None:
                out[(unit.pk, period.id)] = value
    return out


def _mod_z(
    ref: str,
    unit: Unit,
    values: dict[str, float],
    window: list[Period],
    asked: list[Period],
    threshold: float,
    whole: bool | None = None,
) -> tuple[list[Outlier], int]:
    present = list(values.values())
    if len(present) < MIN_HISTORY:
        return [], 0
    centre = median(present)
    sigma = spread(present, centre, _whole(present) if whole is None else whole)
    judged = _judged(values, asked)
    out = []
    for period, x in judged:
        z = (x - centre) / sigma if sigma else (0.0 if x == centre else math.inf)
        if abs(z) > threshold:
            out.append(
                Outlier(
                    ref,
                    unit,
                    period.id,
                    x,
                    z,
                    centre,
                    centre - threshold * sigma,
                    centre + threshold * sigma,
                    len(present),
                )
            )
    return out, len(judged)


def mod_z_stored(
    refs: list[str], units: list[Unit], window: list[Period], periods: list[Period], threshold: float
) -> tuple[list[Outlier], int, set[str]]:
    """MOD_Z_SCORE over stored series, a matrix per element (a row per unit, a column per period of
    the window; grid.series_matrix) judged by numpy a whole element at once: the same outliers, scores
    and bounds as _mod_z unit by unit (tests compare). Also the references this way does not answer."""
    matrices, rest = grid.series_matrix(refs, units, window)
    window_ids = [p.id for p in window]
    asked = [window_ids.index(p.id) for p in periods]
    by_id = {u.pk: u for u in units}
    found: list[Outlier] = []
    judged = 0
    for ref, (unit_ids, figures) in matrices.items():
        whole = _whole_ref(ref)
        outs, n = _mod_z_matrix(ref, unit_ids, figures, asked, threshold, whole, by_id, window_ids)
        found += outs
        judged += n
    return found, judged, rest


def _mod_z_matrix(
    ref: str,
    unit_ids: np.ndarray,
    values: np.ndarray,
    asked: list[int],
    threshold: float,
    whole: bool | None,
    by_id: dict[int, Unit],
    window_ids: list[str],
) -> tuple[list[Outlier], int]:
    """_mod_z over many units at once: `values` has a row per unit (`unit_ids`) and a column per period
    of the window (NaN where none is stored); `asked` are the columns judged. Medians are taken as
    statistics.median takes them (the middle one, or the mean of the two middle ones of the sorted
    figures), so that the scores are the same floats."""
    n = np.count_nonzero(~np.isnan(values), axis=1)
    keep = (n >= MIN_HISTORY) & np.isin(unit_ids, list(by_id))
    unit_ids, values, n = unit_ids[keep], values[keep], n[keep]
    if not len(values):
        return [], 0
    rows = np.arange(len(values))
    low, high = (n - 1) // 2, n // 2  # NaN sorts last: the figures come first, in order

    def middle(matrix: np.ndarray) -> np.ndarray:
        ordered = np.sort(matrix, axis=1)
        return (ordered[rows, low] + ordered[rows, high]) / 2

    centre = middle(values)
    deviations = np.abs(values - centre[:, None])
    sigma = 1.4826 * middle(deviations)
    flat = sigma == 0  # half the figures equal: the mean absolute deviation (spread)
    if flat.any():
        sigma[flat] = 1.2533 * np.nansum(deviations[flat], axis=1) / n[flat]
    if whole is None:
        with np.errstate(invalid="ignore"):
            counts = np.all(np.isnan(values) | (values == np.floor(values)), axis=1)
        sigma = np.where(counts, np.maximum(sigma, 1.0), sigma)
    elif whole:
        sigma = np.maximum(sigma, 1.0)
    judged_values = values[:, asked]
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (judged_values - centre[:, None]) / sigma[:, None]
    scores = np.where(
        (sigma == 0)[:, None], np.where(judged_values == centre[:, None], 0.0, math.inf), scores
    )
    out = []
    for i, j in zip(*np.nonzero(np.abs(scores) > threshold), strict=True):
        c, s = float(centre[i]), float(sigma[i])
        out.append(
            Outlier(
                ref,
                by_id[int(unit_ids[i])],
                window_ids[asked[j]],
                float(judged_values[i, j]),
                float(scores[i, j]),
                c,
                c - threshold * s,
                c + threshold * s,
                int(n[i]),
            )
        )
    return out, int(np.count_nonzero(~np.isnan(judged_values)))


def _min_max(
    ref: str,
    unit: Unit,
    values: dict[str, float],
    asked: list[Period],
    earlier_ids: set[str],
    threshold: float,
) -> tuple[list[Outlier], int]:
    earlier = [v for pid, v in values.items() if pid in earlier_ids]
    if len(earlier) < MIN_HISTORY:
        return [], 0
    lower, upper = bounds(earlier, threshold)
    centre = median(earlier)
    judged = _judged(values, asked)
    out = []
    for period, x in judged:
        if x < lower or x > upper:
            width = (upper - lower) / (2 * threshold) or 1.0
            out.append(
                Outlier(ref, unit, period.id, x, (x - centre) / width, centre, lower, upper, len(earlier))
            )
    return out, len(judged)


def _judged(values: dict[str, float], asked: list[Period]) -> list[tuple[Period, float]]:
    """The asked periods that have a figure, each with it: what a detection judges (and counts)."""
    return [(period, values[period.id]) for period in asked if values.get(period.id) is not None]


def bounds(history: list[float], threshold: float) -> tuple[float, float]:
    """The bounds learnt from a history: on log(1 + x) when it is never negative."""
    whole = _whole(history)
    if min(history) >= 0:
        logs = [math.log1p(v) for v in history]
        centre = median(logs)
        sigma = spread(logs, centre, False)
        if whole:
            # One unit at the series' median, on the log scale: counts cannot move by less.
            level = math.expm1(centre)
            sigma = max(sigma, math.log1p(level + 1) - math.log1p(level))
        return max(0.0, math.expm1(centre - threshold * sigma)), math.expm1(centre + threshold * sigma)
    centre = median(history)
    sigma = spread(history, centre, whole)
    return centre - threshold * sigma, centre + threshold * sigma


def _seasonal(
    ref: str,
    unit: Unit,
    values: dict[str, float],
    asked: list[Period],
    noise: list[Period],
    threshold: float,
) -> tuple[list[Outlier], int]:
    """On log(1 + x) for series never negative: a season five times busier varies five times more."""
    logged = min(values.values(), default=0) >= 0

    def scale(v: float) -> float:
        return math.log1p(v) if logged else v

    def back(v: float) -> float:
        return math.expm1(v) if logged else v

    def expected(period: Period) -> tuple[float | None, list[float]]:
        same: list[float] = []
        current = period
        for _ in range(SEASONAL_YEARS):
            current = current.last_year()
            if current.id in values:
                same.append(scale(values[current.id]))
        return (median(same) if len(same) >= 2 else None), same

    residuals = []
    for period in noise:
        x = values.get(period.id)
        centre, _ = expected(period)
        if x is not None and centre is not None:
            residuals.append(scale(x) - centre)
    whole = _whole(list(values.values()))
    out, n = [], 0
    for period in asked:
        x = values.get(period.id)
        centre, same = expected(period)
        if x is None or centre is None:
            continue
        n += 1
        # The larger of the noise and of this period's own variation between years.
        sigma = spread(same, centre, False)
        if len(residuals) >= 4:
            sigma = max(sigma, spread(residuals, median(residuals), False))
        if whole:  # a count moves by one at least: that step, at the expected level
            level = back(centre)
            sigma = max(sigma, scale(level + 1) - scale(level))
        score = (scale(x) - centre) / sigma if sigma else (0.0 if scale(x) == centre else math.inf)
        if abs(score) > threshold:
            low, high = back(centre - threshold * sigma), back(centre + threshold * sigma)
            out.append(Outlier(ref, unit, period.id, x, score, back(centre), low, high, len(same)))
    return out, n


def flags(
    unit: Unit, period: Period, refs: list[str], *, algorithm: str = "MOD_Z_SCORE"
) -> dict[str, dict[str, Any]]:
    """For pages (the entry form, the unit page, the room): ref → the outlier's answer (with `text`,
    a sentence in Vietnamese), for the refs whose figure at this unit and period is an outlier."""
    try:
        found, _ = detect(refs, [period], [unit], algorithm=algorithm)
    except OutlierError:
        return {}
    return {o.dx: {**o.as_dict(), "text": flag_text(o)} for o in found}


def mark(unit: Unit, rows: list[dict[str, Any]], language: str = "vi") -> list[dict[str, Any]]:
    """Rows of a unit's figures (`dx`, `pe`: indicators.services.unit_figures) with `outlier` set to
    the flag's text where the figure is an outlier of the unit's own series (the unit page)."""
    from dieuhanh.indicators.periods import parse

    by_period: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if analytics.reference(row["dx"]) is not None:  # elements and counts; indicators are computed
            by_period[row["pe"]].append(row["dx"])
    for pid, refs in by_period.items():
        try:
            found = flags(unit, parse(pid), refs)
        except (ValueError, analytics.AnalyticsError):
            continue
        for row in rows:
            if row["pe"] == pid and row["dx"] in found:
                row["outlier"] = flag_text_of(found[row["dx"]], language)
    return rows


def flag_text_of(answer: dict[str, Any], language: str) -> str:
    return answer["text"] if language != "en" else answer["text"].replace("Bất thường", "Unusual")


def flag_text(outlier: Outlier, language: str = "vi") -> str:
    """'Bất thường: 2.700 (thường 30; khoảng 0–79,8)' — what a page shows beside the figure."""
    low, high = (
        number(max(outlier.lower, 0.0) if outlier.value >= 0 else outlier.lower),
        number(outlier.upper),
    )
    if language == "en":
        return f"Unusual: {outlier.value:g} (usually {outlier.middle:g}; range {low}–{high})"
    return f"Bất thường: {number(outlier.value)} (thường {number(outlier.middle)}; khoảng {low}–{high})"
