"""The messaging admin checks a template against a sample customer before saving it: every
default flow template must pass that check, so a merchant can edit and save them."""

from __future__ import annotations

import pytest

from vafa.messaging.compose import template_check
from vafa.messaging.models import MessageTemplate

pytestmark = pytest.mark.django_db


def test_every_default_flow_template_passes_the_admin_check() -> None:
    templates = list(MessageTemplate.objects.filter(key__startswith="flow-"))
    assert len(templates) > 50  # email and SMS, fa/ar/en, for every default flow
    for template in templates:
        template_check(template)  # raises TemplateError on an undefined variable
