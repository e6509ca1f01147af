"""Pages: the unit browser that later pages hang off."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dieuhanh.accounts.guards import caller
from dieuhanh.commandroom.unit_panels import children_figures, completeness_panels, unit_directives
from dieuhanh.directives.assignments import shown_status, tasks_for
from dieuhanh.indicators.quality.outliers import mark as mark_outliers
from dieuhanh.indicators.services import unit_figures
from dieuhanh.replica import replica_reads
from dieuhanh.units import services
from dieuhanh.units.models import Edition, Unit, UnitQuerySet
from dieuhanh.units.scoping import area_aware
from dieuhanh.warehouse.enterprises.figures import enterprise_ranking
from dieuhanh.warehouse.services import recent_figures

DEFAULT_EDITION = "VN-2025"


@login_required
@area_aware
def home(request: HttpRequest) -> HttpResponse:
    """Leaders and analysts land on their area's room; tracers on tracing; everyone else on their inbox."""
    roles = set(caller(request).grants.values_list("role", flat=True))
    if roles & {"leader", "analyst", "admin"} or request.user.is_superuser:
        return redirect("room")
    if roles == {"tracer"}:
        return redirect("tracing")
    return redirect("inbox")


def _edition(request: HttpRequest) -> str:
    edition = request.GET.get("edition") or DEFAULT_EDITION
    return edition if Edition.objects.filter(code=edition).exists() else DEFAULT_EDITION


@login_required
@area_aware
@replica_reads
def browse_units(request: HttpRequest) -> HttpResponse:
    """The caller's own top units on the chosen map, or the search results within their area."""
    edition = _edition(request)
    visible: UnitQuerySet = Unit.objects.visible_to(request.user).filter(edition_id=edition)
    query = request.GET.get("q", "").strip()
    if query:
        found = services.search(visible, query).select_related("parent").order_by("level", "name")
        page = Paginator(found, 50).get_page(request.GET.get("page"))
        return render(
            request,
            "commandroom/units_search.html",
            {"edition": edition, "editions": Edition.objects.all(), "query": query, "page": page},
        )
    roots = _roots(request, visible)
    if len(roots) == 1:
        return redirect("unit", edition=edition, code=roots[0].code)
    return render(
        request,
        "commandroom/units_browse.html",
        {"edition": edition, "editions": Edition.objects.all(), "roots": roots},
    )


def _roots(request: HttpRequest, visible: UnitQuerySet) -> list[Unit]:
    """The highest visible units: the nation, or the units of the caller's grants."""
    top = visible.order_by("level").values_list("level", flat=True).first()
    if top is None:
        return []
    granted = {g.unit_id for g in caller(request).grants.all()}
    return list(visible.filter(id__in=granted).order_by("path")) or list(visible.filter(level=top))


@login_required
@area_aware
@replica_reads
def unit_page(request: HttpRequest, edition: str, code: str) -> HttpResponse:
    unit = services.unit_in_area(f"{edition}:{code}", caller(request).area())
    children = services.with_children_count(unit.children.all()).order_by("name")
    figures = recent_figures(unit)
    user = caller(request)
    tasks = list(tasks_for(user, unit, below=True)[:20])
    return render(
        request,
        "commandroom/unit.html",
        {
            "unit": unit,
            "edition": unit.edition_id,
            "editions": Edition.objects.all(),
            # Every ancestor is named; only those in the caller's area are links.
            "ancestors": [(a, caller(request).area().contains(a)) for a in services.ancestors(unit)],
            "children": children,
            "successors": services.successors(unit),
            "predecessors": services.predecessors(unit),
            "figures": figures,
            # Each figure, flagged when an outlier of the unit's own series (issue 19, point 2).
            "indicators": mark_outliers(unit, unit_figures(unit, language=request.LANGUAGE_CODE)),
            # The children with the same figures as the unit's own, sortable in the page.
            "children_rows": children_figures(unit, list(children), figures),
            "directives": unit_directives(user, unit),
            "tasks": [(t, shown_status(t)) for t in tasks],
            "completeness": completeness_panels(unit, request.GET.get("period", ""), request.LANGUAGE_CODE),
            "enterprise_ranking": enterprise_ranking(unit),  # a park's, a commune's enterprises (issue 21)
        },
    )
