"""Benchmark: data quality (issue 19, point 6) — validation rules and outliers over a national month.

    .venv/bin/python bench/quality.py [--db sqlite|pg] [--communes N] [--elements 50] [--runs 3]
                                      [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

The run happens in a child process of this script with a scratch database of its own (SQLite: a
temporary DIEUHANH_HOME; PostgreSQL: `dieuhanh_bench_quality`, dropped afterwards), migrated and with
the real units loaded through the application. The data set is made through the services: E monthly
elements (default 50) reported by the communes of VN-2025 (default all 3,321), and E/2 rules
`#{e_odd} <= #{e_even}` (a figure and its part: "of which online" ≤ "received"), all `warn`. Its
values, 12 months of 2024 × communes × elements (2 M rows at full scale; --history 12 adds 2023), are
written straight into the table (executemany / COPY: the write path is not what is measured), about
1% of the parts larger than their whole.

Measured, each beside a baseline in the same process and on the same database (run by run,
interleaved; the median of --runs):
- **rules**: `quality.rules.run(every rule, the 12 months of 2024, every commune, record=False)` — and
  once recording the violations it finds (first run: every one is new) — against one SQL query per
  rule pivoting the two elements with conditional aggregation and keeping the broken cells (the
  naive SQL of the same question). The counts must agree, or the run stops.
- **outliers**: `quality.outliers.detect(every element, 2024's months, every commune, MOD_Z_SCORE,
  history=--history)` (and with --history 12 the same with MIN_MAX, bounds learnt from 2023), against
  the raw read of the same values (cursor.fetchall of element, unit, period, value): the floor any
  method must pay.
- a hook for the approval helper's bulk approval (`bench_approval`).

The figures go to bench/results/quality.json. The machine is shared: a ratio against the baseline in
the same run says more than the seconds.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from statistics import median

from common import (
    child_django,
    child_output,
    log,
    migrated_communes,
    options,
    print_skipped,
    render_table,
    run_databases,
    write_run,
)

HISTORY = [f"2023{m:02d}" for m in range(1, 13)]
JUDGED = [f"2024{m:02d}" for m in range(1, 13)]


# ---------------------------------------------------------------- child: load


def make_metadata(elements: int):
    from dieuhanh.indicators.quality.rules import save_rule
    from dieuhanh.indicators.services import save_data_element, save_data_set

    codes = [f"e{i:02d}" for i in range(elements)]
    for code in codes:
        save_data_element(actor=None, code=code, name=f"Chỉ tiêu {code}", value_type="integer")
    save_data_set(
        actor=None,
        code="bench_quality",
        name="Bộ dữ liệu kiểm tra (bench)",
        elements=codes,
        period_type="monthly",
        unit_kind="commune",
    )
    for k in range(elements // 2):
        save_rule(
            actor=None,
            code=f"r{k:02d}",
            name=f"Phần {codes[2 * k + 1]} không vượt tổng {codes[2 * k]}",
            left=f"#{{{codes[2 * k + 1]}}}",
            operator="<=",
            right=f"#{{{codes[2 * k]}}}",
            data_set="bench_quality",
        )
    return codes


def load_values(codes: list[str], communes: list, seed: int, months: list[str]) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from dieuhanh.indicators.models import DataElement

    rng = random.Random(seed)
    ids = dict(DataElement.objects.filter(code__in=codes).values_list("code", "id"))
    now = timezone.now()
    broken = 0
    rows = []
    for unit in communes:
        size = math.exp(rng.gauss(5.5, 0.8))  # a commune's scale: skewed, as wards and villages are
        for period in months:
            for k in range(0, len(codes) - 1, 2):
                whole = max(1, round(size * math.exp(rng.gauss(0, 0.3))))
                part = round(whole * rng.uniform(0.3, 0.95))
                if rng.random() < 0.01:
                    part = whole + 1 + round(whole * 0.2)
                    broken += period in JUDGED
                rows.append((ids[codes[k]], unit.pk, period, whole))
                rows.append((ids[codes[k + 1]], unit.pk, period, part))
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(
                "COPY indicators_datavalue (element_id, unit_id, period, option, value, status, comment,"
                " created_at, updated_at) FROM STDIN"
            ) as copy:
                for element_id, unit_id, period, value in rows:
                    copy.write_row((element_id, unit_id, period, "", value, "final", "", now, now))
        else:
            cursor.executemany(
                "INSERT INTO indicators_datavalue (element_id, unit_id, period, option, value, status,"
                " comment, created_at, updated_at) VALUES (%s, %s, %s, '', %s, 'final', '', %s, %s)",
                [(*r, now, now) for r in rows],
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE indicators_datavalue")
    return {"rows": len(rows), "load_s": time.perf_counter() - began, "broken_2024": broken}


# ---------------------------------------------------------------- child: the questions and their baselines


def baseline_rules(codes: list[str]) -> int:
    """One SQL query per rule: the two elements pivoted by conditional aggregation, broken cells kept."""
    from django.db import connection

    from dieuhanh.indicators.models import DataElement

    ids = dict(DataElement.objects.filter(code__in=codes).values_list("code", "id"))
    marks = ", ".join(["%s"] * len(JUDGED))
    found = 0
    with connection.cursor() as cursor:
        for k in range(0, len(codes) - 1, 2):
            whole, part = ids[codes[k]], ids[codes[k + 1]]
            cursor.execute(
                "SELECT unit_id, period FROM ("
                " SELECT unit_id, period,"
                "  SUM(CASE WHEN element_id = %s THEN value END) AS l,"
                "  SUM(CASE WHEN element_id = %s THEN value END) AS r"
                " FROM indicators_datavalue"
                f" WHERE element_id IN (%s, %s) AND period IN ({marks})"
                " GROUP BY unit_id, period) AS cells"
                " WHERE l IS NOT NULL AND r IS NOT NULL AND l > r",
                [part, whole, part, whole, *JUDGED],
            )
            found += len(cursor.fetchall())
    return found


def baseline_read(codes: list[str], periods: list[str]) -> int:
    from django.db import connection

    from dieuhanh.indicators.models import DataElement

    ids = list(DataElement.objects.filter(code__in=codes).values_list("id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT element_id, unit_id, period, value FROM indicators_datavalue"
            f" WHERE element_id IN ({', '.join(['%s'] * len(ids))})"
            f" AND period IN ({', '.join(['%s'] * len(periods))})",
            [*ids, *periods],
        )
        return len(cursor.fetchall())


def bench_approval(ctx: dict) -> list[tuple[str, float, float, int]]:
    """Bulk approval of every commune (issue 19, point 6): bench/approval.py's measure on this run's data
    set and communes — approve, accept and unapprove them in one call each, against the same units one
    call per unit (the baseline). ctx: `communes` (the Unit list), `data_set` (code), `period`."""
    from approval import bench_approval as measure  # bench/approval.py, beside this script

    return measure(ctx)


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    from dieuhanh.indicators.periods import parse
    from dieuhanh.indicators.quality import outliers, rules
    from dieuhanh.indicators.quality.models import Violation

    communes = migrated_communes(args.communes)
    size = f"{len(communes)} communes × {args.elements} elements × {12 + args.history} months"
    log(f"  {size}")
    codes = make_metadata(args.elements)
    months = (HISTORY if args.history else []) + JUDGED
    load = load_values(codes, communes, args.seed, months)
    log(f"  loaded {load['rows']:,} values in {load['load_s']:.1f} s")
    chosen = rules.rules_named("bench_quality", [])
    periods = [parse(p) for p in JUDGED]

    expected = baseline_rules(codes)
    first, first_s = _timed(lambda: rules.run(chosen, periods, communes, record=True))
    if len(first.findings) != expected or Violation.objects.count() != expected:
        raise SystemExit(f"rules: {len(first.findings)} violations, the SQL finds {expected}")
    timings: dict[str, list[float]] = {k: [] for k in ("rules", "rules_sql", "mod_z", "min_max", "read")}
    counts: dict[str, int] = {}
    for n in range(args.runs):
        log(f"  run {n + 1}/{args.runs}")
        found, s = _timed(lambda: rules.run(chosen, periods, communes, record=False), "rules")
        timings["rules"].append(s)
        counts["violations"] = len(found.findings)
        counts["checked"] = found.checked
        _, s = _timed(lambda: baseline_rules(codes), "rules_sql")
        timings["rules_sql"].append(s)
        (mz, judged), s = _timed(
            lambda: outliers.detect(codes, periods, communes, history=args.history), "mod_z"
        )
        timings["mod_z"].append(s)
        counts["mod_z_outliers"], counts["judged"] = len(mz), judged
        if args.history:
            (mm, _), s = _timed(
                lambda: outliers.detect(codes, periods, communes, algorithm="MIN_MAX", history=12), "min_max"
            )
            timings["min_max"].append(s)
            counts["min_max_outliers"] = len(mm)
        rows_read, s = _timed(lambda: baseline_read(codes, months), "read")
        timings["read"].append(s)
        counts["values_read"] = rows_read
    # The write path: one month of every commune's form through import_values (a dry run: the same
    # work, rolled back), with the rules active and with them switched off.
    from dieuhanh.indicators.datavalues import import_values
    from dieuhanh.units.scoping import Area

    month = [
        {"dataElement": code, "period": "202501", "orgUnit": u.ref, "value": 100 - (i % 2) * 40}
        for u in communes
        for i, code in enumerate(codes)
    ]
    everywhere = Area(True, frozenset())
    summary, with_rules = _timed(lambda: import_values(month, actor=None, area=everywhere, dry_run=True))
    from dieuhanh.indicators.quality.models import ValidationRule

    ValidationRule.objects.update(active=False)
    _, without = _timed(lambda: import_values(month, actor=None, area=everywhere, dry_run=True))
    ValidationRule.objects.update(active=True)
    entry = {"values": len(month), "with_rules_s": with_rules, "without_rules_s": without,
             "refused": len(summary.conflicts)}  # fmt: skip
    if args.profile:
        import cProfile
        import io
        import pstats

        for name, fn in (
            ("rules", lambda: rules.run(chosen, periods, communes, record=False)),
            ("mod_z", lambda: outliers.detect(codes, periods, communes, history=args.history)),
        ):
            profiler = cProfile.Profile()
            profiler.runcall(fn)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
            log(f"--- profile: {name}\n{out.getvalue()}")
    extra = bench_approval({"communes": communes, "data_set": "bench_quality", "period": "202412"})
    result = {
        "vendor": "postgresql" if postgres else "sqlite",
        "communes": len(communes),
        "elements": len(codes),
        "rules": len(chosen),
        "load": load,
        "first_run_recording_s": first_s,
        "history": args.history,
        "median_s": {k: median(v) for k, v in timings.items() if v},
        "median_cpu_s": {k: median(v) for k, v in CPU.items()},
        "all_s": timings,
        "counts": counts,
        "approval": extra,
        "entry": entry,
    }
    child_output(result)


CPU: dict[str, list[float]] = {}


def _timed(fn, name: str = ""):
    began, cpu = time.perf_counter(), time.process_time()
    out = fn()
    if name:
        CPU.setdefault(name, []).append(time.process_time() - cpu)
    return out, time.perf_counter() - began


# ---------------------------------------------------------------- parent


def table(r: dict) -> str:
    m, c = r["median_s"], r["counts"]

    def row(label: str, ours: str, base: str, baseline_name: str, goal: str, n: str) -> list[str]:
        ratio = m[ours] / m[base] if m[base] else math.inf
        return [label, f"{m[ours]:.2f}", f"{m[base]:.2f} ({baseline_name})", f"{ratio:.1f}×", goal, n]

    grid = [
        ["question", "ours, s", "baseline, s", "ratio", "goal", "size"],
        row(
            f"rules: {r['rules']} rules × {r['communes']:,} communes × 12 months",
            "rules",
            "rules_sql",
            "SQL pivot per rule",
            "< 10 s",
            f"{c['checked']:,} checks, {c['violations']:,} violations",
        ),
        row(
            f"outliers MOD_Z_SCORE: {r['elements']} elements, history {r['history']}",
            "mod_z",
            "read",
            "raw read",
            "< 5 s",
            f"{c['judged']:,} figures, {c['mod_z_outliers']:,} outliers",
        ),
    ]
    if "min_max" in m:
        grid.append(
            row(
                "outliers MIN_MAX (bounds from 2023)",
                "min_max",
                "read",
                "raw read",
                "< 5 s",
                f"{c['min_max_outliers']:,} outliers",
            )
        )
    grid.append(
        [
            "  first run, recording every violation",
            f"{r['first_run_recording_s']:.2f}",
            "",
            "",
            "",
            f"{c['violations']:,} new",
        ]
    )
    e = r["entry"]
    grid.append(
        [
            f"import of one month ({e['values']:,} values), rules on",
            f"{e['with_rules_s']:.2f}",
            f"{e['without_rules_s']:.2f} (rules off)",
            f"{e['with_rules_s'] / e['without_rules_s']:.1f}×",
            "",
            f"{e['refused']:,} refused",
        ]
    )
    for label, ours_s, base_s, items in r.get("approval", []):
        grid.append(
            [
                label,
                f"{ours_s:.2f}",
                f"{base_s:.2f} (one call per unit)",
                f"{ours_s / base_s:.3f}×",
                "< 5 s",
                f"{items:,}",
            ]
        )
    return render_table(grid)


def main() -> None:
    parser = options(__doc__.split("\n\n")[0], default="sqlite")
    parser.add_argument("--communes", type=int, default=0, help="0: all 3,321 communes of VN-2025")
    parser.add_argument("--elements", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--history",
        type=int,
        choices=[0, 12],
        default=0,
        help="12: load 2023 too, MOD_Z over 24 months, MIN_MAX",
    )
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--profile", action="store_true", help="cProfile one rules run and one outliers run")
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    runs = run_databases(args, "quality")
    print_skipped(runs)
    for name, result in runs.results.items():
        print(table(result))
        print(
            f"\n{result['load']['rows']:,} values; {name}; medians of {args.runs} runs; shared 2-core machine"
        )
    write_run("quality", args, runs)


if __name__ == "__main__":
    main()
