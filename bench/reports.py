"""Benchmark: the monthly national report (ict_monthly, 202108) generated as DOCX and as PDF.

    .venv/bin/python bench/reports.py [--db sqlite|pg] [--runs N] [--directives N] [--tasks N] [--pg-url URL]

A scratch database (`common.scratch_here`; SQLite: a file in a temporary folder; PostgreSQL:
`dieuhanh_bench_reports` on --pg-url's server, made afresh and dropped after the run) receives the
real units, the ICT catalogue with the seeds' figures, the shipped definitions, and a national leader;
then --directives directives (default 20) issued in August 2021 to every VN-2025 commune (3,321
deliveries each, so 66,420 by default; a third acknowledged and a third answered, set by one UPDATE
each) and --tasks tasks (default 300) owned by provinces, a quarter of them overdue.

Timed, run by run interleaved (after one untimed warm-up of each), each in the same process:
- docx, pdf: `services.generate` as `dieuhanh report generate` calls it: every figure read through the
  analytics service, the directives' rates and the tasks, the document composed, rendered, written to
  the archive with its snapshot;
- baseline: the same figures read as a hand-written script would, one `DataValue` query per figure and
  one count per directive state, pasted into a python-docx file with the same paragraphs (no analytics,
  no snapshot, no layout): what the report's machinery costs over the bare reads and writes.
The goal (issue 8): under 3 s each for DOCX and PDF. Prints a table and writes bench/results/reports.json.
"""

from __future__ import annotations

import argparse
import io
import secrets
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import log, machine, options, render_table, scratch_here, shown, spread, timed, write_results


def parse_args() -> argparse.Namespace:
    parser = options(__doc__.splitlines()[0], default="sqlite")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--directives", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=300)
    return parser.parse_args()


def load(args: argparse.Namespace):
    from django.core.management import call_command

    from dieuhanh.accounts.services import create_user
    from dieuhanh.indicators.catalog import load as load_catalog
    from dieuhanh.reports.services import load_shipped
    from dieuhanh.units.models import Unit
    from dieuhanh.units.services import load_units

    call_command("migrate", verbosity=0)
    load_units()
    nation = Unit.objects.ref("VN-2025:VN")
    leader = create_user(
        actor=None,
        username="lanhdao",
        password=secrets.token_urlsafe(16),
        grants=[(nation, "leader")],
        validate=False,
    )
    load_catalog("ict", actor=None, with_seed_values=True)
    load_shipped(owner=leader)
    _directives(leader, args.directives)
    _tasks(leader, args.tasks)
    return leader


