"""Run a function in a forked child with a time and an address-space limit (for fuzzing readers)."""
import multiprocessing
import resource
import signal
from typing import Any, Callable, Tuple


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(send, fn: Callable, args: tuple, seconds: int, memory: int) -> None:
    limit = _vm_bytes() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.alarm(seconds)
    try:
        send.send(("ok", fn(*args)))
    except BaseException as exc:   # the test reports what escaped
        send.send(("raised", f"{type(exc).__name__}: {exc}"[:300]))


def run_limited(fn: Callable, *args: Any, seconds: int, memory: int) -> Tuple[str, Any]:
    """('ok', fn(*args)) or ('raised', what escaped) or ('died', exit code, e.g. -14 for the alarm)."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, seconds, memory))
    proc.start()
    send.close()
    try:
        got = recv.recv() if recv.poll(seconds + 10) else ("died", "no answer in time")
    except EOFError:
        got = None
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return got if got is not None else ("died", proc.exitcode)
