"""How the runner talks to a notebook's kernel: papermill's engine with a quiet transport and a liveness guard.

papermill (through nbclient) sends each cell to the kernel and waits for the kernel's ``execute_reply``,
with no time limit by default, as training cells may run for hours. Two things are added here, in the
papermill engine ``"zslkit"`` (:func:`engine`):

- **The transport.** On POSIX the kernel listens on IPC sockets in a private temporary folder instead of
  TCP ports on localhost: nothing is sent over TCP in plain text, and ipykernel 7's warning "Kernel is
  running over TCP without encryption" (printed by every kernel started over TCP) is not printed. Where
  IPC is unavailable (Windows) or its socket path would be too long, TCP stays, with its warning.
- **The liveness guard** (:class:`Liveness`). nbclient fails a cell whose kernel *died*; a kernel that is
  alive and *idle* while nbclient still waits for the cell's reply would keep the run waiting for ever
  (docs/pipeline.md, "The runner", tells what such a hang is). A second connection to the kernel follows
  its published status. When the kernel has published nothing for :data:`IDLE_GRACE` seconds and its last
  status was not ``busy``, the guard sends it a ``kernel_info_request`` on the shell channel, which a
  kernel answers only when its shell is not executing anything. Answered, and still no sign of the cell
  :data:`SETTLE` seconds later, the cell is failed: an error output is added to it, the kernel is stopped,
  and the runner names the notebook and the cell. A busy kernel (a long training cell, a silent
  computation) never answers the probe while it works, so a healthy cell is never failed, however long.

``run.cell_timeout`` (seconds; none by default) bounds each cell's time instead (nbclient's own timeout).
"""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from queue import Empty
from typing import Any

#: the name the engine is registered under with papermill (``engine_name=``)
ENGINE = "zslkit"
#: seconds a kernel may stay idle and silent while a cell waits for its reply, before it is probed
IDLE_GRACE = 600.0
#: seconds after an answered probe during which the cell may still start, before it is failed
SETTLE = 2.0
#: seconds papermill's closing ``kernel_info`` request (after the last cell) may wait for its reply
CLOSING_WAIT = 30.0
#: seconds between the guard's looks at the kernel's messages
POLL = 0.5
#: longest IPC socket path used (the system's limit is 104-108 bytes); longer: TCP
IPC_PATH_MAX = 100


@dataclass
class CellWatch:
    """What the runner learns of the notebook papermill is executing: the cell running now (its index in
    the executed notebook, as papermill's errors count), and why the guard failed it, if it did."""

    cell: int | None = None
    hang: str | None = None


