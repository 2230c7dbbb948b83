"""The test bed's broker (see README.md): starts remote commands inside bed hosts.

A process inside one host's PID namespace cannot enter a sibling one, so `mpirun` on h1
cannot start `orted` on h2 itself. The rsh agent (rsh.py, installed as DIR/rsh) asks this
broker, which runs outside the hosts, to do it:

  request   one JSON line {"host": NAME-OR-ADDRESS, "command": [WORD, ...]}
  reply     frames: one kind byte, a 4-byte big-endian length, the payload
              o  bytes of the command's stdout      e  bytes of its stderr
              x  its exit status (ASCII decimal)    f  a bed failure (message; status 255)

Like sshd, the command words are joined with spaces and given to the user's shell with a
fresh environment (HOME, LOGNAME, PATH, SHELL, USER), in HOME, with stdin from /dev/null.
When the agent's connection closes before the command ends, the command's process group and
every process descended from it get SIGTERM, and SIGKILL a second later.

usage: broker.py DIR      (listens on DIR/run/broker.sock; only uid 0 is served)
Python 3 standard library only.
"""

import json
import os
import pwd
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PREFIX = "10.77.0."
MAX_REQUEST = 1 << 20


def log(message):
    print(f"broker: {message}", file=sys.stderr, flush=True)


def proc_stat(pid):
    """(ppid, state, start time) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], fields[19]


def alive(pid, start):
    st = proc_stat(pid)
    return st is not None and st[1] != "Z" and st[2] == start


def hosts(bed):
    """{name: (pid, start)} of the hosts recorded in DIR/run/pids."""
    table = {}
    try:
        with open(os.path.join(bed, "run", "pids")) as f:
            for line in f:
                words = line.split()
                if len(words) == 4 and words[0] == "host":
                    table[words[1]] = (int(words[2]), words[3])
    except OSError:
        pass
    return table


def host_name(spec):
    """h3 for 'h3' and for '10.77.0.3'; anything else unchanged."""
    if spec.startswith(PREFIX) and spec[len(PREFIX):].isdigit():
        return "h" + str(int(spec[len(PREFIX):]))
    return spec


def descendants(root):
    """[(pid, start)] of root and every process below it, from one /proc snapshot."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append((int(entry), st[2]))
    found = []
    root_stat = proc_stat(root)
    if root_stat is not None:
        found.append((root, root_stat[2]))
    queue = [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child[0])
    return found


def signal_all(targets, signum):
    for pid, start in targets:
        if alive(pid, start):
            try:
                os.kill(pid, signum)
            except OSError:
                pass


def end_command(proc):
    """SIGTERM to the command's group and all its descendants; SIGKILL 1 s later."""
    targets = descendants(proc.pid)
    for signum, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(proc.pid, signum)
        except OSError:
            pass
        signal_all(targets, signum)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(*t) for t in targets):
            time.sleep(0.05)
        # Children born meanwhile are caught by the next round.
        targets = list(set(targets) | set(descendants(proc.pid)))
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log(f"process {proc.pid} did not end after SIGKILL")


def frame(kind, payload):
    return kind + struct.pack(">I", len(payload)) + payload


def read_request(conn):
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too long")
    request = json.loads(data.split(b"\n", 1)[0])
    command = request.get("command")
    if (not isinstance(request.get("host"), str) or not isinstance(command, list)
            or not command or not all(isinstance(w, str) for w in command)):
        raise ValueError("request needs a host and a non-empty command")
    return request["host"], command


def serve(bed, conn):
    try:
        pid, uid, gid = struct.unpack("3i", conn.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != 0:
            conn.sendall(frame(b"f", b"the bed serves root only"))
            return
        try:
            spec, command = read_request(conn)
        except (ValueError, UnicodeDecodeError) as e:
            conn.sendall(frame(b"f", f"bad request: {e}".encode()))
            return
        name = host_name(spec)
        table = hosts(bed)
        if name not in table:
            conn.sendall(frame(b"f", f"no host {spec} in the bed".encode()))
            return
        target, start = table[name]
        if not alive(target, start):
            conn.sendall(frame(b"f", f"host {name} is not up".encode()))
            return
        run(conn, target, command)
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def run(conn, target, command):
    user = pwd.getpwuid(0)
    shell = user.pw_shell or "/bin/sh"
    argv = ["nsenter", f"--target={target}", "--net", "--uts", "--pid", "--mount", "--ipc",
            "--", "env", "-i", "-C", user.pw_dir, f"PATH={PATH}", f"HOME={user.pw_dir}",
            f"USER={user.pw_name}", f"LOGNAME={user.pw_name}", f"SHELL={shell}",
            shell, "-c", " ".join(command)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ, None)
    sel.register(proc.stdout, selectors.EVENT_READ, b"o")
    sel.register(proc.stderr, selectors.EVENT_READ, b"e")
    pipes = 2
    gone = False
    while not gone and (pipes or proc.poll() is None):
        for key, _ in sel.select(timeout=0.2):
            if key.data is None:
                try:
                    gone = not conn.recv(4096)
                except OSError:
                    gone = True
                if gone:
                    break
                continue
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                pipes -= 1
                continue
            try:
                conn.sendall(frame(key.data, data))
            except OSError:
                gone = True
                break
    sel.close()
    if gone:
        end_command(proc)
        proc.stdout.close()
        proc.stderr.close()
        return
    status = proc.wait()
    if status < 0:
        status = 128 - status
    conn.sendall(frame(b"x", str(status).encode()))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: broker.py DIR")
    bed = os.path.abspath(sys.argv[1])
    path = os.path.join(bed, "run", "broker.sock")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    server.listen(128)
    log(f"listening on {path}")
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(bed, conn), daemon=True).start()


if __name__ == "__main__":
    main()
