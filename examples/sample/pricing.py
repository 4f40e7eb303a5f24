"""Prices and discounts for the sample shop."""

TAX_RATE = 0.2


def apply_discount(price, percent):
    """Returns the price after taking `percent` off."""
    if percent < 0 or percent > 100:
        raise ValueError("percent must be between 0 and 100")
    return price * (100 - percent) / 100


def with_tax(price):
    return round(price * (1 + TAX_RATE), 2)
