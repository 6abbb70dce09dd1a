# sitecustomize for the ansible test: any name resolution or connection to a host that is not
# loopback is refused (and noted in $KOALA_GUARD_LOG), so no amazon.aws module can reach AWS.
import os
import socket

_LOG = os.environ.get('KOALA_GUARD_LOG')
_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = socket.create_connection


def _loopback(host):
    h = host.decode() if isinstance(host, bytes) else str(host)
    return h in ('localhost', '::1') or h.startswith('127.')


def _refuse(host):
    if _LOG:
        with open(_LOG, 'a') as f:
            f.write(f'{host}\n')
    raise OSError(f'koala test guard: refusing non-loopback host {host!r}')


def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _loopback(host):
        _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def create_connection(address, *args, **kwargs):
    if not _loopback(address[0]):
        _refuse(address[0])
    return _real_create_connection(address, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
socket.create_connection = create_connection
