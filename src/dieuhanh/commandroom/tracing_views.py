"""The tracing workspace: find or register a case, its contacts as a graph and as lists per commune."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from dieuhanh.accounts.guards import caller
from dieuhanh.commandroom.date_views import START_OF_DAY, moment_field
from dieuhanh.commandroom.tracing_graph import MODES, graph_data
from dieuhanh.errors import not_found
from dieuhanh.tracing import services
from dieuhanh.tracing.models import Case
from dieuhanh.tracing.present import local, minutes
from dieuhanh.units.scoping import area_aware
from dieuhanh.warehouse.persons import PersonIdError


def _tracer(request: HttpRequest):
    user = caller(request)
    try:
        services.require_tracer(user)
    except services.TracingError:
        raise PermissionDenied(_("Tracing needs a tracer grant.")) from None
    return user


@login_required
@area_aware
def workspace(request: HttpRequest) -> HttpResponse:
    """Cases of the caller's area; a person ID finds their case or registers one."""
    user = _tracer(request)
    error = ""
    if request.method == "POST":
        try:
            return redirect("tracing-case", pk=_find_or_register(user, request.POST).pk)
        except (PersonIdError, ValueError) as e:
            error = str(e)
        except PermissionError:
            # Whatever the services refuse as outside the tracer's area: the same words for all of it.
            error = _("No such person in your area.")
    cases = services.list_cases(user, limit=200)
    return render(
        request,
        "commandroom/tracing.html",
        {"cases": cases, "error": error, "form": request.POST, "clusters": _clusters(user)},
    )


def _clusters(user) -> list[services.Cluster]:
    """Venues of the tracer's area where two or more cases stayed, over every case's window so far."""
    first = Case.objects.order_by("window_start").values_list("window_start", flat=True).first()
    if first is None:
        return []
    return services.clusters(actor=user, start=first, end=timezone.now(), min_cases=2, rule=services.Rule())[
        :20
    ]


def _find_or_register(user, form) -> Case:
    person_id = form.get("person_id", "").strip()
    case = services.find_case(user, person_id)
    if case is not None:
        return case
    confirmed = form.get("confirmed_at", "").strip()
    if not confirmed:
        raise ValueError(_("This person is not a case yet: give the confirmation time to register them."))
    onset = form.get("onset_at", "").strip()
    data = services.CaseInput(
        confirmed_at=moment_field(_("Confirmation time"), confirmed),
        onset_at=moment_field(_("Symptom onset"), onset, default_time=START_OF_DAY) if onset else None,
    )
    return services.register_case(actor=user, person_id=person_id, data=data)


@login_required
@area_aware
def case_page(request: HttpRequest, pk: int) -> HttpResponse:
    user = _tracer(request)
    depth = 2 if request.GET.get("depth") == "2" else 1
    mode = request.GET.get("group", "auto")
    mode = mode if mode in MODES else "auto"
    with not_found(services.TracingError):
        case = services.case_for(user, pk)
        view = services.contacts(actor=user, case=case, depth=depth, rule=services.Rule())
    groups = services.by_commune(view)
    communes = sorted(groups.items(), key=lambda item: (item[0] is None, item[0].name if item[0] else ""))
    rows = [
        (
            unit,
            [
                {
                    "key": c.person.hex()[:12],
                    "generation": c.generation,
                    "first": local(c.first_exposure),
                    "minutes": minutes(c.seconds),
                    "venues": sorted({view.venues[e.venue].code for e in c.edges}),
                    "is_case": c.is_case,
                }
                for c in members
            ],
        )
        for unit, members in communes
    ]
    return render(
        request,
        "commandroom/tracing_case.html",
        {
            "case": case,
            "view": view,
            "depth": depth,
            "graph": graph_data(view, mode),
            "modes": MODES,
            "mode": mode,
            "communes": rows,
            "case_is_own": services.visible_cases(user).filter(pk=case.pk).exists(),
        },
    )