def _directives(leader, n: int) -> None:
    from dieuhanh.directives.models import Delivery, DeliveryState
    from dieuhanh.directives.services import DirectiveInput, Targets, issue_directive

    august = datetime(2021, 8, 2, 8, tzinfo=timezone(timedelta(hours=7)))
    for i in range(n):
        data = DirectiveInput(
            title=f"Chỉ đạo số {i + 1} về bảo đảm thông tin liên lạc",
            body="Triển khai ngay.",
            targets=Targets(units=("VN-2025:VN",), level="commune"),
            number=f"{i + 1}/CĐ-BTTTT",
            deadline=august + timedelta(days=20),
        )
        issue_directive(actor=leader, data=data, now=august + timedelta(days=i % 25))
    ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
    Delivery.objects.filter(id__in=ids[: len(ids) // 3]).update(state=DeliveryState.RESPONDED)
    Delivery.objects.filter(id__in=ids[len(ids) // 3 : 2 * len(ids) // 3]).update(
        state=DeliveryState.ACKNOWLEDGED
    )
    log(f"{n} directives, {len(ids)} deliveries")


def _tasks(leader, n: int) -> None:
    from dieuhanh.directives.assignments import TaskInput, create_task
    from dieuhanh.units.models import Unit

    provinces = list(Unit.objects.filter(edition_id="VN-2025", kind="province").order_by("code"))
    today = date.today()
    for i in range(n):
        due = today - timedelta(days=10) if i % 4 == 0 else today + timedelta(days=30)
        owner = provinces[i % len(provinces)]
        create_task(actor=leader, data=TaskInput(title=f"Nhiệm vụ {i + 1}", owner=owner.ref, due=due))
    log(f"{n} tasks")


def generate(leader, fmt: str):
    from dieuhanh.reports import services

    request = services.prepare(actor=leader, definition="ict_monthly", period="202108", unit=None, fmt=fmt)
    return services.generate(actor=leader, request=request)


BASELINE_FIGURES = [
    ("postal_revenue", "2021YTD08"), ("postal_revenue", "2020YTD08"), ("postal_volume", "2021YTD08"),
    ("postal_volume", "2020YTD08"), ("essential_goods_points", "202108"),
    ("essential_goods_tonnage", "2021YTD08"), ("essential_goods_value", "2021YTD08"),
    ("telecom_revenue", "2021YTD07"), ("telecom_revenue", "2020YTD07"), ("phone_subscribers", "202107"),
    ("phone_subscribers", "202007"), ("junk_sim_handled", "2021YTD07"), ("fake_calls_blocked", "2021YTD07"),
    ("spam_call_subscribers_handled", "2021YTD07"), ("bluezone_active", "202108"),
    ("bluezone_test_results", "2021YTD08"), ("health_declarations", "2021YTD08"),
    ("health_book_installs", "2021YTD08"), ("traced_cases", "2021YTD08"), ("traced_contacts", "2021YTD08"),
    ("traced_special_f0", "2021YTD08"), ("absconded_f0_found", "2021YTD08"), ("facebook_removals", "202108"),
    ("youtube_removals", "202108"), ("tiktok_removals", "202108"), ("cyber_attacks_incidents", "2021YTD08"),
    ("cyber_attacks_incidents", "2020YTD08"), ("ict_revenue", "2021YTD08"), ("ict_revenue", "2020YTD08"),
    ("ict_revenue_usd", "2021YTD08"), ("ict_hardware_revenue", "2021YTD08"),
    ("ict_hardware_revenue_usd", "2021YTD08"),
]  # fmt: skip


def baseline() -> bytes:
    """The figures by one query each, the directives' states counted, pasted into a plain DOCX."""
    from django.db.models import Count
    from docx import Document

    from dieuhanh.directives.models import Delivery, Directive
    from dieuhanh.indicators.models import DataValue

    doc = Document()
    doc.add_paragraph("BÁO CÁO")
    for element, period in BASELINE_FIGURES:
        value = (
            DataValue.objects.filter(element__code=element, period=period, unit__code="VN")
            .values_list("value", flat=True)
            .first()
        )
        doc.add_paragraph(f"{element} {period}: {value}")
    for directive in Directive.objects.filter(issued_at__year=2021, issued_at__month=8):
        states = dict(
            Delivery.objects.filter(directive=directive)
            .values_list("state")
            .annotate(n=Count("id"))
            .order_by()
        )
        doc.add_paragraph(f"{directive.number} {directive.title}: {states}")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def measure(args: argparse.Namespace) -> tuple[float, dict[str, list[float]], dict[str, int]]:
    """The load's seconds, then each run's seconds and the files' sizes: DOCX, PDF and the baseline."""
    from dieuhanh.reports.services import file_path

    (leader, load_s) = timed(load, args)
    log(f"loaded in {load_s:.1f} s")
    for fmt in ("docx", "pdf"):
        assert generate(leader, fmt).state == "done"  # warm-up, and the report must succeed
    baseline()
    seconds: dict[str, list[float]] = {"docx": [], "pdf": [], "baseline": []}
    sizes: dict[str, int] = {}
    for _ in range(args.runs):
        for fmt in ("docx", "pdf"):
            report, took = timed(generate, leader, fmt)
            seconds[fmt].append(took)
            sizes[fmt] = file_path(report).stat().st_size
        content, took = timed(baseline)
        seconds["baseline"].append(took)
        sizes["baseline"] = len(content)
    return load_s, seconds, sizes


def main() -> None:
    args = parse_args()
    with scratch_here(args, "reports") as server:
        load_s, seconds, sizes = measure(args)
    results = {name: spread(values) for name, values in seconds.items()}
    grid = [["", "p50 (s)", "p95 (s)", "file (kB)", "p50 / baseline"]]
    base = results["baseline"]["p50_s"]
    for name in ("docx", "pdf", "baseline"):
        r = results[name]
        ratio = f"{r['p50_s'] / base:.1f}×"
        grid.append([name, f"{r['p50_s']:.3f}", f"{r['p95_s']:.3f}", f"{sizes[name] / 1024:.0f}", ratio])
    print(render_table(grid))
    write_results("reports", {
        "args": vars(args) | {"pg_url": shown(args.pg_url)}, "machine": machine(server), "load_s": load_s,
        "results": results, "sizes": sizes, "goal_s": 3,
    })  # fmt: skip


if __name__ == "__main__":
    main()
