"""``python -m filterviz`` ends a finished command without the interpreter's teardown, yet as Python's exit
would: its status, its output flushed, the atexit handlers run, a thread still running waited for."""

import json
import os
import subprocess
import sys
from pathlib import Path

ENTRY_WITH_EXIT_WITNESSES = """
import atexit, sys, threading, time
from filterviz.__main__ import run

class TornDown:
    def __del__(self):
        print("torn down", flush=True)

witness = TornDown()  # deleted by the interpreter's teardown only
atexit.register(print, "atexit handler ran")
if sys.argv.pop(1) == "thread":
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished"))).start()
run()
"""


def run_entry(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)


def test_a_finished_command_keeps_its_output_and_status_without_the_teardown(tmp_path: Path):
    done = run_entry("-c", ENTRY_WITH_EXIT_WITNESSES, "no thread", "models", "check", str(tmp_path / "none.toml"))
    assert done.returncode == 2
    assert "filterviz: error: cannot read models file" in done.stderr
    assert done.stdout.splitlines() == ["atexit handler ran"]  # and no teardown


def test_a_thread_still_running_gets_pythons_own_exit(tmp_path: Path):
    done = run_entry("-c", ENTRY_WITH_EXIT_WITNESSES, "thread", "models", "check", str(tmp_path / "none.toml"))
    assert done.returncode == 2
    assert done.stdout.splitlines() == ["thread finished", "atexit handler ran", "torn down"]


def test_python_m_filterviz_flushes_a_piped_table(tmp_path: Path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = run_entry("-m", "filterviz", "layers", "vgg16", "--size", "32", "--json", env=env)
    assert done.returncode == 0, done.stderr
    table = json.loads(done.stdout)  # all of it: a pipe's block buffer written before os._exit
    assert table[0]["name"] == "block1_conv1" and table[-1]["name"] == "block5_pool"
