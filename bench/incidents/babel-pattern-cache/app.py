"""babel #962: parse_pattern caches every pattern it has seen in a module-level dict."""
import resource
from datetime import datetime

from babel.dates import format_datetime

PATTERN = ("'Order {} placed on the web shop by a returning customer, shipping to the address on "
           "file, on' EEEE d MMMM y 'at' HH:mm")


def render_receipt(order_id, when):
    # the order number is quoted into the pattern, so every order has its own pattern
    return format_datetime(when, PATTERN.format(order_id), locale="en_US")


def main():
    when = datetime(2023, 1, 28, 13, 27, 53)
    for i in range(40000):
        render_receipt(i, when)
        if i % 10000 == 0:
            print(i, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB", flush=True)
    print("end", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")


main()
