# culprit: build_report
# A report materialises every row as a dict before it sums one column.
def build_report(n):
    rows = [{"id": i, "amount": i % 97, "note": "n" * 40} for i in range(n)]
    return sum(r["amount"] for r in rows)

def main():
    total = 0
    for _ in range(2):
        total += build_report(250_000)
    return total

main()
