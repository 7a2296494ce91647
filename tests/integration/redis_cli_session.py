"""redis-cli in interactive mode, in a pseudo-terminal, as a person would use it: it sends
COMMAND DOCS at start-up for its hints, then the commands typed. Usage: redis_cli_session.py PORT"""
import fcntl
import os
import pty
import struct
import termios
import select
import sys
import time

port = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execv("/usr/bin/redis-cli", ["redis-cli", "-p", port])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))

def read_until(needle, timeout=10.0):
    out = b""
    deadline = time.time() + timeout
    while needle not in out and time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            # The line editor asks where the cursor is; answer as a terminal would.
            if b"\x1b[6n" in chunk:
                os.write(fd, b"\x1b[1;1R")
            out += chunk
    return out

try:
    prompt = ("127.0.0.1:%s> " % port).encode()
    got = read_until(prompt)
    assert prompt in got, got
    for line, expect in [(b"PING", b"PONG"), (b"XADD s 1-1 f v", b"1-1"),
                         (b"XRANGE s - +", b"1) \"f\""), (b"XLEN s", b"(integer) 1"),
                         (b"NOSUCH x", b"unknown command")]:
        os.write(fd, line + b"\r")
        # Wait for the reply and the next prompt before typing on, as a person would.
        got = read_until(b"\n" + prompt)
        assert expect in got, (line, got)
    # Typing a command's name and a space shows its arguments in grey, built from COMMAND DOCS;
    # then Ctrl-U clears the line. The hints of the commands and options newer than Redis 7.0:
    for name, hint in [
            (b"XADD", b"key [NOMKSTREAM] [KEEPREF|DELREF|ACKED] "
                      b"[IDMPAUTO producer-id|IDMP producer-id idempotent-id] "
                      b"[MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value "
                      b"[field value ...]"),
            (b"XTRIM", b"key MAXLEN|MINID [=|~] threshold [LIMIT count] [KEEPREF|DELREF|ACKED]"),
            (b"XDELEX", b"key [KEEPREF|DELREF|ACKED] IDS numids id [id ...]"),
            (b"XACKDEL", b"key group [KEEPREF|DELREF|ACKED] IDS numids id [id ...]"),
            (b"XNACK", b"key group SILENT|FAIL|FATAL IDS numids id [id ...] [RETRYCOUNT count] "
                       b"[FORCE]"),
            (b"XCFGSET", b"key [IDMP-DURATION idmp-duration] [IDMP-MAXSIZE idmp-maxsize]"),
            (b"XREADGROUP", b"GROUP group consumer [COUNT count] [BLOCK milliseconds] "
                            b"[CLAIM min-idle-time] [NOACK] STREAMS key [key ...] id [id ...]"),
            (b"XINFO STREAM", b"key [FULL [COUNT count]]"),
            (b"XINFO CONSUMERS", b"key groupname")]:
        os.write(fd, name + b" ")
        shown = b"\x1b[0;90;49m" + hint + b"\x1b[0m"
        got = read_until(name + b" " + shown, timeout=5.0)
        assert shown in got, (name, got[-400:])
        os.write(fd, b"\x15")
        read_until(prompt + b"\r", timeout=1.0)
    os.write(fd, b"QUIT\r")
    time.sleep(0.2)
    print("redis-cli OK")
finally:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
