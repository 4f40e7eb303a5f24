from inventory import Inventory, Item


def main():
    shop = Inventory()
    shop.add(Item("lamp", 30.0, 2))
    shop.add(Item("desk", 120.0, 1))
    print(f"stock value: {shop.total_value(discount_percent=10):.2f}")


if __name__ == "__main__":
    main()
