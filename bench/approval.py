"""Benchmark: bulk approval (issue 19, point 6) — every commune of VN-2025 approved in one call.

    .venv/bin/python bench/approval.py [--db sqlite|pg] [--communes N] [--runs 3]

Standalone, it runs in a child process with a scratch database (SQLite: a temporary DIEUHANH_HOME;
PostgreSQL: `dieuhanh_bench_approval`, dropped afterwards), migrated, the real units loaded. It is also
the approval part of `bench/quality.py`, which calls `bench_approval(ctx)` on its own data set.

Measured (what POST /api/v1/approvals does after reading the body: the units looked up inside the
caller's area, then `services.act`), each against the baseline in the same process: the same units
approved **one by one** (one call per unit, as a client without bulk approval would), on another
period so that both start from nothing:
- approve every commune (all 3,321 by default), as a national admin;
- accept every commune, then unapprove every one (with a reason).
"""

from __future__ import annotations

import argparse
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


def bench_approval(ctx: dict, runs: int = 1) -> list[tuple[str, float, float, int]]:
    """Rows (label, our seconds, baseline seconds, items): bulk against one by one, on ctx's data set
    (`data_set` code), `communes` (Unit list) and `period` (the baseline uses the periods before it)."""
    from dieuhanh.accounts.models import Grant, User
    from dieuhanh.indicators.approval import services
    from dieuhanh.indicators.approval.models import DataSetApproval
    from dieuhanh.indicators.models import DataSet
    from dieuhanh.indicators.periods import parse
    from dieuhanh.units.models import Unit

    data_set = DataSet.objects.get(code=ctx["data_set"])
    DataSetApproval.objects.get_or_create(data_set=data_set)
    nation = Unit.objects.get(edition_id="VN-2025", level=0)
    admin, _ = User.objects.get_or_create(username="bench-approval-admin")
    Grant.objects.get_or_create(user=admin, unit=nation, role="admin")
    admin = User.objects.get(pk=admin.pk)
    communes = ctx["communes"]
    refs = [u.ref for u in communes]
    n = len(communes)
    period = parse(ctx["period"])
    times: dict[str, list[float]] = {
        k: [] for k in ("bulk", "one", "accept", "accept_one", "undo", "undo_one")
    }

    def bulk(action: str, pid: str) -> float:
        began = time.perf_counter()
        units = services.units_named(refs, admin.area(), "VN-2025")
        out = services.act(
            actor=admin, action=action, data_set=data_set, period=pid, units=units, reason="bench"
        )
        assert len(out.changed) == n, (action, len(out.changed), out.unchanged[:3])
        return time.perf_counter() - began

    def one_by_one(action: str, pid: str) -> float:
        began = time.perf_counter()
        for ref in refs:
            units = services.units_named([ref], admin.area(), "VN-2025")
            services.act(
                actor=admin, action=action, data_set=data_set, period=pid, units=units, reason="bench"
            )
        return time.perf_counter() - began

    for run in range(runs):
        ours = period.id
        base = period
        for _ in range(run * 2 + 1):
            base = base.previous()
        log(f"  approval run {run + 1}/{runs}: bulk {ours}, one by one {base.id}")
        times["bulk"].append(bulk("approve", ours))
        times["one"].append(one_by_one("approve", base.id))
        times["accept"].append(bulk("accept", ours))
        times["accept_one"].append(one_by_one("accept", base.id))
        times["undo"].append(bulk("unapprove", ours))
        times["undo_one"].append(one_by_one("unapprove", base.id))
    m = {k: median(v) for k, v in times.items()}
    return [
        (
            f"approval: approve {n:,} communes in one call (baseline: one call per unit)",
            m["bulk"],
            m["one"],
            n,
        ),
        ("  accept them (the provinces' step)", m["accept"], m["accept_one"], n),
        ("  unapprove them, with a reason", m["undo"], m["undo_one"], n),
    ]


def run_child(args: argparse.Namespace) -> None:
    postgres = child_django(args)
    from dieuhanh.indicators.services import save_data_element, save_data_set

    communes = migrated_communes(args.communes)
    save_data_element(actor=None, code="bench_value", name="Giá trị")
    save_data_set(
        actor=None, code="bench_approval", name="Bench", elements=["bench_value"], unit_kind="commune"
    )
    rows = bench_approval({"communes": communes, "data_set": "bench_approval", "period": "202412"}, args.runs)
    child_output(
        {"vendor": "postgresql" if postgres else "sqlite", "communes": len(communes), "approval": rows}
    )


def table(rows: list) -> str:
    grid = [["question", "ours, s", "baseline, s", "ratio (baseline / ours)", "goal", "units"]]
    for label, ours, base, items in rows:
        grid.append(
            [label, f"{ours:.2f}", f"{base:.2f}", f"{base / ours:.1f}× faster", "< 5 s", f"{items:,}"]
        )
    return render_table(grid)


def main() -> None:
    parser = options(__doc__.split("\n\n")[0], default="sqlite")
    parser.add_argument("--communes", type=int, default=0, help="0: all 3,321 communes of VN-2025")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return
    runs = run_databases(args, "approval")
    print_skipped(runs)
    for result in runs.results.values():
        print(table(result["approval"]))
    print(f"\nmedians of {args.runs} runs; shared 2-core machine")
    write_run("approval", args, runs)


if __name__ == "__main__":
    main()
