"""The campaign batch path's cheaper reads decide as the full ones do, and each recipient of a
campaign gets their own recommended products (one batched lookup per chunk)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.campaigns.conftest import make_campaign
from tests.messaging.conftest import T0, make_customer, make_template
from tests.messaging.fakes import SmtpServer
from vafa.customers.models import Channel, Customer, Order, OrderLine, OrderStatus, Product
from vafa.customers.recommendations import (
    customer_recommendations,
    recommendations_for_customers,
    recommendations_refresh,
)
from vafa.messaging.campaigns.models import CampaignRecipient
from vafa.messaging.campaigns.services import (
    campaign_enqueue,
    campaign_schedule,
    campaign_start,
)
from vafa.messaging.models import MessageKind, OutboxMessage, SuppressionReason, Topic
from vafa.messaging.outbox import outbox_flush
from vafa.messaging.selectors import CUSTOMER_ROW_FIELDS, CustomerRow, send_state
from vafa.messaging.services import (
    consent_set,
    preferences_update,
    push_subscription_save,
    suppression_add,
    telegram_link_complete,
    telegram_link_start,
)

pytestmark = pytest.mark.django_db
CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.TELEGRAM, Channel.PUSH)


def _crowd() -> list[Customer]:
    """Customers in every state the send-time check distinguishes."""
    plain = make_customer("plain", email="plain@example.com", phone="+989120000001")
    by_customer = make_customer("by-customer", email="bc@example.com", phone="+989120000002")
    suppression_add(channel=Channel.EMAIL, reason=SuppressionReason.UNSUBSCRIBED,
                    customer=by_customer, now=T0)
    # Suppressed by address only (no customer row): the stored email differs in case.
    by_address = make_customer("by-address", email=" Old@Example.COM", phone="+989120000003")
    suppression_add(channel=Channel.EMAIL, reason=SuppressionReason.COMPLAINT,
                    address="old@example.com", now=T0)
    suppression_add(channel=Channel.SMS, reason=SuppressionReason.MANUAL,
                    address="+989120000003", now=T0)
    no_consent = make_customer("no-consent", email="nc@example.com")
    consent_set(customer=no_consent, channel=Channel.EMAIL, granted=False, source="t", now=T0)
    paused = make_customer("paused", email="paused@example.com")
    preferences_update(customer=paused, now=T0, source="t", pause=True)
    topic_off = make_customer("topic-off", email="topic@example.com")
    preferences_update(customer=topic_off, now=T0, source="t", topics_off=[Topic.OFFERS])
    chatty = make_customer("chatty", email="")
    consent_set(customer=chatty, channel=Channel.TELEGRAM, granted=True, source="t", now=T0)
    link = telegram_link_start(customer=chatty, bot_username="shop_bot", now=T0)
    telegram_link_complete(token=link.rsplit("=", 1)[1], chat_id="4242", now=T0)
    pushy = make_customer("pushy", email="")
    consent_set(customer=pushy, channel=Channel.PUSH, granted=True, source="t", now=T0)
    push_subscription_save(customer=pushy, endpoint="https://push.example/1", p256dh="k",
                           auth="a", now=T0)
    return [plain, by_customer, by_address, no_consent, paused, topic_off, chatty, pushy]


@pytest.mark.parametrize("channels", [CHANNELS, (Channel.EMAIL,), (Channel.TELEGRAM, Channel.SMS)])
def test_reading_tuples_for_a_snapshot_slice_decides_as_reading_every_customer(
    policy: object, channels: tuple[str, ...]
) -> None:
    crowd = _crowd()
    campaign = make_campaign()
    CampaignRecipient.objects.bulk_create(
        [CampaignRecipient(campaign=campaign, customer=c, variant="A") for c in crowd]
    )
    scope = CampaignRecipient.objects.filter(campaign=campaign).values("customer_id")
    rows = Customer.objects.filter(pk__in=[c.pk for c in crowd]).values_list(*CUSTOMER_ROW_FIELDS)
    light = {row[0]: CustomerRow(*row) for row in rows}
    full = send_state(crowd, now=T0)
    cheap = send_state(list(light.values()), now=T0, channels=channels, scope=scope)
    decisions = {}
    for customer in crowd:
        for channel in channels:
            for kind in MessageKind.values:
                expected = full.decide(customer=customer, channel=channel, kind=kind,
                                       topic=Topic.OFFERS, now=T0)
                got = cheap.decide(customer=light[customer.pk], channel=channel, kind=kind,
                                   topic=Topic.OFFERS, now=T0)
                assert got == expected, (customer.external_id, channel, kind)
                decisions[(customer.external_id, channel, kind)] = got.reason
    # The crowd really is varied (the comparison above is not between two empty answers).
    if Channel.EMAIL in channels:
        assert decisions[("by-customer", "email", "marketing")] == "suppressed:unsubscribed"
        assert decisions[("by-address", "email", "marketing")] == "suppressed:complaint"
        assert decisions[("paused", "email", "marketing")] == "paused"
        assert decisions[("topic-off", "email", "marketing")] == "topic_off"
        assert decisions[("no-consent", "email", "marketing")] == "no_consent"
    if Channel.TELEGRAM in channels:
        assert decisions[("chatty", "telegram", "marketing")] == ""
    if Channel.SMS in channels:
        assert decisions[("by-address", "sms", "marketing")] == "suppressed:manual"


def test_a_campaign_moves_to_the_next_channel_only_when_that_one_can_take_the_message(
    policy: object, templates: object
) -> None:
    crowd = {c.external_id: c for c in _crowd()}
    moved = make_customer("moved", email="Moved@Example.com", phone="+989120000009")
    suppression_add(channel=Channel.EMAIL, reason=SuppressionReason.HARD_BOUNCE,
                    address="moved@example.com", now=T0)
    crowd["moved"] = moved
    campaign = make_campaign(channel_order="email,sms", topic=Topic.OFFERS)
    campaign = campaign_schedule(campaign=campaign, now=T0)
    campaign = campaign_start(campaign=campaign, now=T0)
    assert campaign_enqueue(campaign=campaign, now=T0, chunk_size=3).done
    channels = dict(
        OutboxMessage.objects.filter(source=campaign.source)
        .values_list("customer__external_id", "channel")
    )
    assert channels["plain"] == "email"
    assert channels["by-customer"] == "sms"  # email unsubscribed, SMS still fine
    assert channels["moved"] == "sms"  # the address bounced (suppressed by address only)
    # email suppressed by address, SMS too: the first channel, stopped at send time
    assert channels["by-address"] == "email"
    assert channels["no-consent"] == "email"  # no phone: nowhere better
    assert channels["paused"] == "email"  # paused everywhere: the first channel, held at send
    assert len(channels) == len(crowd)


# -- recommendations -----------------------------------------------------------------------------


def _buy(customer: Customer, products: list[Product], *, days_ago: int, n: str) -> None:
    order = Order.objects.create(
        external_id=n, customer=customer, placed_at=T0 - timedelta(days=days_ago),
        status=OrderStatus.PAID, total=Decimal(100), currency="IRT",
    )
    for line_no, product in enumerate(products, 1):
        OrderLine.objects.create(order=order, line_no=line_no, product=product, quantity=1,
                                 unit_price=Decimal(50))


@pytest.fixture
def shop(policy: object) -> dict[str, Customer]:
    """Tea drinkers also buy cups; honey buyers also buy saffron (two co-buyers each, the
    least that counts as similar). Sara bought only tea, Reza only honey, Nima nothing (he
    gets the month's best sellers)."""
    products = {name: Product.objects.create(external_id=name, name=name.title(),
                                             price=Decimal(90_000), currency="IRT")
                for name in ("tea", "cup", "honey", "saffron")}
    people = {
        name: make_customer(name, first_name=name.title(), email=f"{name}@example.com",
                            language="en", timezone="UTC")
        for name in ("ana", "bahram", "kian", "omid", "sara", "reza", "nima")
    }
    _buy(people["ana"], [products["tea"], products["cup"]], days_ago=3, n="1")
    _buy(people["bahram"], [products["tea"], products["cup"]], days_ago=4, n="2")
    _buy(people["kian"], [products["honey"], products["saffron"]], days_ago=5, n="3")
    _buy(people["omid"], [products["honey"], products["saffron"]], days_ago=6, n="4")
    _buy(people["omid"], [products["tea"]], days_ago=7, n="5")
    _buy(people["sara"], [products["tea"]], days_ago=8, n="6")
    _buy(people["reza"], [products["honey"]], days_ago=9, n="7")
    recommendations_refresh(now=T0)
    return people


def test_the_batched_lookup_gives_each_customer_what_the_single_lookup_gives(
    shop: dict[str, Customer]
) -> None:
    languages = {c.pk: ("fa" if i % 2 else "en") for i, c in enumerate(shop.values())}
    with CaptureQueriesContext(connection) as queries:
        batched = recommendations_for_customers(languages, limit=2)
    assert len(queries) == 4  # bought, similar, best sellers, products: whatever the count
    for customer_id, language in languages.items():
        assert batched[customer_id] == customer_recommendations(
            customer_id, language=language, k=2
        )
    names = {c.external_id: [p["name"] for p in batched[c.pk]["recommended_products"]]
             for c in shop.values()}
    assert names["sara"][0] == "Cup" and names["reza"][0] == "Saffron"
    assert "Tea" not in names["sara"] and "Honey" not in names["reza"]
    assert names["nima"] == ["Tea", "Honey"]  # nothing bought: the month's best sellers


def test_campaign_recipients_with_different_purchases_receive_their_own_products(
    shop: dict[str, Customer], smtp: SmtpServer
) -> None:
    make_template(
        key="picks", subject="For you, {{ customer.first_name }}",
        body_html="<p>{% for p in recommended_products %}[{{ p.name }}]{% endfor %}</p>"
        "<p>{{ social_proof }}</p>",
        body_text="{% for p in recommended_products %}[{{ p.name }}]{% endfor %}\n"
        "{{ last_order.id if last_order else '-' }}",
    )
    campaign = make_campaign(variants=(("A", 1, "picks"),))
    campaign = campaign_schedule(campaign=campaign, now=T0)
    campaign = campaign_start(campaign=campaign, now=T0)
    assert campaign_enqueue(campaign=campaign, now=T0, chunk_size=4).done
    outbox_flush(now=T0)
    received = {str(m["To"]): m for m in smtp.sink.received}
    assert len(received) == len(shop)

    def lines(name: str) -> list[str]:
        body = received[f"{name}@example.com"].get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content()).splitlines()[:2]

    assert lines("sara") == ["[Cup][Honey][Saffron]", "6"]  # and her last order
    assert lines("reza") == ["[Saffron][Tea][Cup]", "7"]
    assert lines("nima") == ["[Tea][Honey][Cup]", "-"]  # buyers: tea 4, honey 3, cup 2 (= saffron)
    html = received["sara@example.com"].get_body(preferencelist=("html",))
    assert html is not None and "customers bought this in the last 30 days" in html.get_content()


def test_the_batch_reads_only_what_its_templates_name(policy: object) -> None:
    from vafa.messaging.campaigns.bulk import BatchContext, template_mentions

    zahra = make_customer("zahra", email="z@example.com", language="fa")
    plain = make_template(key="plain", subject="Hi", body_html="<p>Hi</p>", body_text="Hi")
    rich = make_template(key="rich", body_text="{{ points }} {{ last_order }}")
    assert template_mentions([plain]) == frozenset()
    assert template_mentions([plain, rich]) == {"points", "last_order"}
    with CaptureQueriesContext(connection) as everything:
        BatchContext.load([zahra], now=T0, site_url="https://shop.example",
                          recommend={zahra.pk: "fa"})
    with CaptureQueriesContext(connection) as nothing:
        BatchContext.load([zahra], now=T0, site_url="https://shop.example",
                          recommend={zahra.pk: "fa"}, mentions=frozenset())
    # purchases, best sellers (nothing bought: no similar products, nothing to describe),
    # member rows, points, last order
    assert len(everything) == 5 and len(nothing) == 0
