"""slack-sdk #1873: SocketModeClient.close() leaves its current_session_runner thread running."""
import threading
from concurrent.futures import ThreadPoolExecutor

from slack_sdk.socket_mode.builtin import SocketModeClient


def open_client():
    return SocketModeClient(app_token="xapp-1-local-test", auto_reconnect_enabled=False)


def recycle_workers(n):
    # each worker drops its client and starts over, as a watchdog does after a disconnect
    clients = [open_client() for _ in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(lambda c: c.close(), clients))


def main():
    for i in range(6):
        recycle_workers(8)
        print(i, "threads", threading.active_count(), flush=True)


main()
