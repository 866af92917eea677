"""Child processes that die with the process that started them, however it dies (Linux)."""

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``signum`` when its parent dies.

    A SIGKILLed parent runs no cleanup, so this is the kernel's job (``PR_SET_PDEATHSIG``). It fires
    when the *thread* that started the child ends: start such children from a long-lived thread.
    None off Linux (no such call there).
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def set_death_signal() -> None:  # runs in the child, between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:  # the parent died before the call: nobody will send the signal
            os.kill(os.getpid(), signum)

    return set_death_signal
