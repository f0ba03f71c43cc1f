from decimal import Decimal

import pytest

from models import LineItem, Order, Status, is_large, summarize


@pytest.fixture
def order():
    return Order(id=1, customer="ada")


def item(sku="A-1", quantity=1, price="9.99"):
    return LineItem(sku=sku, quantity=quantity, unit_price=Decimal(price))


def test_total_sums_line_items(order):
    order.add(item(quantity=2))
    order.add(item(sku="B-2", price="0.02"))
    assert order.total == Decimal("20.00")


def test_note_is_recorded(order):
    order.add(item(), note="gift wrap")
    assert order.notes == {"A-1": "gift wrap"}
    assert order.has_sku("A-1")
    assert not order.has_sku("Z-9")


def test_cannot_add_after_payment(order):
    order.transition(Status.PAID)
    with pytest.raises(ValueError, match="paid order"):
        order.add(item())


@pytest.mark.parametrize(
    ("start", "new"),
    [(Status.PENDING, Status.SHIPPED), (Status.SHIPPED, Status.PAID)],
)
def test_invalid_transitions(order, start, new):
    order.status = start
    with pytest.raises(ValueError):
        order.transition(new)


def test_summarize_filters_by_status():
    paid = Order(id=2, customer="bob", items=[item(price="5")], status=Status.PAID)
    pending = Order(id=3, customer="bob", items=[item(price="7")])
    totals = summarize([paid, pending], status=Status.PAID)
    assert totals == {"bob": Decimal("5")}
    assert summarize([]) == {}


def test_is_large():
    big = Order(id=4, customer="cy", items=[item(quantity=200, price="10")])
    assert is_large(big)
    assert is_large(big, threshold=Decimal("3000")) is False
    assert type(big.status) is Status
    assert big.created_at is not None
