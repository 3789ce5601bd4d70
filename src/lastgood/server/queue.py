"""Background work on procrastinate, a PostgreSQL job queue: what several replicas on one database share.

The same job functions as `InProcessJobs` (server/jobs.py) run as one procrastinate task, `lastgood.job`, whose
arguments are the job's name and JSON arguments. A job's `key` is its queueing lock (one waiting job per key,
however many replicas submit it) and its lock (one running at a time). Workers send a heartbeat every 2 s; a
worker silent for 10 s is stalled, and a periodic task (every 5 s, deferred once across all workers) puts its
running jobs back in the queue, where another worker runs them again: every job function is safe to run twice
(a rollback resumes from the ledger, skipping finished steps; a guard period already claimed is skipped).
API replicas only submit; worker replicas also run a procrastinate worker on a thread of their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import exceptions
from sqlalchemy.engine import make_url

from lastgood.errors import BadInput
from lastgood.server import started
from lastgood.server.jobs import JOBS

if TYPE_CHECKING:
    from lastgood.server.state import ServerState

log = logging.getLogger("lastgood.server.queue")

TASK = "lastgood.job"
CHANNEL = "lastgood_started"
HEARTBEAT_SECONDS = 2.0
STALLED_SECONDS = 10.0
SCHEMA_LOCK = 7_351_002  # pg_advisory_lock key: replicas starting together apply the queue's schema once


def libpq_url(state_url: str) -> str:
    url = make_url(state_url)
    if not url.drivername.startswith("postgresql"):
        raise BadInput(f"the job queue needs a PostgreSQL state URL, not {url.drivername}://")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _queue_app(conninfo: str, state: ServerState | None) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name=TASK, pass_context=False)
    def run_job(name: str, args: dict[str, Any]) -> Any:
        if state is None:
            raise RuntimeError("this replica only submits jobs")
        return JOBS[name](state, **args)

    @app.periodic(cron=f"* * * * * */{int(STALLED_SECONDS // 2)}", periodic_id="retry-stalled")
    @app.task(name="lastgood.retry-stalled", queueing_lock="retry-stalled", pass_context=False)
    async def retry_stalled(timestamp: int) -> list[int]:
        stalled = list(await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_SECONDS))
        for job in stalled:
            await _requeue(app, job)
        return [job.id for job in stalled if job.id is not None]

    return app


async def _requeue(app: procrastinate.App, job: procrastinate.jobs.Job) -> None:
    """Run it again elsewhere; when the same job already waits in the queue (a scan or a recovery submitted it
    meanwhile), that one does the work and the stalled one is closed as failed, freeing its lock."""
    assert job.id is not None
    try:
        await app.job_manager.retry_job(job)
        log.warning("job %s (%s) ran on a worker that stopped answering: queued again", job.id, job.lock)
    except exceptions.UniqueViolation:
        await app.job_manager.finish_job_by_id_async(job.id, procrastinate.jobs.Status.FAILED, delete_job=False)
        log.warning("job %s (%s) ran on a worker that stopped answering: its copy in the queue runs", job.id, job.lock)


def apply_schema(conninfo: str) -> None:
    """The queue's tables, once, by whichever replica starts first."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            present = connection.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if not (present and present[0]):
                connection.execute(procrastinate.schema.SchemaManager.get_schema())
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


class QueuedJobs:
    """`Jobs` on procrastinate. `work=True` also runs a worker in this process (`--role worker` or `all`)."""

    def __init__(self, state: ServerState, state_url: str, work: bool, concurrency: int = 16) -> None:
        self.state = state
        self.conninfo = libpq_url(state_url)
        apply_schema(self.conninfo)
        self._submitter = _queue_app(self.conninfo, None).open()
        self._task = self._submitter.tasks[TASK]
        self.work = work
        self.concurrency = concurrency
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker_task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="lastgood-queue-listener", daemon=True)
        self._listener.start()
        started.add_relay(self._publish)
        if work:
            self._thread = threading.Thread(target=self._run_worker, name="lastgood-queue-worker", daemon=True)
            self._thread.start()
            self._ready.wait(30)

    def submit(self, name: str, key: str | None = None, **args: Any) -> Future[Any] | None:
        """Queue job `name`; None when a job with the same key is already waiting (or this replica stops)."""
        if name not in JOBS:
            raise KeyError(name)
        if self.state.stopping.is_set():
            return None
        task = self._task.configure(queueing_lock=key, lock=key) if key is not None else self._task
        try:
            job_id = task.defer(name=name, args=args)
        except exceptions.AlreadyEnqueued:
            return None
        queued: Future[Any] = Future()
        queued.set_result(job_id)  # the job's id: its outcome is in the ledger, not in this process
        return queued

    def running(self) -> list[str]:
        rows = self._submitter.connector.get_sync_connector().execute_query_all(
            "SELECT lock FROM procrastinate_jobs WHERE status = 'doing' AND lock IS NOT NULL ORDER BY lock"
        )
        return [str(row["lock"]) for row in rows]

    def _publish(self, message: str) -> None:
        """A job's signal to the request waiting for it, on whichever replica that request is."""
        import psycopg

        try:
            with psycopg.connect(self.conninfo, autocommit=True) as connection:
                connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))
        except psycopg.Error:
            log.warning("could not relay a job's signal: its request answers with what it knows")

    def _listen(self) -> None:
        import psycopg

        while not self._closed.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._closed.is_set():
                        for notify in connection.notifies(timeout=0.5):
                            started.deliver(notify.payload)
            except psycopg.Error:
                log.warning("lost the queue's signal channel; listening again")
                self._closed.wait(1.0)

    def _run_worker(self) -> None:
        asyncio.run(self._worker_main())

    async def _worker_main(self) -> None:
        app = _queue_app(self.conninfo, self.state)
        async with app.open_async():
            self._loop = asyncio.get_running_loop()
            # Jobs are plain functions that wait on AWS and the database: one thread each, `concurrency` of them
            # (asyncio's default pool would cap them at the core count + 4).
            self._loop.set_default_executor(ThreadPoolExecutor(self.concurrency, thread_name_prefix="lastgood-job"))
            self._worker_task = asyncio.current_task()
            self._ready.set()
            try:
                await app.run_worker_async(
                    concurrency=self.concurrency,
                    name=self.state.worker_name,
                    install_signal_handlers=False,
                    update_heartbeat_interval=HEARTBEAT_SECONDS,
                    stalled_worker_timeout=STALLED_SECONDS,
                    delete_jobs="successful",
                )
            except asyncio.CancelledError:
                log.info("queue worker stopped")

    def shutdown(self, wait: bool = True) -> None:
        """Take no new job; the ones running finish (a rollback stops at its next step, resumable)."""
        if self._loop is not None and self._worker_task is not None:
            self._loop.call_soon_threadsafe(self._worker_task.cancel)
        if self._thread is not None and wait:
            self._thread.join(timeout=60)
        started.remove_relay(self._publish)
        self._closed.set()
        self._submitter.close()

    def alive(self) -> bool:
        """Whether this replica's queue worker (when it has one) and signal listener still run: /readyz."""
        worker_ok = self._thread is None or self._thread.is_alive()
        return worker_ok and self._listener.is_alive()
