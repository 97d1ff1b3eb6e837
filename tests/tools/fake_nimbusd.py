#!/usr/bin/env python3
"""A stand-in for nimbusd that the CLI's tests talk to (tests/guest/cli_daemon.sh).

It serves nimbusd's HTTP/1.1 + JSON API (docs/cli.md, "nimbusd's API") over a
unix socket with canned VMs and the lifecycle's state machine, but runs no VM:

  web1   running (pid 4242), a console socket, growing stats
  cache  paused (pid 4343)
  db     shutdown
  old    saved (a snapshot path)

Every request is appended to the record file as one JSON line
{"method", "path", "body"} before it is answered, so a test sees what the CLI
asked once the CLI has exited. A running VM's console is a unix socket
(DIR/NAME.console) that greets, answers each line with "echo: LINE" and
closes after a line "quit"; when a client goes, what it sent is appended to
DIR/NAME.console.log as {"received": TEXT}.

Stats grow with time: vcpu_seconds at 0.25 per second (CPU 25 %), disk reads
at 1 MiB/s, network receive at 2 KiB/s, for running VMs only.

Usage: fake_nimbusd.py --socket PATH --record FILE --dir DIR
"""
import argparse
import json
import os
import socket
import socketserver
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

LOG_LINES = ["line %d" % i for i in range(1, 11)]
DEFINITION_FIELDS = {
    "name", "uuid", "vcpus", "memory_mib", "kernel", "initrd", "cmdline", "bios", "disks",
    "nets", "vsock", "balloon", "console", "jit", "autostart", "cpu_weight",
    "cpu_max_percent", "memory_max_mib",
}


