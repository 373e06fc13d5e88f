"""No run hangs silently: the runner's liveness guard, ``run.cell_timeout`` and the kernel's transport
(zslkit/run/kernel.py), on small notebooks whose kernel is made to go quiet.

Two ways a kernel goes quiet while papermill waits for a cell's reply, both made on purpose inside the kernel:
it executes the cell but its ``execute_reply`` is lost (the session drops it), or it never starts the cell
(the request is swallowed before dispatch, as when a request strands unread on the shell socket). Each must
fail the run within seconds, naming the notebook and the cell; a healthy cell that works silently for longer
than the grace period must not.
"""
from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest

from zslkit import RunError
from zslkit.run import kernel, runner

# The cell that arms the trap: later cells whose code holds the marker go quiet. The marker is built at run
# time so that the arming cell itself (whose code is in its own request) is not caught.
DROP_REPLY = """\
k = get_ipython().kernel
marker = 'QUIET' + '_ME'
send = k.session.send
def quiet_send(stream, msg_or_type, content=None, parent=None, *args, **kw):
    code = ((parent or {}).get('content') or {}).get('code', '')
    if msg_or_type == 'execute_reply' and marker in code:
        return {'content': {'status': 'ok'}}  # the reply is lost; the kernel goes idle
    return send(stream, msg_or_type, content, parent, *args, **kw)
k.session.send = quiet_send
"""
SWALLOW_REQUEST = """\
k = get_ipython().kernel
marker = ('QUIET' + '_ME').encode()
dispatch = k.dispatch_shell
async def quiet_dispatch(msg, subshell_id=None, *, concurrent=False):
    if any(marker in bytes(getattr(f, 'buffer', f)) for f in msg):
        return  # never started: no status, no output, no reply
    return await dispatch(msg, subshell_id=subshell_id, concurrent=concurrent)
k.dispatch_shell = quiet_dispatch
"""


