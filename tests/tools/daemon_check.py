#!/usr/bin/env python3
"""Checks of nimbusd for tests/guest/daemon.sh, over its unix socket.

  daemon_check.py stress SOCK VM...
      20 clients at once, each sending 8 conflicting requests (start,
      destroy, pause, resume, GET) about the VMs in random order. Every
      request must get an answer within 60 s, either a success or a typed
      error (409 wrong_state, ...), never a 5xx but for a VM process that
      failed to start; afterwards each VM must be consistent: a pid exactly
      when it is running or paused, that process alive, and the VM's own
      API saying the same state.
  daemon_check.py metrics SOCK
      GET /metrics parsed with the Prometheus client library's text parser
      (Debian's python3-prometheus-client); its figures must match GET
      /vms: nimbus_host_vms by state, one nimbus_vm_state per VM with its
      state, per-VM series for the VMs that have a process.
Prints one line and exits 0, or prints what is wrong and exits 1."""
import http.client
import json
import os
import random
import socket
import sys
import threading


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def call(sock, method, path, timeout=60):
    c = UnixHTTPConnection(sock, timeout)
    try:
        c.request(method, path, body=b"" if method != "GET" else None)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def stress(sock, vms):
    problems = []
    lock = threading.Lock()
    ops = ["start", "destroy", "pause", "resume", None]

    def client(seed):
        rnd = random.Random(seed)
        for _ in range(8):
            vm = rnd.choice(vms)
            op = rnd.choice(ops)
            method, path = ("GET", f"/vms/{vm}") if op is None else ("PUT", f"/vms/{vm}/{op}")
            try:
                status, body = call(sock, method, path)
            except Exception as e:  # a timeout is a hang
                with lock:
                    problems.append(f"{method} {path}: no answer: {e}")
                continue
            if status >= 500 or status not in (200, 409):
                with lock:
                    problems.append(f"{method} {path}: HTTP {status}: {body.strip()}")
            elif status == 409 and json.loads(body).get("code") != "wrong_state":
                with lock:
                    problems.append(f"{method} {path}: 409 but {body.strip()}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        if t.is_alive():
            problems.append("a client still waits after 120 s")
    for vm in vms:
        status, body = call(sock, "GET", f"/vms/{vm}")
        info = json.loads(body)
        state, pid = info["state"], info["pid"]
        live = state in ("running", "paused")
        if live != (pid is not None):
            problems.append(f"{vm}: state {state} with pid {pid}")
            continue
        if not live:
            continue
        if not os.path.exists(f"/proc/{pid}"):
            problems.append(f"{vm}: {state}, but its process {pid} is gone")
            continue
        c = UnixHTTPConnection(info["api_socket"], 10)
        c.request("GET", "/vm")
        own = json.loads(c.getresponse().read())
        c.close()
        if own.get("state") != state:
            problems.append(f"{vm}: nimbusd says {state}, the VM {own.get('state')}")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"stress: 160 requests from 20 clients on {len(vms)} VMs, all answered, states consistent")
    return 0


def metrics(sock):
    from prometheus_client.parser import text_string_to_metric_families

    status, text = call(sock, "GET", "/metrics")
    if status != 200:
        print(f"GET /metrics: HTTP {status}")
        return 1
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    _, body = call(sock, "GET", "/vms")
    vms = json.loads(body)["vms"]
    problems = []
    by_state = {s.labels["state"]: s.value for s in fams["nimbus_host_vms"].samples}
    for state in set(v["state"] for v in vms) | set(by_state):
        want = sum(1 for v in vms if v["state"] == state)
        if by_state.get(state, 0) != want:
            problems.append(f"nimbus_host_vms{{state={state}}} is {by_state.get(state)}, want {want}")
    states = {s.labels["vm"]: s.labels["state"] for s in fams["nimbus_vm_state"].samples}
    for v in vms:
        if states.get(v["name"]) != v["state"]:
            problems.append(f"nimbus_vm_state for {v['name']}: {states.get(v['name'])}, not {v['state']}")
    live = {v["name"] for v in vms if v["pid"] is not None}
    # The parser names counters without their _total suffix.
    for name in ("nimbus_vm_rss_bytes", "nimbus_vm_cpu_seconds", "nimbus_vm_vcpu_seconds"):
        have = {s.labels["vm"]: s.value for s in fams[name].samples if s.name.startswith(name)}
        if set(have) != live:
            problems.append(f"{name} for {sorted(have)}, want {sorted(live)}")
        if name == "nimbus_vm_rss_bytes" and any(x < 1 << 20 for x in have.values()):
            problems.append(f"{name}: {have}")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"metrics: {len(fams)} families parsed, {len(vms)} VMs, {len(live)} with a process")
    return 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "stress":
        return stress(sys.argv[2], sys.argv[3:])
    if len(sys.argv) == 3 and sys.argv[1] == "metrics":
        return metrics(sys.argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