class ApiError(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status, self.body = status, {"error": message, "code": code, **extra}


class Console(threading.Thread):
    """A VM's console socket: one client at a time, as nimbus run's."""

    def __init__(self, path, name, dirname):
        super().__init__(daemon=True)
        self.path, self.name, self.dirname = path, name, dirname
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.serve(conn)

    def serve(self, conn):
        def send(data):   # a client that left is no reason to stop reading
            try:
                conn.sendall(data)
            except OSError:
                pass
        received = b""
        pending = b""
        try:
            send(("console of %s\r\n" % self.name).encode())
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                received += data
                pending += data
                quit_seen = False
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    send(b"echo: " + line + b"\r\n")
                    if line == b"quit":
                        quit_seen = True
                        break
                if quit_seen:
                    break
        except OSError:
            pass
        finally:
            conn.close()
            with open(os.path.join(self.dirname, self.name + ".console.log"), "a") as f:
                f.write(json.dumps({"received": received.decode("latin-1")}) + "\n")


class Daemon:
    def __init__(self, dirname, record):
        self.dirname, self.record = dirname, record
        self.lock = threading.Lock()
        self.next_pid = 5000
        self.t0 = time.monotonic()
        self.vms = {}
        self.add("web1", "running", pid=4242)
        self.add("cache", "paused", pid=4343)
        self.add("db", "shutdown", exit_reason="guest powered off")
        self.add("old", "saved", snapshot="/var/lib/nimbus/vms/old/snapshot")

    def add(self, name, state, pid=None, exit_reason=None, snapshot=None, definition=None):
        d = definition or {
            "name": name, "vcpus": 2, "memory_mib": 512, "kernel": "/boot/vmlinux",
            "cmdline": "console=ttyS0",
            "disks": [{"path": "/img/%s.qcow2" % name, "format": "qcow2", "readonly": False,
                       "cache": "writeback"}],
            "nets": [{"type": "user", "mac": "52:54:00:00:00:%02x" % (len(self.vms) + 1),
                      "hostfwd": ["tcp::2222-:22"]}],
            "balloon": False, "console": "serial", "autostart": False, "cpu_weight": 100,
            "cpu_max_percent": 0, "memory_max_mib": 0,
        }
        d.setdefault("uuid", str(uuid.uuid4()))
        vm = {"name": name, "uuid": d["uuid"], "state": state, "pid": pid,
              "vcpus": d.get("vcpus", 1), "memory_mib": d.get("memory_mib", 512),
              "autostart": d.get("autostart", False), "definition": d,
              "api_socket": None, "console_socket": None,
              "log": os.path.join(self.dirname, name + ".log"),
              "exit_reason": exit_reason, "snapshot": snapshot, "history": [],
              "started": time.monotonic(), "console": None}
        self.vms[name] = vm
        if pid:
            self.run_process(vm, pid)
        return vm

    def run_process(self, vm, pid):
        vm["pid"] = pid
        vm["started"] = time.monotonic()
        vm["api_socket"] = os.path.join(self.dirname, vm["name"] + ".api")
        vm["console_socket"] = os.path.join(self.dirname, vm["name"] + ".console")
        if not vm["console"]:
            vm["console"] = Console(vm["console_socket"], vm["name"], self.dirname)

    def end_process(self, vm):
        vm["pid"] = vm["api_socket"] = vm["console_socket"] = None
        if vm["console"]:
            vm["console"].sock.close()
            vm["console"] = None

    def move(self, vm, to, reason):
        vm["history"] = (vm["history"] + [{
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "vm": vm["name"],
            "from": vm["state"], "to": to, "reason": reason}])[-20:]
        vm["state"] = to

    @staticmethod
    def summary(vm):
        return {k: vm[k] for k in ("name", "uuid", "state", "pid", "vcpus", "memory_mib",
                                   "autostart")}

    def info(self, vm):
        out = self.summary(vm)
        for k in ("definition", "api_socket", "console_socket", "log", "exit_reason",
                  "snapshot", "history"):
            out[k] = vm[k]
        return out

    def vm(self, name):
        if name not in self.vms:
            raise ApiError(404, "not_found", "no VM named %s" % name)
        return self.vms[name]

    @staticmethod
    def need(vm, action, states):
        if vm["state"] not in states:
            raise ApiError(409, "wrong_state", "wrong state: %s needs a %s VM; %s is %s" % (
                action, " or ".join(states), vm["name"], vm["state"]), state=vm["state"])

    def define(self, body):
        try:
            d = json.loads(body)
        except ValueError:
            raise ApiError(400, "bad_request", "the body is not JSON")
        if not isinstance(d, dict):
            raise ApiError(400, "invalid_definition", "definition: must be a JSON object",
                           field="definition")
        for k in d:
            if k not in DEFINITION_FIELDS:
                raise ApiError(400, "invalid_definition", "%s: unknown field" % k, field=k)
        for i, disk in enumerate(d.get("disks", [])):
            if not os.path.exists(disk.get("path", "")):
                f = "disks[%d].path" % i
                raise ApiError(400, "invalid_definition", "%s: %s: No such file or directory"
                               % (f, disk.get("path")), field=f)
        name = d.get("name")
        if not isinstance(name, str):
            raise ApiError(400, "invalid_definition", "name: required", field="name")
        if name in self.vms:
            raise ApiError(409, "exists", "name: a VM named %s exists" % name, field="name")
        d.setdefault("vcpus", 1)
        d.setdefault("memory_mib", 512)
        vm = self.add(name, "defined", definition=d)
        return 201, self.info(vm)

    def action(self, vm, what, body):
        if what == "start":
            self.need(vm, "start", ["defined", "shutdown", "crashed", "saved"])
            self.next_pid += 1
            self.run_process(vm, self.next_pid)
            vm["snapshot"] = None
            self.move(vm, "running", "restored" if vm["state"] == "saved" else "started")
        elif what == "pause":
            self.need(vm, "pause", ["running"])
            self.move(vm, "paused", "pause requested")
        elif what == "resume":
            self.need(vm, "resume", ["paused"])
            self.move(vm, "running", "resume requested")
        elif what == "save":
            self.need(vm, "save", ["running", "paused"])
            time.sleep(0.6)   # long enough for a few frames of the CLI's spinner
            self.end_process(vm)
            vm["snapshot"] = os.path.join(self.dirname, vm["name"] + ".snapshot")
            self.move(vm, "saved", "saved")
        elif what == "destroy":
            self.need(vm, "destroy", ["running", "paused"])
            self.end_process(vm)
            self.move(vm, "shutdown", "destroyed")
        elif what == "shutdown":
            self.need(vm, "shutdown", ["running"])
            # The guest powers off a little later, as a real one would.
            def later():
                time.sleep(0.5)
                with self.lock:
                    if vm["state"] == "running":
                        self.end_process(vm)
                        vm["exit_reason"] = "guest powered off"
                        self.move(vm, "shutdown", "guest powered off")
            threading.Thread(target=later, daemon=True).start()
        else:
            raise ApiError(404, "not_found", "no such route")
        return 200, self.info(vm)

    def stats(self, vm):
        now = time.monotonic()
        up = now - vm["started"] if vm["pid"] else 0
        run = up if vm["state"] == "running" else 0
        return {"name": vm["name"], "state": vm["state"], "vcpu_seconds": 0.25 * run,
                "rss_bytes": 512 << 20, "balloon_mib": 0,
                "disk_read_bytes": int(run * (1 << 20)), "disk_write_bytes": 0,
                "disk_read_ops": int(run * 256), "disk_write_ops": 0,
                "net_rx_bytes": int(run * 2048), "net_tx_bytes": 0, "uptime_s": 3600 + up}

    def host(self):
        counts = {}
        for vm in self.vms.values():
            counts[vm["state"]] = counts.get(vm["state"], 0) + 1
        return {"vms": counts, "memory_total_mib": 8000, "memory_available_mib": 6000,
                "memory_committed_mib": 1024, "vcpus_committed": 4, "host_cpus": 2,
                "cgroups": False, "sandbox": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    nimbusd: Daemon = None

    def log_message(self, fmt, *args):   # no client address on a unix socket
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with open(self.nimbusd.record, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "body": body}) + "\n")
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query)
        try:
            if parts and parts[0] == "vm":   # a VM process's own API, for --api
                self.reply(200, {"state": "paused" if parts[1:] == ["pause"] else "running"})
                return
            if self.command == "GET" and parts == ["host"]:
                with self.nimbusd.lock:
                    self.reply(200, self.nimbusd.host())
                return
            if parts == ["vms"] and self.command == "GET":
                with self.nimbusd.lock:
                    self.reply(200, {"vms": [Daemon.summary(v) for v in self.nimbusd.vms.values()]})
                return
            if parts == ["vms"] and self.command == "POST":
                with self.nimbusd.lock:
                    self.reply(*self.nimbusd.define(body))
                return
            if len(parts) == 2 and parts[0] == "vms":
                with self.nimbusd.lock:
                    vm = self.nimbusd.vm(parts[1])
                    if self.command == "GET":
                        self.reply(200, self.nimbusd.info(vm))
                    elif self.command == "DELETE":
                        Daemon.need(vm, "undefine", ["defined", "shutdown", "crashed", "saved"])
                        del self.nimbusd.vms[vm["name"]]
                        self.reply(200, {"name": vm["name"], "state": "undefined"})
                    else:
                        raise ApiError(404, "not_found", "no such route")
                return
            if len(parts) == 3 and parts[0] == "vms" and self.command == "GET":
                with self.nimbusd.lock:
                    vm = self.nimbusd.vm(parts[1])
                    if parts[2] == "stats":
                        self.reply(200, self.nimbusd.stats(vm))
                        return
                if parts[2] == "log":
                    self.log(query)
                    return
            if len(parts) == 3 and parts[0] == "vms" and self.command == "PUT":
                with self.nimbusd.lock:
                    vm = self.nimbusd.vm(parts[1])
                    self.reply(*self.nimbusd.action(vm, parts[2], body))
                return
            raise ApiError(404, "not_found", "no such route")
        except ApiError as e:
            self.reply(e.status, e.body)

    def log(self, query):
        lines = LOG_LINES
        if "lines" in query:
            n = int(query["lines"][0])
            lines = lines[-n:] if n else []
        if "follow" not in query:
            self.reply(200, "".join(l + "\n" for l in lines).encode(), "text/plain")
            return
        # Following: what there is, then two more lines as they "come", then
        # the end (a real nimbusd streams until the client goes).
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.chunk("".join(l + "\n" for l in lines).encode())
        for i in (1, 2):
            time.sleep(0.1)
            self.chunk(b"followed %d\n" % i)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--record", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    Handler.nimbusd = Daemon(a.dir, a.record)
    if os.path.exists(a.socket):
        os.unlink(a.socket)
    with Server(a.socket, Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
