""" "Dân hỏi – Chính quyền trả lời": a unit opens a session for a date, citizens send questions (no
login, throttled like reports), officials group them by topic and answer them, and the session is
published on the public page with its answered questions by topic. Verbs are atomic and audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dieuhanh.accounts.models import User
from dieuhanh.accounts.services import audit
from dieuhanh.feedback.models import Question, Session, SessionStatus, Throttle
from dieuhanh.feedback.services import (
    MAX_TEXT,
    FeedbackError,
    _count,
    _fit,
    handling_area,
    public_text,
    queue_unit,
)

OTHER_TOPIC = "Khác"
NO_SESSION = _("no question session number %(id)s")
MAX_TOPICS = 20


def _text(field: str, value: str, *, limit: int = MAX_TEXT) -> str:
    value = _fit(field, value, prose=True).strip()
    if not value:
        raise FeedbackError(field, _("is empty; it must be filled in"))
    if len(value) > limit:
        raise FeedbackError(
            field, _("%(n)d characters long; at most %(max)d") % {"n": len(value), "max": limit}
        )
    return value


def open_session(*, actor: User, unit: str, title: str, day: date, topics: Sequence[str] = ()) -> Session:
    host = queue_unit(actor, unit)
    title = _text("title", title, limit=300)
    clean = list(dict.fromkeys(_text("topics", t, limit=100) for t in topics))
    if len(clean) > MAX_TOPICS:
        raise FeedbackError("topics", _("at most %(max)d topics") % {"max": MAX_TOPICS})
    if day < timezone.localdate() - timedelta(days=1):
        raise FeedbackError("date", _("the session's day has passed"))
    with transaction.atomic():
        session = Session.objects.create(
            unit=host,
            title=title,
            date=day,
            topics=[*clean, OTHER_TOPIC] if OTHER_TOPIC not in clean else clean,
            opened_by=actor,
            opened_at=timezone.now(),
        )
        audit(actor, "feedback.session_open", f"session:{session.pk}", unit=host.ref, date=day.isoformat())
    return session


def _topic(session: Session, topic: str) -> str:
    topic = _fit("topic", topic).strip()
    if not topic:
        return OTHER_TOPIC
    if topic not in session.topics:
        raise FeedbackError(
            "topic",
            _("this session has no topic '%(topic)s'; its topics: %(topics)s")
            % {"topic": topic[:60], "topics": ", ".join(session.topics)},
        )
    return topic


def _id(value: int) -> int:
    """An id a database can hold (a fuzzer's 2**70 names nothing, and overflows SQLite)."""
    return value if 0 < value < 2**62 else 0


def ask(*, session_id: int, topic: str, text: str, client: str = "") -> Question:
    """A citizen's question to an open session (no login; counted with the client's reports)."""
    session = Session.objects.filter(pk=_id(session_id)).first()
    if session is None:
        raise FeedbackError("session", NO_SESSION % {"id": session_id}, status=404)
    if session.status != SessionStatus.OPEN:
        raise FeedbackError("session", _("the session no longer takes questions"), status=409)
    topic, text = _topic(session, topic), _text("text", text)
    now = timezone.now()
    with transaction.atomic():
        if client:
            _count(Throttle.Scope.CLIENT, client, now)
        question = Question.objects.create(session=session, topic=topic, text=text, asked_at=now)
        audit(None, "feedback.ask", f"session:{session.pk}", question=question.pk, topic=topic)
    return question


def sessions_for(user: User, unit: str | None = None) -> QuerySet[Session]:
    found: QuerySet[Session] = Session.objects.within(handling_area(user))
    if unit:
        host = queue_unit(user, unit)
        found = found.filter(unit__edition_id=host.edition_id, unit__path__under=host.path)
    return found.select_related("unit").annotate(
        asked=Count("questions"), answered=Count("questions", filter=~Q(questions__answered_at=None))
    )


def session_for(user: User, session_id: int) -> Session:
    found: Session | None = (
        Session.objects.within(handling_area(user)).select_related("unit").filter(pk=_id(session_id)).first()
    )
    if found is None:
        raise FeedbackError(
            "session", _("no question session number %(id)s in your area") % {"id": session_id}, status=404
        )
    return found


def _question(user: User, session_id: int, question_id: int) -> tuple[Session, Question]:
    session = session_for(user, session_id)
    question = session.questions.select_for_update().filter(pk=_id(question_id)).first()
    if question is None:
        raise FeedbackError(
            "question", _("the session has no question number %(id)s") % {"id": question_id}, status=404
        )
    return session, question


def answer_question(
    *, actor: User, session_id: int, question_id: int, text: str, answerer_title: str = "", topic: str = ""
) -> Question:
    """An official's answer (it may be corrected until the session is published); `topic` regroups it."""
    with transaction.atomic():
        session, question = _question(actor, session_id, question_id)
        if session.status == SessionStatus.PUBLISHED:
            raise FeedbackError("session", _("the session is published: its answers are final"), status=409)
        question.answer = _text("text", text)
        question.answerer_title = _fit("answerer_title", answerer_title).strip()[:200]
        if topic:
            question.topic = _topic(session, topic)
        question.answered_by, question.answered_at = actor, timezone.now()
        question.save()
        audit(actor, "feedback.session_answer", f"session:{session.pk}", question=question.pk)
    return question


def regroup(*, actor: User, session_id: int, question_id: int, topic: str) -> Question:
    with transaction.atomic():
        session, question = _question(actor, session_id, question_id)
        if session.status == SessionStatus.PUBLISHED:
            raise FeedbackError("session", _("the session is published"), status=409)
        question.topic = _topic(session, topic)
        question.save(update_fields=["topic"])
        audit(actor, "feedback.session_regroup", f"session:{session.pk}", question=question.pk, topic=topic)
    return question


def close(*, actor: User, session_id: int) -> Session:
    with transaction.atomic():
        session = session_for(actor, session_id)
        if session.status != SessionStatus.OPEN:
            raise FeedbackError("session", _("the session no longer takes questions"), status=409)
        session.status = SessionStatus.CLOSED
        session.save(update_fields=["status"])
        audit(actor, "feedback.session_close", f"session:{session.pk}")
    return session


def publish_session(*, actor: User, session_id: int) -> Session:
    """On the public page: the answered questions by topic (unanswered ones stay with the officials)."""
    with transaction.atomic():
        session = session_for(actor, session_id)
        if session.status == SessionStatus.PUBLISHED:
            raise FeedbackError("session", _("the session is already published"), status=409)
        answered = session.questions.exclude(answered_at=None).count()
        if not answered:
            raise FeedbackError(
                "session", _("no question is answered yet: there is nothing to publish"), status=409
            )
        session.status, session.published_at = SessionStatus.PUBLISHED, timezone.now()
        session.save(update_fields=["status", "published_at"])
        audit(actor, "feedback.session_publish", f"session:{session.pk}", answered=answered)
    return session


def by_topic(session: Session, *, answered_only: bool) -> list[dict]:
    """The questions grouped under the session's topics, in the topics' order; the text as the public
    page shows it (digit runs masked)."""
    questions = session.questions.select_related("answered_by").order_by("asked_at", "id")
    if answered_only:
        questions = questions.exclude(answered_at=None)
    groups: dict[str, list[dict]] = {t: [] for t in session.topics}
    for q in questions:
        groups.setdefault(q.topic, []).append(
            {
                "id": q.pk,
                "topic": q.topic,
                "text": public_text(q.text),
                "asked_at": q.asked_at,
                "answer": q.answer,
                "answerer_title": q.answerer_title,
                "answered_at": q.answered_at,
            }
        )
    return [{"topic": t, "questions": qs} for t, qs in groups.items() if qs]


def published() -> QuerySet[Session]:
    return Session.objects.filter(status=SessionStatus.PUBLISHED).select_related("unit")


def public_session(session_id: int) -> Session:
    found = published().filter(pk=session_id).first() if session_id < 2**62 else None
    if found is None:
        raise FeedbackError(
            "session", _("no published question session number %(id)s") % {"id": session_id}, status=404
        )
    return found


def open_sessions() -> QuerySet[Session]:
    return Session.objects.filter(status=SessionStatus.OPEN).select_related("unit")


def public_or_open(session_id: int) -> Session:
    found = None
    if 0 < session_id < 2**62:
        found = (
            Session.objects.filter(pk=session_id, status__in=[SessionStatus.OPEN, SessionStatus.PUBLISHED])
            .select_related("unit")
            .first()
        )
    if found is None:
        raise FeedbackError("session", NO_SESSION % {"id": session_id}, status=404)
    return found
