"""infisical python-sdk #52: each client's SecretsCache starts a cleanup thread that never ends."""
import gc
import threading
import time

from infisical_sdk import InfisicalSDKClient


def handle_job(i):
    # a short-lived client per job, as a worker that reads one secret per task would do
    client = InfisicalSDKClient(host="http://127.0.0.1:9", token=f"token-{i}")
    return client.host


def main():
    for i in range(80):
        handle_job(i)
        if i % 20 == 0:
            gc.collect()
            print(i, "threads", threading.active_count(), flush=True)
        time.sleep(0.05)
    gc.collect()
    time.sleep(1.5)
    print("end threads", threading.active_count())


main()
