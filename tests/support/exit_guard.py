"""Guard process: tears a test server down if the interpreter that started it dies first.

Run as a script, never imported. argv[1] is a JSON spec ``{"commands": [[...]], "remove": dir}``.
stdin carries lines from the owner: ``kill PID`` adds a process to kill, ``disarm`` means the
owner stopped the server itself. At end of input (the owner exited, crashed or was killed) an
armed guard kills the processes, runs the commands and removes the directory.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys


def main() -> None:
    spec = json.loads(sys.argv[1])
    pids: list[int] = []
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word == "disarm":
            return
        if word == "kill":
            pids.append(int(arg))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for command in spec["commands"]:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(command, check=False, timeout=60, cwd="/")
    shutil.rmtree(spec["remove"], ignore_errors=True)


if __name__ == "__main__":
    main()