class Liveness:
    """The liveness guard of one notebook's kernel (a second client connection, opened on first use).

    Parameters
    ----------
    km : jupyter_client.AsyncKernelManager
        The kernel's manager (nbclient's).
    grace : float
        :data:`IDLE_GRACE`.
    settle : float
        :data:`SETTLE`.
    """

    def __init__(self, km, grace: float = IDLE_GRACE, settle: float = SETTLE):
        self.km, self.grace, self.settle = km, grace, settle
        self.kc = None
        self.state: str | None = None  # the last execution_state the kernel published
        self.probes: set[str] = set()  # our kernel_info requests: their own status messages are not the cell's

    def open(self) -> None:
        """Connect with a session of our own: the kernel's shell socket hands a client's identity (its session
        id) over to the latest connection (ROUTER_HANDOVER), so a second client sharing the manager's session
        would take papermill's replies, and strand its requests."""
        if self.kc is None:
            session = self.km.session.clone()
            session.session = str(uuid.uuid4())
            self.kc = self.km.client(session=session)
            self.kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)

    def close(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None

    async def _next(self, channel: str, timeout: float) -> dict[str, Any] | None:
        try:
            return await getattr(self.kc, f"get_{channel}_msg")(timeout=timeout)
        except Empty:
            return None

    async def watch(self) -> str:
        """Wait while the cell's kernel shows signs of work; return why it is hung once it is idle, silent
        and answering (never returns for a healthy cell: the caller cancels it when the reply comes)."""
        self.open()
        last = time.monotonic()        # the kernel's last sign of work: a message not caused by our probes
        probe: tuple[str, float] | None = None
        answered: float | None = None
        while True:
            msg = await self._next("iopub", POLL)
            now = time.monotonic()
            if msg is not None:
                if msg.get("parent_header", {}).get("msg_id") in self.probes:
                    continue
                last = now
                parent = msg.get("parent_header", {}).get("msg_type")
                if msg.get("msg_type") == "status" and parent == "execute_request":
                    # only a cell's own busy/idle counts: the idle that ends a comm or info request (ipywidgets,
                    # nbclient) comes while a silent cell may still be executing
                    self.state = msg["content"].get("execution_state")
                if probe is not None:  # work after the probe: the kernel was not hung; probe again later
                    probe, answered = None, None
                continue
            if probe is None:
                if self.state != "busy" and now - last >= self.grace:
                    probe = (self.kc.kernel_info(), now)
                    self.probes.add(probe[0])
                continue
            while answered is None:
                reply = await self._next("shell", 0)
                if reply is None:
                    break
                if reply.get("parent_header", {}).get("msg_id") == probe[0]:
                    answered = now
            if answered is not None and now - answered >= self.settle:
                return (f"the kernel went idle without replying: no message from it for {now - last:.0f} s while "
                        f"the cell waited for its reply, and it answered a probe, so it was alive and not "
                        f"executing; the cell was failed by the runner's liveness guard (docs/pipeline.md)")


def ipc_address() -> str | None:
    """An IPC socket path prefix in a new private temporary folder, or None where TCP must stay."""
    if os.name != "posix":
        return None
    folder = tempfile.mkdtemp(prefix="zslkit-kernel-")
    address = os.path.join(folder, "k")
    if len(address) + 4 > IPC_PATH_MAX:
        os.rmdir(folder)
        return None
    return address


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


_REGISTERED: list[str] = []


def engine() -> str:
    """Register the papermill engine :data:`ENGINE` (once) and return its name.

    ``pm.execute_notebook(..., engine_name=engine(), watch=CellWatch(), idle_grace=seconds)``: ``watch`` is
    filled in as the notebook runs; ``idle_grace=None`` turns the guard off.
    """
    if _REGISTERED:
        return ENGINE
    from nbclient.util import run_sync
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class GuardedClient(PapermillNotebookClient):
        """papermill's client with the IPC transport and the liveness guard."""

        def __init__(self, nb_man, watch: CellWatch | None = None, idle_grace: float | None = IDLE_GRACE, **kw):
            super().__init__(nb_man, **kw)
            self.watch = watch if watch is not None else CellWatch()
            self.idle_grace = idle_grace
            self.liveness: Liveness | None = None
            self.ipc: str | None = None

        def create_kernel_manager(self):
            km = super().create_kernel_manager()
            self.ipc = ipc_address()
            if self.ipc:
                km.transport, km.ip = "ipc", self.ipc
            return km

        def close_guard(self) -> None:
            if self.liveness is not None:
                self.liveness.close()
            if self.ipc:
                shutil.rmtree(os.path.dirname(self.ipc), ignore_errors=True)

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            self.watch.cell = cell_index
            run = asyncio.ensure_future(super().async_execute_cell(cell, cell_index, execution_count, store_history))
            if self.idle_grace is None or cell.cell_type != "code" or not cell.source.strip():
                return await run
            if self.liveness is None or self.liveness.km is not self.km:
                self.liveness = Liveness(self.km, self.idle_grace)
            guard = asyncio.ensure_future(self.liveness.watch())
            try:
                done, _ = await asyncio.wait({run, guard}, return_when=asyncio.FIRST_COMPLETED)
                if guard in done and run not in done:
                    self.watch.hang = guard.result()
                    cell.outputs.append(_error_output(self.watch.hang))
                    self.nb_man.autosave_cell()
                    await self._stop_kernel()  # nbclient sees the kernel gone and stops waiting (DeadKernelError)
                return await run
            finally:
                guard.cancel()

        execute_cell = run_sync(async_execute_cell)  # nbclient's sync wrapper names the base class's coroutine

        async def async_wait_for_reply(self, msg_id, cell=None):
            """papermill's closing ``kernel_info`` request (``cell`` None), after the last cell, waits
            :data:`CLOSING_WAIT` seconds at most (or ``idle_grace``, if longer): an idle kernel answers at once."""
            if cell is not None or self.idle_grace is None:
                return await super().async_wait_for_reply(msg_id, cell)
            wait = max(self.idle_grace, CLOSING_WAIT)
            try:
                return await asyncio.wait_for(super().async_wait_for_reply(msg_id, cell), wait)
            except asyncio.TimeoutError:
                self.watch.cell = None
                self.watch.hang = (f"the kernel did not answer papermill's closing kernel_info request within "
                                   f"{wait:.0f} s after the last cell")
                raise

        wait_for_reply = _wait_for_reply = run_sync(async_wait_for_reply)

        async def _stop_kernel(self) -> None:
            if os.name == "posix":
                await _maybe_await(self.km.signal_kernel(signal.SIGKILL))
            else:
                await _maybe_await(self.km.shutdown_kernel(now=True))

    class GuardedEngine(NBClientEngine):
        """papermill's nbclient engine running :class:`GuardedClient`."""

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                     start_timeout=60, execution_timeout=None, watch=None, idle_grace=IDLE_GRACE,
                                     **kwargs):
            kwargs.pop("input_path", None)
            kwargs = {k: v for k, v in kwargs.items() if k not in ("timeout", "startup_timeout")}
            client = GuardedClient(nb_man, watch=watch, idle_grace=idle_grace, timeout=execution_timeout,
                                   startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                                   log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file, **kwargs)
            try:
                return client.execute()
            finally:
                client.close_guard()

    papermill_engines.register(ENGINE, GuardedEngine)
    _REGISTERED.append(ENGINE)
    return ENGINE


def _error_output(text: str) -> dict[str, Any]:
    import nbformat
    return nbformat.v4.new_output("error", ename="KernelIdle", evalue=text, traceback=[f"KernelIdle: {text}"])
