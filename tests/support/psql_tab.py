"""Drive an interactive psql through a pseudo-terminal and print what it shows after each input.

Usage: psql_tab.py URL INPUT...   (INPUTs may contain \\t, \\x15 and other Python escapes)
Used by tests/wire.rs to check psql's tab completion, which only runs on a terminal.
"""
import os
import pty
import select
import signal
import sys
import time


def read(fd, seconds):
    out = b""
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out.decode(errors="replace")


def main():
    url, inputs = sys.argv[1], sys.argv[2:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("psql", ["psql", "-X", url])
    read(fd, 1.5)
    for text in inputs:
        os.write(fd, text.encode().decode("unicode_escape").encode())
        print(read(fd, 1.0))
        print("----")
    os.write(fd, b"\x03\\q\n")
    read(fd, 0.5)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


main()
