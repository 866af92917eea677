"""``python -m filterviz``: the command line, which ends without the interpreter's teardown.

Tearing torch's modules down takes about 0.6 s after a command is done, and a render's whole process
should cost little more than its optimization. So once a command has returned, what Python's exit would still
do that matters is done (the atexit handlers: logging's flush, temporary directories' finalizers,
coverage's data), the streams are flushed, and the process ends with ``os._exit``. A command that raised
or exited (argparse's errors, ``--help``) ends as ever, as does one that left a thread running, which
Python's exit would wait for. ``filterviz.cli.main`` itself returns as ever, for whoever calls it in-process.
"""

import atexit
import os
import sys
import threading

from filterviz.cli import main


def run() -> None:
    """The command line's command, then the process's end with its status."""
    status = main()
    if any(not thread.daemon for thread in threading.enumerate() if thread is not threading.main_thread()):
        raise SystemExit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # its reader gone (a closed pipe): what is left cannot be written anyway
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
