# Runs Autobahn's `wstest` with every listening socket bound to 127.0.0.1.
#
# wstest binds its fuzzing server to all interfaces and has no flag to change
# that; this workplace allows loopback traffic only, so the reactor's
# listenTCP is wrapped before wstest starts. Python 2.7 (autobahntestsuite).
import sys

from twisted.internet import reactor

_listen_tcp = reactor.listenTCP


def _listen_tcp_loopback(port, factory, backlog=50, interface=''):
    return _listen_tcp(port, factory, backlog, interface or '127.0.0.1')


reactor.listenTCP = _listen_tcp_loopback

from autobahntestsuite import wstest  # noqa: E402  (after the patch on purpose)

sys.argv[0] = 'wstest'
sys.exit(wstest.run())
