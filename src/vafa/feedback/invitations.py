"""The invitation message: what messaging sends (any channel), built here so that the survey's
wording, language and one-click links live with the survey.

`invitation_message` renders plain text (for email, SMS, Telegram) and a short HTML body for
email, both with one link per score: answering is one tap inside the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from vafa.core.text import localize_digits
from vafa.feedback.links import survey_url
from vafa.feedback.models import SurveyInvitation, pick_language
from vafa.feedback.selectors import customer_language


@dataclass(frozen=True)
class InvitationMessage:
    language: str
    subject: str
    url: str
    score_urls: dict[int, str]
    text: str
    html: str


def invitation_message(*, invitation: SurveyInvitation) -> InvitationMessage:
    """The rendered invitation in the customer's language, with the signed link(s)."""
    survey = invitation.survey
    language = customer_language(invitation.customer)
    url = survey_url(invitation.token)
    scale = survey.scale
    score_urls = (
        {n: survey_url(invitation.token, score=n) for n in range(scale[0], scale[1] + 1)}
        if scale else {}
    )
    with translation.override(language):
        context = {
            "customer": invitation.customer,
            "title": pick_language(survey.title, language),
            "prompt": pick_language(survey.prompt, language),
            "low_label": pick_language(survey.low_label, language),
            "high_label": pick_language(survey.high_label, language),
            "url": url,
            "scores": [(localize_digits(str(n), language), link) for n, link in
                       score_urls.items()],
        }
        subject = pick_language(survey.title, language) or gettext("A quick question")
        text = render_to_string("feedback/invitation.txt", context)
        html = render_to_string("feedback/invitation.html", context)
    return InvitationMessage(language=language, subject=subject, url=url, score_urls=score_urls,
                             text=text, html=html)
