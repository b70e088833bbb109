#!/usr/bin/env python3
"""Opens files the way a test asks and prints, as one JSON object per line, what
it did (pid, tid, path, flags, result), so a test can compare with what ingrain
reported.

  opener.py open PATH [FLAGS]     FLAGS: r | w | creat | rw (default r)
  opener.py openat DIR NAME       open NAME relative to a dirfd of DIR
  opener.py chdir-open DIR NAME   chdir(DIR) then open NAME relative (AT_FDCWD)
  opener.py storm DIR N [RATE]    open DIR/f<i> (O_CREAT) for i in 0..N-1, at RATE/s
Several commands may follow each other, separated by "--".
"""
import json
import os
import sys
import threading
import time

FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY,
    "rw": os.O_RDWR,
    "creat": os.O_WRONLY | os.O_CREAT,
}


def report(path, flags, rc, syscall="openat"):
    print(json.dumps({"pid": os.getpid(), "tid": threading.get_native_id(),
                      "path": path, "flags": flags, "ret": rc, "syscall": syscall}),
          flush=True)


def do_open(path, flags, dir_fd=None):
    try:
        fd = os.open(path, flags, 0o644, dir_fd=dir_fd)
        os.close(fd)
        return fd
    except OSError as e:
        return -e.errno


def main(argv):
    cmds, cur = [], []
    for a in argv:
        if a == "--":
            cmds.append(cur)
            cur = []
        else:
            cur.append(a)
    cmds.append(cur)
    for c in cmds:
        if not c:
            continue
        op = c[0]
        if op == "open":
            flags = FLAGS[c[2] if len(c) > 2 else "r"]
            report(c[1], flags, do_open(c[1], flags))
        elif op == "openat":
            dfd = os.open(c[1], os.O_RDONLY | os.O_DIRECTORY)
            report(c[1], os.O_RDONLY | os.O_DIRECTORY, dfd)
            report(os.path.join(c[1], c[2]), os.O_RDONLY, do_open(c[2], os.O_RDONLY, dfd))
            os.close(dfd)
        elif op == "chdir-open":
            os.chdir(c[1])
            report(os.path.join(c[1], c[2]), os.O_RDONLY, do_open(c[2], os.O_RDONLY))
        elif op == "storm":
            n = int(c[2])
            rate = float(c[3]) if len(c) > 3 else 0
            t0 = time.monotonic()
            for i in range(n):
                fd = os.open(os.path.join(c[1], "f%d" % i), os.O_WRONLY | os.O_CREAT, 0o644)
                os.close(fd)
                if rate:
                    delay = t0 + (i + 1) / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
            print(json.dumps({"pid": os.getpid(), "storm": n}), flush=True)
        else:
            sys.exit("opener.py: unknown command %r" % op)


if __name__ == "__main__":
    main(sys.argv[1:])
