# culprit: open_channel
# Each worker gets a pipe pair for results; the pairs are never closed.
import os
import time

channels = []

def open_channel():
    r, w = os.pipe()
    channels.append((r, w))

for i in range(80):
    open_channel()
time.sleep(0.5)
