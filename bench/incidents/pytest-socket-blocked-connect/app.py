"""pytest-socket #496: a connect blocked by socket_allow_hosts leaves its socket open."""
import os
import socket
import time

from pytest_socket import SocketConnectBlockedError, socket_allow_hosts


def fetch(port):
    # a client of a service that retries and keeps its last failures for a report
    try:
        socket.create_connection(("127.0.0.2", port), timeout=1)
    except SocketConnectBlockedError as exc:
        return exc


def main():
    socket_allow_hosts(["127.0.0.1"])
    errors = []
    for i in range(400):
        errors.append(fetch(9))
        if i % 100 == 0:
            print(i, len(os.listdir("/proc/self/fd")), flush=True)
        time.sleep(0.005)
    print("end", len(os.listdir("/proc/self/fd")))


main()
