"""The officials' pages of the "Dân hỏi – Chính quyền trả lời" sessions: the sessions of the caller's
area and a form to open one for a date (/phan-anh/xu-ly/hoi-dap/), and one session
(/phan-anh/xu-ly/hoi-dap/<id>/) with its questions by topic, where each is answered (and regrouped
under another topic), the session stops taking questions and is published. The pages call the verbs
of `feedback.sessions`, as the API does; the citizens' side is views.session_page."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.errors import DomainError, not_found
from dieuhanh.feedback import sessions
from dieuhanh.feedback.models import Session, SessionStatus
from dieuhanh.feedback.official_views import _handler, _own_units
from dieuhanh.feedback.services import FeedbackError
from dieuhanh.units.scoping import area_aware
from dieuhanh.vnformat import DateTextError, input_date, parse_date_text

LABELS = {
    "unit": _("Unit"),
    "title": _("Title"),
    "date": _("Day of the session"),
    "topics": _("Topics of the session"),
    "topic": _("Topic of the question"),
    "text": _("Answer to the question"),
    "answerer_title": _("Answerer's title"),
    "session": _("Question session"),
    "question": _("Question asked"),
}
DONE = {
    "answer": _("The answer is saved; it is public once the session is published."),
    "close": _("The session no longer takes questions."),
    "publish": _("The session is published: its answered questions are on the public page."),
}


@login_required
@area_aware
def sessions_page(request: HttpRequest) -> HttpResponse:
    user = _handler(request)
    units = _own_units(user)
    ref = request.GET.get("unit", "")[:60]
    found = list(sessions.sessions_for(user, ref or None)[:100])  # a unit outside the area: 404
    error, status, values = "", 200, request.POST if request.method == "POST" else {}
    if request.method == "POST":
        try:
            try:
                day = parse_date_text(values.get("date", ""))
            except DateTextError as exc:
                raise FeedbackError("date", exc.describe()) from None
            topics = [t.strip() for t in values.get("topics", "").splitlines() if t.strip()]
            session = sessions.open_session(
                actor=user, unit=values.get("unit", ""), title=values.get("title", ""), day=day, topics=topics
            )
        except DomainError as exc:  # the unit's look-up refuses with the units' own error
            error, status = exc.labelled(LABELS), exc.status
        else:
            messages.success(request, _("The session is open: citizens can send questions now."))
            return redirect("feedback-session-admin", session_id=session.pk)
    context = {
        "sessions": found,
        "units": units,
        "unit": ref,
        "values": values,
        "today": input_date(timezone.localdate()),
        "error": error,
    }
    return render(request, "feedback/sessions.html", context, status=status)


@login_required
@area_aware
def session_admin_page(request: HttpRequest, session_id: int) -> HttpResponse:
    user = _handler(request)
    with not_found(FeedbackError, message=_("No such session in your area.")):
        session = sessions.session_for(user, session_id)
    error, status = "", 200
    posted: Mapping[str, str] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            _act(user, session, action, request.POST)
        except FeedbackError as exc:
            error, status, posted = exc.labelled(LABELS), exc.status, request.POST
        else:
            messages.success(request, DONE[action])
            return redirect("feedback-session-admin", session_id=session.pk)
        session = sessions.session_for(user, session_id)
    groups = sessions.by_topic(session, answered_only=False)
    questions = [q for g in groups for q in g["questions"]]
    last_title = session.questions.exclude(answerer_title="").order_by("-answered_at").first()
    context = {
        "session": session,
        "groups": groups,
        "asked": len(questions),
        "answered": sum(1 for q in questions if q["answered_at"]),
        "posted": posted,
        "posted_question": _number(posted.get("question", "")) if posted else None,
        "answerer_title": last_title.answerer_title if last_title else "",
        "error": error,
        "published": session.status == SessionStatus.PUBLISHED,
        "public": session.status in (SessionStatus.OPEN, SessionStatus.PUBLISHED),
    }
    return render(request, "feedback/session_admin.html", context, status=status)


def _number(raw: str) -> int:
    return int(raw) if raw.isdigit() and len(raw) < 18 else 0


def _act(user, session: Session, action: str, post) -> None:
    if action == "answer":
        sessions.answer_question(
            actor=user,
            session_id=session.pk,
            question_id=_number(post.get("question", "")),
            text=post.get("text", ""),
            answerer_title=post.get("answerer_title", ""),
            topic=post.get("topic", ""),
        )
    elif action == "close":
        sessions.close(actor=user, session_id=session.pk)
    elif action == "publish":
        sessions.publish_session(actor=user, session_id=session.pk)
    else:
        raise FeedbackError("action", _("unknown action: choose one of the page's buttons"))
