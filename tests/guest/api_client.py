#!/usr/bin/env python3
"""A raw HTTP client for the per-VM API (`nimbus run --api PATH`) that
checks every reply against docs/openapi.json, for the tests.

  api_client.py SOCK METHOD PATH [BODY]
      prints the status on the first line and the reply body after it;
      exit 0 when the reply matches the document: a documented status of
      the operation (404/405 with an Error body for what it does not name),
      a JSON body with every field the documented schema requires (nested
      objects and arrays too); exit 3 (with why on stderr) when it does not,
      2 when the socket cannot be reached.
  api_client.py SOCK --routes
      exit 0 when GET /routes names exactly the document's operations.
"""
import http.client
import json
import os
import socket
import sys

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "openapi.json")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(self.unix_path)
        self.sock = s


def resolve(doc, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def check(doc, schema, value, where, problems):
    schema = resolve(doc, schema)
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                problems.append("%s: required field %r missing" % (where, name))
        for name, sub in schema.get("properties", {}).items():
            if name in value and value[name] is not None:
                check(doc, sub, value[name], where + "." + name, problems)
    elif isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            check(doc, schema["items"], v, "%s[%d]" % (where, i), problems)
    enum = schema.get("enum")
    if enum is not None and not isinstance(value, (dict, list)) and value not in enum:
        problems.append("%s: %r not in %r" % (where, value, enum))


def request(sock, method, path, body):
    c = UnixConnection(sock)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=body.encode() if body is not None else None, headers=headers)
    r = c.getresponse()
    return r.status, r.read().decode("utf-8", "replace")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    doc = json.load(open(DOC))
    sock = sys.argv[1]
    try:
        if sys.argv[2] == "--routes":
            status, text = request(sock, "GET", "/routes", None)
            served = {(r["method"].lower(), r["path"]) for r in json.loads(text)["routes"]}
            documented = {(m, p) for p, item in doc["paths"].items() for m in item}
            if served != documented:
                print("served, not documented: %s; documented, not served: %s"
                      % (sorted(served - documented), sorted(documented - served)), file=sys.stderr)
                return 3
            return 0
        method, path = sys.argv[2], sys.argv[3]
        body = sys.argv[4] if len(sys.argv) > 4 else None
        status, text = request(sock, method, path, body)
    except OSError as e:
        print("api_client: %s: %s" % (sock, e), file=sys.stderr)
        return 2
    print(status)
    print(text.rstrip("\n"))
    problems = []
    try:
        value = json.loads(text)
    except ValueError:
        problems.append("the reply is not JSON")
        value = None
    op = doc["paths"].get(path, {}).get(method.lower())
    if op is None:
        want = 404 if path not in doc["paths"] else 405
        if status != want:
            problems.append("%s %s is not documented: got %d, want %d" % (method, path, status, want))
        schema = {"$ref": "#/components/schemas/Error"}
    else:
        resp = op["responses"].get(str(status))
        if resp is None:
            problems.append("%s %s: status %d is not documented" % (method, path, status))
            schema = None
        else:
            content = resp.get("content", {})
            schema = (content.get("application/json") or {}).get("schema")
    if schema is not None and value is not None:
        check(doc, schema, value, "reply", problems)
    for p in problems:
        print("api_client: " + p, file=sys.stderr)
    return 3 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
