"""The test bed's rsh agent (see README.md), installed by `bed.sh up` as DIR/rsh.

usage: DIR/rsh [ssh-style options, ignored] HOST COMMAND...

For Open MPI's plm_rsh_agent: runs COMMAND on bed host HOST (a name such as h2 or a bed
address such as 10.77.0.2) through the bed's broker (DIR/run/broker.sock), with a fresh,
ssh-like environment and stdin from /dev/null. Passes back stdout, stderr and the exit
status; 255 with a message when the bed fails. Killing this agent ends the remote command.
Python 3 standard library only.
"""

import json
import os
import socket
import struct
import sys

# ssh options that take an argument (the agent ignores all options, as rsh would).
WITH_ARGUMENT = set("BbcDEeFIiJLlmOoPpQRSWw")


def fail(message):
    sys.stderr.write(f"rsh: {message}\n")
    sys.exit(255)


def parse(args):
    while args and args[0].startswith("-") and args[0] != "-":
        option = args.pop(0)
        if option == "--":
            break
        if len(option) == 2 and option[1] in WITH_ARGUMENT and args:
            args.pop(0)
    if len(args) < 2:
        fail("usage: rsh [options] HOST COMMAND...")
    return args[0], args[1:]


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    host, command = parse(sys.argv[1:])
    bed = os.path.dirname(os.path.realpath(__file__))
    path = os.path.join(bed, "run", "broker.sock")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        conn.sendall(json.dumps({"host": host, "command": command}).encode() + b"\n")
    except OSError as e:
        fail(f"cannot reach the bed's broker at {path}: {e.strerror or e}")
    out = {b"o": sys.stdout.buffer, b"e": sys.stderr.buffer}
    while True:
        try:
            head = read_exact(conn, 5)
            payload = head and read_exact(conn, struct.unpack(">I", head[1:])[0])
        except OSError:
            head = payload = None
        if head is None or payload is None:
            fail("broker closed the connection")
        kind = head[:1]
        if kind in out:
            out[kind].write(payload)
            out[kind].flush()
        elif kind == b"x":
            sys.exit(int(payload))
        else:
            fail(payload.decode(errors="replace"))


if __name__ == "__main__":
    main()
