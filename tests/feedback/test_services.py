"""Rules of answering: the first click wins, a link is used once, the reward is granted once,
detractors and promoters open the right follow-up, triggers invite the right people."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from tests.feedback.conftest import SURVEY_POINTS, ago, custom_survey, invite, survey_points
from vafa.customers.models import Customer, Order, OrderStatus, Ticket
from vafa.feedback.errors import AnswerInvalid, InvitationExpired, InvitationUsed
from vafa.feedback.models import FollowUpTask, SurveyInvitation, TaskKind, Trigger
from vafa.feedback.services import (
    invitation_create,
    response_complete,
    response_score_record,
    survey_invitations_due,
)
from vafa.loyalty.models import EarningRule

pytestmark = pytest.mark.django_db


def test_builtin_surveys_exist_in_three_languages() -> None:
    from vafa.feedback.models import Survey

    for slug in ("nps", "csat", "ces"):
        survey = Survey.objects.get(slug=slug)
        assert survey.kind == slug
        for field in (survey.title, survey.prompt, survey.low_label, survey.high_label):
            assert set(field) == {"fa", "ar", "en"} and all(field.values())


def test_an_invitation_expires_after_30_days_by_default(sara: Customer) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    invitation = invite(sara, now=now)
    assert invitation.expires_at == now + timedelta(days=30)
    assert len(invitation.token) >= 32


def test_the_first_click_wins_and_a_second_changes_nothing(sara: Customer) -> None:
    invitation = invite(sara)
    first = response_score_record(invitation=invitation, score="۳")
    again = response_score_record(invitation=invitation, score=10)
    assert first.pk == again.pk and again.score == 3
    assert FollowUpTask.objects.filter(kind=TaskKind.RECOVERY).count() == 1


@pytest.mark.parametrize("score", [-1, 11, "7.5", "abc", "", "1e1", "١٢"])
def test_it_refuses_scores_outside_the_scale(sara: Customer, score: object) -> None:
    with pytest.raises(AnswerInvalid) as problem:
        response_score_record(invitation=invite(sara), score=score)
    assert problem.value.field == "score"


def test_csat_and_ces_have_their_own_scales(sara: Customer) -> None:
    with pytest.raises(AnswerInvalid):
        response_score_record(invitation=invite(sara, "csat"), score=6)
    with pytest.raises(AnswerInvalid):
        response_score_record(invitation=invite(sara, "ces"), score=0)
    assert response_score_record(invitation=invite(sara, "ces"), score=7).score == 7


def test_completing_grants_the_reward_exactly_once(sara: Customer, survey_reward: EarningRule
                                                   ) -> None:
    invitation = invite(sara)
    response_score_record(invitation=invitation, score=8)
    response_score_record(invitation=invitation, score=8)
    response_complete(invitation=invitation, data={"reason": "fine"})
    with pytest.raises(InvitationUsed):
        response_complete(invitation=invitation, data={"reason": "again"})
    invitation.refresh_from_db()
    assert invitation.used_at is not None and invitation.reward_granted_at is not None
    assert survey_points(sara) == SURVEY_POINTS
    assert invitation.response.text == "fine"


def test_each_invitation_is_rewarded_on_its_own(sara: Customer, survey_reward: EarningRule
                                                ) -> None:
    for _ in range(2):
        invitation = invite(sara, "csat")
        response_complete(invitation=invitation, data={"score": "5"})
    assert survey_points(sara) == 2 * SURVEY_POINTS


def test_an_expired_invitation_takes_no_answer(sara: Customer, survey_reward: EarningRule
                                               ) -> None:
    invitation = invite(sara, now=ago(31))
    with pytest.raises(InvitationExpired):
        response_score_record(invitation=invitation, score=9)
    with pytest.raises(InvitationExpired):
        response_complete(invitation=invitation, data={"score": "9"})
    assert survey_points(sara) == 0


def test_without_a_survey_rule_nothing_is_granted_and_nothing_breaks(sara: Customer) -> None:
    invitation = invite(sara)
    response_complete(invitation=invitation, data={"score": "9"})
    invitation.refresh_from_db()
    assert invitation.used_at is not None and invitation.reward_granted_at is None


@pytest.mark.parametrize(("slug", "score", "kind"), [
    ("nps", 0, TaskKind.RECOVERY), ("nps", 6, TaskKind.RECOVERY), ("nps", 7, None),
    ("nps", 8, None), ("nps", 9, TaskKind.REVIEW_ASK), ("nps", 10, TaskKind.REVIEW_ASK),
    ("csat", 1, TaskKind.RECOVERY), ("csat", 2, TaskKind.RECOVERY), ("csat", 3, None),
    ("csat", 5, None), ("ces", 1, None),
])
def test_answers_open_the_right_follow_up(sara: Customer, slug: str, score: int,
                                          kind: str | None) -> None:
    response_score_record(invitation=invite(sara, slug), score=score)
    assert list(FollowUpTask.objects.values_list("kind", flat=True)) == ([kind] if kind else [])


def test_a_detractors_comment_lands_on_the_task(sara: Customer) -> None:
    invitation = invite(sara)
    response_score_record(invitation=invitation, score=2)
    response_complete(invitation=invitation, data={"reason": "ارسال دیر بود"})
    task = FollowUpTask.objects.get()
    assert task.notes == "ارسال دیر بود" and task.status == "open" and task.due_at is not None


def test_a_custom_survey_checks_each_answer(sara: Customer) -> None:
    survey = custom_survey()
    invitation = invitation_create(customer=sara, survey=survey)
    with pytest.raises(AnswerInvalid) as problem:
        response_complete(invitation=invitation, data={"box": "good"})
    assert problem.value.field == "speed"
    with pytest.raises(AnswerInvalid):
        response_complete(invitation=invitation, data={"speed": "9"})
    with pytest.raises(AnswerInvalid):
        response_complete(invitation=invitation, data={"speed": "3", "box": "<b>"})
    response = response_complete(invitation=invitation,
                                 data={"speed": "۴", "box": "good", "note": " ok ", "x": "y"})
    assert response.score is None
    assert response.answers == {"speed": 4, "box": "good", "note": "ok"}


def test_it_refuses_100_kb_of_text(sara: Customer) -> None:
    invitation = invite(sara)
    with pytest.raises(AnswerInvalid) as problem:
        response_complete(invitation=invitation, data={"score": "9", "reason": "x" * 100_000})
    assert problem.value.field == "reason"
    invitation.refresh_from_db()
    assert invitation.used_at is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_racing_submissions_reward_once(sara: Customer, survey_reward: EarningRule) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL); SQLite serialises them anyway")
    invitation = invite(sara)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def submit() -> None:
        barrier.wait()
        try:
            response_complete(invitation=invitation, data={"score": "9"})
            outcomes.append("ok")
        except InvitationUsed:
            outcomes.append("used")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "used"]
    assert survey_points(sara) == SURVEY_POINTS


# -- triggers ------------------------------------------------------------------------------------

NOW = datetime(2026, 6, 15, 10, tzinfo=UTC)


def _order(customer: Customer, placed_at: datetime, n: int,
           status: str = OrderStatus.PAID) -> Order:
    return Order.objects.create(external_id=f"O{n}", customer=customer, placed_at=placed_at,
                                status=status, total=Decimal(100), currency="IRT")


def test_triggers_ask_after_delivery_after_tickets_and_for_relationship_nps(db: None) -> None:
    delivered = Customer.objects.create(external_id="D")
    too_fresh = Customer.objects.create(external_id="F")
    helped = Customer.objects.create(external_id="H")
    loyal = Customer.objects.create(external_id="L")
    _order(delivered, NOW - timedelta(days=6), 1)
    _order(too_fresh, NOW - timedelta(days=1), 2)
    _order(loyal, NOW - timedelta(days=200), 3)
    _order(helped, NOW - timedelta(days=300), 4)
    Ticket.objects.create(external_id="T1", customer=helped, opened_at=NOW - timedelta(days=2),
                          resolved_at=NOW - timedelta(days=1))
    created = survey_invitations_due(now=NOW)
    got = {(i.customer.external_id, i.survey.slug, i.trigger) for i in created}
    assert got == {
        ("D", "csat", Trigger.DELIVERY),
        ("H", "csat", Trigger.TICKET),
        ("F", "nps", Trigger.RELATIONSHIP),  # a buyer never asked before
        ("L", "nps", Trigger.RELATIONSHIP),
    }
    # Running again the same day creates nothing: everyone is either surveyed or resting.
    assert survey_invitations_due(now=NOW) == []


def test_relationship_nps_keeps_the_minimum_gap(db: None, settings: object) -> None:
    loyal = Customer.objects.create(external_id="L")
    _order(loyal, NOW - timedelta(days=400), 1)
    assert len(survey_invitations_due(now=NOW)) == 1
    assert survey_invitations_due(now=NOW + timedelta(days=89)) == []
    again = survey_invitations_due(now=NOW + timedelta(days=91))
    assert [i.trigger for i in again] == [Trigger.RELATIONSHIP]
    settings.VAFA_SURVEY_MIN_GAP_DAYS = 200  # type: ignore[attr-defined]
    assert survey_invitations_due(now=NOW + timedelta(days=91 + 199)) == []
    assert len(survey_invitations_due(now=NOW + timedelta(days=91 + 201))) == 1
    assert SurveyInvitation.objects.count() == 3


def test_a_hand_edited_survey_is_checked_before_customers_see_it() -> None:
    from django.core.exceptions import ValidationError as DjangoValidationError

    from tests.feedback.conftest import custom_survey
    from vafa.feedback.models import Survey

    custom_survey().full_clean()
    broken = Survey(slug="broken", kind="custom", title={"en": "x"}, questions=[
        {"type": "text", "label": {"en": "no id"}},
        {"id": "a", "type": "choice", "label": {"en": "A"}},
        {"id": "a", "type": "slider", "label": {"en": "B"}},
        {"id": "s", "type": "scale", "min": 5, "max": 1, "label": {"en": "C"}},
    ])
    with pytest.raises(DjangoValidationError) as problem:
        broken.full_clean()
    assert len(problem.value.message_dict["questions"]) == 5
    with pytest.raises(DjangoValidationError):
        Survey(slug="n2", kind="nps", title={"en": "x"}).full_clean()
