"""Domain models for orders, kept free of I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal


class Status(enum.Enum):
    """Lifecycle of an order."""

    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LineItem:
    """One product in an order."""

    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass
class Order:
    """An order and the items in it."""

    id: int
    customer: str
    items: list[LineItem] = field(default_factory=list)
    status: Status = Status.PENDING
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, item: LineItem, note: str | None = None) -> None:
        if self.status is not Status.PENDING:
            raise ValueError(f"cannot add items to a {self.status.value} order")
        self.items.append(item)
        if note is not None:
            self.notes[item.sku] = note

    @property
    def total(self) -> Decimal:
        return sum((item.total for item in self.items), Decimal("0"))

    def has_sku(self, sku: str) -> bool:
        return sku in self.notes or any(item.sku == sku for item in self.items)

    def transition(self, new: Status) -> None:
        allowed = _TRANSITIONS.get(self.status, set())
        if new not in allowed:
            raise ValueError(f"{self.status.value} -> {new.value} is not allowed")
        self.status = new


_TRANSITIONS: dict[Status, set[Status]] = {
    Status.PENDING: {Status.PAID, Status.CANCELLED},
    Status.PAID: {Status.SHIPPED, Status.CANCELLED},
}


def summarize(orders: list[Order], status: Status | None = None) -> dict[str, Decimal]:
    """Total spend per customer, optionally only for orders in `status`."""
    totals: dict[str, Decimal] = {}
    for order in orders:
        if status is not None and order.status != status:
            continue
        totals[order.customer] = totals.get(order.customer, Decimal("0")) + order.total
    return totals


def is_large(order: Order, threshold: Decimal = Decimal("1000")) -> bool:
    return isinstance(order, Order) and order.total >= threshold
