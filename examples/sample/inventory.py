"""A tiny inventory used by the Infinity Matrix sample."""

from dataclasses import dataclass

from pricing import apply_discount, with_tax


@dataclass
class Item:
    name: str
    price: float
    quantity: int


class Inventory:
    def __init__(self):
        self.items = {}

    def add(self, item):
        self.items[item.name] = item

    def total_value(self, discount_percent=0):
        total = 0.0
        for item in self.items.values():
            discounted = apply_discount(item.price, discount_percent)
            total += with_tax(discounted) * item.quantity
        return total
