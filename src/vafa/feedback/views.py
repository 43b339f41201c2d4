"""The survey page behind a signed link: one-click score on GET, the rest on POST.

Thin: find the invitation, speak the customer's language, call one service, render. Every
problem with the link gets its own plain page (404 forged, 410 expired or already answered) so
the customer knows what happened; nothing the customer typed is ever rendered unescaped.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from vafa.core.text import localize_digits
from vafa.feedback import conf, services
from vafa.feedback.errors import AnswerInvalid, InvitationExpired, InvitationInvalid, InvitationUsed
from vafa.feedback.models import SurveyInvitation, SurveyResponse, pick_language
from vafa.feedback.selectors import customer_language, invitation_for_link


def _notice(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "feedback/notice.html", {"title": title, "message": message},
                  status=status)


def _link_problem(request: HttpRequest, error: Exception) -> HttpResponse:
    if isinstance(error, InvitationUsed):
        return _notice(request, 410, _("Already answered"),
                       _("You have already answered this survey. Thank you!"))
    if isinstance(error, InvitationExpired):
        return _notice(request, 410, _("Link expired"),
                       _("This survey link has expired. Thank you for your interest."))
    return _notice(request, 404, _("Invalid link"),
                   _("This survey link is not valid. Please use the link from your message."))


def _form_context(
    invitation: SurveyInvitation, response: SurveyResponse | None, language: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    survey = invitation.survey
    scale = survey.scale
    questions = []
    for question in survey.questions:
        entry = {
            "id": str(question["id"]), "type": question.get("type"),
            "label": pick_language(question.get("label"), language),
            "required": bool(question.get("required")), "value": data.get(str(question["id"]), ""),
            "choices": [
                (str(c["value"]), pick_language(c.get("label"), language))
                for c in question.get("choices", [])
            ],
            "numbers": [
                (str(n), localize_digits(str(n), language))
                for n in range(int(question.get("min", 1)), int(question.get("max", 5)) + 1)
            ] if question.get("type") == "scale" else [],
        }
        questions.append(entry)
    return {
        "title": pick_language(survey.title, language),
        "prompt": pick_language(survey.prompt, language),
        "low_label": pick_language(survey.low_label, language),
        "high_label": pick_language(survey.high_label, language),
        "scores": [
            (str(n), localize_digits(str(n), language)) for n in range(scale[0], scale[1] + 1)
        ] if scale else [],
        "score": None if response is None or response.score is None
        else localize_digits(str(response.score), language),
        "questions": questions,
        "max_text": conf.MAX_TEXT,
    }


@require_http_methods(["GET", "POST"])
def survey_page(request: HttpRequest, signed: str) -> HttpResponse:
    """GET (`?score=N` records the one-click score) shows the form; POST saves the rest."""
    try:
        invitation = invitation_for_link(signed=signed)
    except InvitationInvalid as invalid:
        return _link_problem(request, invalid)
    language = customer_language(invitation.customer)
    with translation.override(language):
        request.LANGUAGE_CODE = language
        response = SurveyResponse.objects.filter(invitation=invitation).first()
        error: AnswerInvalid | None = None
        data: dict[str, Any] = {}
        try:
            if request.method == "POST":
                data = request.POST.dict()
                try:
                    services.response_complete(invitation=invitation, data=data,
                                               language=language)
                except AnswerInvalid as problem:
                    error = problem
                else:
                    return render(request, "feedback/notice.html", {
                        "title": _("Thank you!"),
                        "message": _("Your answers were saved. Thank you for your time."),
                    })
            elif invitation.used_at is not None:
                raise InvitationUsed("used")
            elif invitation.expires_at <= timezone.now():
                raise InvitationExpired("expired")
            elif "score" in request.GET and (response is None or response.score is None):
                # A repeated click has nothing to record (the first click wins): skip the write.
                try:
                    response = services.response_score_record(
                        invitation=invitation, score=request.GET["score"], language=language
                    )
                except AnswerInvalid as problem:
                    error = problem
        except (InvitationUsed, InvitationExpired) as problem:
            return _link_problem(request, problem)
        context = _form_context(invitation, response, language, data)
        context["error"] = error
        return render(request, "feedback/survey.html", context, status=400 if error else 200)
