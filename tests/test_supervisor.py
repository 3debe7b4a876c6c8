"""What the server answers for the requests of an inference worker that died (serving.supervisor), on a stand-in
for LitServe's response buffer and worker status: fast, with no server started."""

import asyncio
import threading
from types import SimpleNamespace

from litserve.utils import WorkerSetupStatus

from serving import supervisor


def _item(worker_id):
    return SimpleNamespace(worker_id=worker_id, event=threading.Event(), response=None)


def _status(item) -> int | None:
    return item.response[0].status_code if item.event.is_set() else None


async def _run(server, steps) -> None:
    """Run the watcher while ``steps`` (callables, one per watch interval) change the server's state."""
    task = asyncio.create_task(supervisor.watch_in_flight(server, deadline_s=60.0))
    for step in steps:
        step()
        await asyncio.sleep(supervisor.WATCH_INTERVAL_S * 2)
    task.cancel()


def test_requests_of_a_dead_worker_get_503_and_queued_ones_are_left_to_the_new_worker(monkeypatch):
    monkeypatch.setattr(supervisor, "WATCH_INTERVAL_S", 0.01)
    monkeypatch.setattr(supervisor, "ORPHAN_GRACE_S", 0.1)
    taken, orphan, later = _item(0), _item(None), _item(None)
    # taken: announced by worker 0; orphan: taken off the queue by it unannounced; later: arrives after the death
    status = {"predict_0": WorkerSetupStatus.READY}
    server = SimpleNamespace(workers_setup_status=status, response_buffer={"taken": taken, "orphan": orphan})
    seen = {}

    def die():
        status["predict_0"] = WorkerSetupStatus.STARTING
        server.response_buffer["later"] = later

    def while_starting():
        seen["taken"], seen["orphan"] = _status(taken), _status(orphan)
        status["predict_0"] = WorkerSetupStatus.READY

    asyncio.run(_run(server, [lambda: None, die, *[lambda: None] * 10, while_starting, *[lambda: None] * 10]))
    assert seen == {"taken": 503, "orphan": None}  # while the new worker starts, the unannounced one waits
    assert _status(orphan) == 503  # taken by no worker long after the death: answered, not left to hang
    assert _status(later) is None  # arrived after the death: the new worker's to serve


def test_a_request_without_answer_gets_504_after_the_deadline(monkeypatch):
    monkeypatch.setattr(supervisor, "WATCH_INTERVAL_S", 0.01)
    waiting = _item(0)
    server = SimpleNamespace(
        workers_setup_status={"predict_0": WorkerSetupStatus.READY}, response_buffer={"w": waiting}
    )

    async def run():
        task = asyncio.create_task(supervisor.watch_in_flight(server, deadline_s=0.05))
        await asyncio.sleep(0.3)
        task.cancel()

    asyncio.run(run())
    assert _status(waiting) == 504
    assert "within 0.05 s" in waiting.response[0].detail
