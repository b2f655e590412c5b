"""The server's HTTP connections: how many may be open, how long they may idle, how they end.

    runner = Runner(app, max_connections=900, keepalive_timeout=15, shutdown_timeout=30)
    ...
    close_idle(runner)       # draining: connections waiting for their next request are closed

aiohttp runs the HTTP protocol; netfab's connections (`Connection`) change four things in it:
- aiohttp's own answers to a request it cannot parse (a header line over 8 KB, too many
  headers, garbage) are {"error": ...} JSON like every other error, and log no traceback;
- beyond `max_connections` a new connection is answered 503 with Retry-After and closed at
  once, so that slow or stuck clients cannot exhaust the process's file descriptors;
- a connection that has not sent a whole request header within `keepalive_timeout` seconds of
  opening or of its last answer is closed: aiohttp's keep-alive timer runs from the moment a
  connection opens, so the one knob bounds idle keep-alive connections and clients that send
  their headers a byte at a time alike;
- `close_idle` closes the connections that wait for a next request, for the drain.
"""
import logging

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


def json_response(payload, status=200, headers=None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json",
                        headers=headers)


def json_error(status: int, message: str, headers=None) -> web.Response:
    return json_response({"error": message}, status, headers)


def _over_capacity(limit: int) -> bytes:
    """A whole HTTP response, written on a connection the server will not read from."""
    body = orjson.dumps({"error": f"too many open connections (limit {limit}, --max-connections); "
                                  f"retry after {RETRY_AFTER_S} s, or reuse fewer connections"})
    return (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER_S}\r\nConnection: close\r\n\r\n"
            ).encode() + body


class Connection(RequestHandler):
    __slots__ = ()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        server = self._manager
        if len(server.connections) > server.max_connections:
            transport.write(server.over_capacity)
            self.force_close()  # the transport sends what it holds, then closes

    def close_if_idle(self) -> None:
        """Close the connection if it waits for a next request (none being read or answered)."""
        if self._waiter is not None and not self._waiter.done():
            self.force_close()

    def handle_error(self, request, status=500, exc=None, message=None) -> web.StreamResponse:
        """aiohttp's answer to a request it could not parse or a handler that failed, as JSON."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)  # a bug: logged with its traceback
        log.debug("%d for a request from %s: %s", status, request.remote, message or exc)
        if request.writer.output_size > 0:  # part of an answer went out: nothing more can be sent
            raise ConnectionError("cannot answer an error after a response has started")
        reason = f"{message or exc or 'malformed request'}".strip().split("\n")[0][:200]
        response = json_error(status, f"the request could not be read as HTTP: {reason}")
        response.force_close()  # the rest of what the client sent cannot be trusted to be a request
        return response


class _Server(web.Server):
    def __call__(self) -> Connection:
        return Connection(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """aiohttp's AppRunner, its connections `Connection`s capped at `max_connections`."""

    def __init__(self, app: web.Application, max_connections: int, **kwargs):
        super().__init__(app, **kwargs)
        self._max_connections = max_connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside the Application; this is the one place to choose the
        # class of its connections without copying how it is built.
        server.__class__ = _Server
        server.max_connections = self._max_connections
        server.over_capacity = _over_capacity(self._max_connections)
        return server


def close_idle(runner: web.BaseRunner) -> int:
    """Close every connection waiting for a next request; how many stay open (busy ones)."""
    connections = runner.server.connections if runner.server else []
    for connection in connections:
        connection.close_if_idle()
    return sum(1 for connection in connections if connection.transport is not None)
