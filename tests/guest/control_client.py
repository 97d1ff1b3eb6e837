#!/usr/bin/env python3
"""A client for `nimbus run --control PATH`, for the tests.

  control_client.py PATH JSON...   sends each JSON argument as one line and
                                   prints one reply line for each
  control_client.py PATH -         sends stdin as it is (any bytes), closes
                                   its writing side and prints every reply
                                   until the VM closes the connection
Exit status 2 when the socket cannot be reached or a reply is missing.
"""
import socket
import sys


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        print("control_client: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 2
    f = s.makefile("rb")
    if sys.argv[2] == "-":
        s.sendall(sys.stdin.buffer.read())
        s.shutdown(socket.SHUT_WR)
        for line in f:
            sys.stdout.write(line.decode("utf-8", "replace"))
        return 0
    for req in sys.argv[2:]:
        s.sendall(req.encode() + b"\n")
        line = f.readline()
        if not line:
            print("control_client: no reply to %s" % req, file=sys.stderr)
            return 2
        sys.stdout.write(line.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
