"""A black-holed network for tests: loaded into a kernel via PYTHONPATH when LABKIT_NETGUARD_LOG is set.

Name lookups of non-local hosts "succeed" with a documentation address (TEST-NET-3), and connecting to it
blocks like a firewall that drops packets: it waits for the socket's timeout (30 s when none is set) and then
fails. No packet is ever sent: the real connect is never called for such addresses. Every attempt is
appended to the log file, so a test can see who tried to reach the internet and how long it waited.
"""
import json
import os
import socket
import time
import traceback

_LOG = os.environ.get("LABKIT_NETGUARD_LOG")
_FAKE = "203.0.113.1"
_LOCAL = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")

if _LOG:
    _real_getaddrinfo = socket.getaddrinfo
    _real_connect = socket.socket.connect
    _real_connect_ex = socket.socket.connect_ex

    def _log(kind, target, waited):
        stack = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in traceback.extract_stack()[:-2]][-6:]
        with open(_LOG, "a") as fh:
            fh.write(json.dumps({"kind": kind, "target": str(target), "waited_s": round(waited, 2), "stack": stack}) + "\n")

    def getaddrinfo(host, port, *args, **kwargs):
        h = host.decode() if isinstance(host, bytes) else (host or "")
        if h in _LOCAL or h.startswith("127.") or h.startswith("/"):
            return _real_getaddrinfo(host, port, *args, **kwargs)
        _log("dns", f"{h}:{port}", 0.0)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (_FAKE, int(port or 0)))]

    def _blackhole(self, address):
        timeout = self.gettimeout()
        wait = 30.0 if timeout is None else min(timeout, 30.0)
        time.sleep(wait)
        _log("connect", address, wait)
        raise socket.timeout(f"netguard: {address} dropped (black hole)")

    def connect(self, address):
        if isinstance(address, tuple) and address and address[0] == _FAKE:
            return _blackhole(self, address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        if isinstance(address, tuple) and address and address[0] == _FAKE:
            try:
                _blackhole(self, address)
            except OSError:
                return 110  # ETIMEDOUT
        return _real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
