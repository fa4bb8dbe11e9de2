# culprit: subscribe
# Each subscriber gets a listener task on its own queue; nothing ever cancels it, and the
# registry keeps the queues (and so the pending tasks) alive: asyncio's goroutine leak.
import asyncio

_registry = []


async def listen(queue):
    while True:
        await queue.get()


def subscribe():
    queue = asyncio.Queue()
    _registry.append(queue)
    return asyncio.ensure_future(listen(queue))


async def main():
    for _ in range(300):
        subscribe()
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.5)


asyncio.run(main())
