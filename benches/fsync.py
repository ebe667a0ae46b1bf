#!/usr/bin/env python3
"""What one small durable write costs on this filesystem: N times a 500-byte write + fdatasync, into
a file that grows (as a fresh RocksDB WAL does), into a file written with zeros first (as PostgreSQL's
WAL segments and a recycled RocksDB WAL are), and into a file preallocated with fallocate. Prints
wall time and this process's CPU time per fdatasync.
Usage: benches/fsync.py [DIR, default .] [N, default 2000]"""
import os
import sys
import time


def bench(path, mode, n):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    if mode == "zeroed":
        os.write(fd, b"\0" * (n * 512 + 4096))
        os.fsync(fd)
        os.lseek(fd, 0, 0)
    elif mode == "fallocated":
        os.posix_fallocate(fd, 0, n * 512 + 4096)
        os.fsync(fd)
    t, c0 = time.perf_counter(), os.times()
    for _ in range(n):
        os.write(fd, b"x" * 500)
        os.fdatasync(fd)
    dt, c1 = time.perf_counter() - t, os.times()
    os.close(fd)
    os.unlink(path)
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    print(f"{mode:10s} {dt / n * 1e6:7.1f} µs per fdatasync, CPU {cpu / n * 1e6:6.1f} µs")


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    for mode in ["appended", "zeroed", "fallocated", "appended", "zeroed"]:
        bench(os.path.join(d, "vouchdb-fsync-test.dat"), mode, n)
