# culprit: checksum
# A pure-Python checksum over every payload holds the CPU.
def checksum(data):
    total = 0
    for b in data:
        total = (total * 31 + b) & 0xFFFFFFFF
    return total

def handle(i):
    return checksum(bytes(range(256)) * 40)

for i in range(400):
    handle(i)
