"""Resolver shim for Python tools (the Azure CLI) run against the sandbox.

Put this directory on PYTHONPATH and set SANDBOX_HOSTS to a JSON object {"host": port} (the
`hostOverrides` of endpoints.json); every lookup of those names then connects to 127.0.0.1 on the
given port, whatever port the URL named, so unported Azure URLs reach the sandbox.
"""

import json
import os
import socket

_hosts = {h.lower(): p for h, p in json.loads(os.environ.get("SANDBOX_HOSTS", "{}")).items()}
_real_getaddrinfo = socket.getaddrinfo


def _sandbox_getaddrinfo(host, port, *args, **kwargs):
    if isinstance(host, str) and host.lower() in _hosts:
        return _real_getaddrinfo("127.0.0.1", _hosts[host.lower()], *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _sandbox_getaddrinfo