def project(tmp_path, cells, run=None):
    """A project with one notebook ``01_quiet.ipynb`` of ``cells`` after the parameters cell."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params").mkdir()
    nb = nbformat.v4.new_notebook()
    params_cell = nbformat.v4.new_code_cell("run = {}")
    params_cell.metadata["tags"] = ["parameters"]
    nb.cells = [params_cell] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "notebooks" / "01_quiet.ipynb")
    run = {"name": "quiet", **(run or {})}
    (tmp_path / "params" / "p.yaml").write_text("run: {" + ", ".join(f"{k}: {v}" for k, v in run.items()) + "}\n")
    return tmp_path / "params" / "p.yaml"


def execute(tmp_path, params):
    return runner.run(params, root=tmp_path, log=lambda *_: None)


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setattr(kernel, "IDLE_GRACE", 2.0)
    monkeypatch.setattr(kernel, "SETTLE", 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("trap", [DROP_REPLY, SWALLOW_REQUEST], ids=["reply-lost", "request-never-started"])
def test_a_kernel_that_goes_quiet_fails_the_cell_by_name(tmp_path, short_grace, trap):
    params = project(tmp_path, [trap, "x = 1  # QUIET_ME", "print('never reached')"])
    t0 = time.monotonic()
    # papermill counts the cell it injects after the parameters cell: the quiet cell is cell 3
    with pytest.raises(RunError, match=r"01_quiet.ipynb failed in cell 3: the kernel went idle without replying"
                       ) as err:
        execute(tmp_path, params)
    assert time.monotonic() - t0 < 60
    kept = tmp_path / "reports" / "quiet" / "01_quiet.ipynb"
    assert "kept at" in str(err.value) and kept.is_file()
    cells = nbformat.read(kept, as_version=4).cells
    assert any(o.get("ename") == "KernelIdle" for o in cells[3].outputs)
    assert (tmp_path / "reports" / "quiet" / "html" / "01_quiet.html").is_file()


@pytest.mark.slow
def test_a_lost_closing_reply_fails_after_the_last_cell(tmp_path, short_grace, monkeypatch):
    monkeypatch.setattr(kernel, "CLOSING_WAIT", 2.0)
    trap = DROP_REPLY.replace("msg_or_type == 'execute_reply' and marker in code", "msg_or_type == 'kernel_info_reply'")
    params = project(tmp_path, [trap])
    with pytest.raises(RunError, match=r"01_quiet.ipynb failed after its last cell: the kernel did not answer"):
        execute(tmp_path, params)


@pytest.mark.slow
def test_a_busy_silent_cell_longer_than_the_grace_is_left_alone(tmp_path, short_grace):
    params = project(tmp_path, ["import time\ntime.sleep(7)", "done = True"])
    folder = execute(tmp_path, params)
    assert (folder / "01_quiet.ipynb").is_file()


@pytest.mark.slow
def test_cell_timeout_fails_the_cell_by_name(tmp_path):
    params = project(tmp_path, ["import time\ntime.sleep(120)"], run={"cell_timeout": 3})
    t0 = time.monotonic()
    with pytest.raises(RunError, match=r"01_quiet.ipynb failed in cell 2: no reply within run.cell_timeout = 3 s"):
        execute(tmp_path, params)
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_a_dead_kernel_fails_the_cell_by_name(tmp_path):
    params = project(tmp_path, ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    with pytest.raises(RunError, match=r"01_quiet.ipynb failed in cell 2: the kernel died"):
        execute(tmp_path, params)


@pytest.mark.slow
def test_the_kernel_transport_warning_is_gone(tmp_path, capfd):
    params = project(tmp_path, ["print('hello')"])
    execute(tmp_path, params)
    err = capfd.readouterr().err
    assert "without encryption" not in err and "IPKernelApp" not in err


class FakeKernel:
    """A kernel client as the guard sees it: scripted iopub messages; the probe is answered or not."""

    def __init__(self, answers: bool, iopub=()):
        self.answers, self.iopub, self.sent = answers, list(iopub), []

    async def get_iopub_msg(self, timeout):
        if self.iopub:
            return self.iopub.pop(0)
        await asyncio.sleep(min(timeout, 0.01))
        raise Empty

    async def get_shell_msg(self, timeout):
        if self.answers and self.sent:
            return {"parent_header": {"msg_id": self.sent[-1]}}
        raise Empty

    def kernel_info(self):
        self.sent.append(f"probe{len(self.sent)}")
        return self.sent[-1]


def guard(fake, monkeypatch):
    monkeypatch.setattr(kernel, "POLL", 0.01)
    live = kernel.Liveness(km=None, grace=0.1, settle=0.1)
    live.kc = fake
    return live


def test_the_guard_fails_an_idle_kernel_that_answers(monkeypatch):
    fake = FakeKernel(answers=True, iopub=[{"msg_type": "status", "content": {"execution_state": "idle"},
                                            "parent_header": {"msg_id": "cell"}}])
    reason = asyncio.run(asyncio.wait_for(guard(fake, monkeypatch).watch(), 5))
    assert "went idle without replying" in reason and fake.sent == ["probe0"]


def test_the_guard_never_fails_a_kernel_that_does_not_answer(monkeypatch):
    """A kernel executing a cell answers no probe: however long and silent the cell, the guard waits."""
    fake = FakeKernel(answers=False)
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(guard(fake, monkeypatch).watch(), 1.5))
    assert fake.sent == ["probe0"]  # one probe, left waiting; none sent while it is outstanding


def test_the_guard_does_not_probe_a_busy_kernel(monkeypatch):
    fake = FakeKernel(answers=True, iopub=[{"msg_type": "status", "content": {"execution_state": "busy"},
                                            "parent_header": {"msg_id": "cell", "msg_type": "execute_request"}}])
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(guard(fake, monkeypatch).watch(), 1.0))
    assert fake.sent == []
