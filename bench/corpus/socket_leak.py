# culprit: open_connection
# A client opens a socket per call and keeps it in a list for "reuse" that never comes.
import socket
import time

_conns = []

def open_connection(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _conns.append(s)
    return s

for i in range(150):
    open_connection(i)
time.sleep(0.5)
