"""`fab serve --grpc-port=8500`: the gRPC APIs on a second port, in the REST server's process and event loop.

    grpc_server = await start_grpc(prediction_server)   # in PredictionServer.run, after HTTP listens
    ...
    await stop_grpc(grpc_server, drain_seconds, 1.0)     # on SIGTERM, after the HTTP listener: calls
                                                         # taken are answered, then new ones refused

Two services on the port: TensorFlow Serving's PredictionService (netfab.serve.grpc_tf_serving)
and the Open Inference Protocol v2's GRPCInferenceService (netfab.serve.grpc_inference). grpc.aio
runs them on the asyncio loop that runs aiohttp, so both protocols share one model, batcher,
cache, readiness and metrics (netfab.serve.grpc_calls).
"""
import asyncio
import dataclasses
import logging
import time

import grpc

from netfab.errors import NetfabError

log = logging.getLogger(__name__)

QUIET_S = 0.5  # draining: gRPC stops once it has taken no call for this long (see stop_grpc)


class CallClock(grpc.aio.ServerInterceptor):
    """When the server last took a call from gRPC's core (before its message is read)."""

    def __init__(self):
        self.last_taken = time.monotonic()

    async def intercept_service(self, continuation, handler_call_details):
        self.last_taken = time.monotonic()
        return await continuation(handler_call_details)


@dataclasses.dataclass
class GrpcServer:
    server: grpc.aio.Server
    clock: CallClock


def _services():
    # Importing them imports TensorFlow (their protos use TensorFlow's): seconds, so in a thread.
    from netfab.serve.grpc_inference import InferenceService
    from netfab.serve.grpc_tf_serving import PredictionService

    return PredictionService, InferenceService


async def start_grpc(server) -> GrpcServer:
    """Listen on server.settings.grpc_port (same --host) with both services; a NetfabError if it cannot."""
    settings = server.settings
    services = await asyncio.get_running_loop().run_in_executor(None, _services)
    clock = CallClock()
    grpc_server = grpc.aio.server(interceptors=[clock], options=[
        # a request as large as the REST API takes; gRPC answers a larger one RESOURCE_EXHAUSTED
        ("grpc.max_receive_message_length", server.max_body_bytes),
        ("grpc.max_send_message_length", server.max_body_bytes),
        # gRPC shares a port with any process by default (SO_REUSEPORT): a second server on the
        # port would silently take half the connections. Only --workers should share it.
        ("grpc.so_reuseport", 1 if server.group is not None else 0),
    ])
    for service in services:
        service(server).add_to(grpc_server)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host  # an IPv6 address
    try:
        grpc_server.add_insecure_port(f"{host}:{settings.grpc_port}")
    except RuntimeError:  # gRPC says only "Failed to bind", not why
        raise NetfabError(f"cannot listen for gRPC on {settings.host}:{settings.grpc_port}: another process "
                          f"listens there (stop it or choose another --grpc-port), or --host is not an "
                          f"address of this machine") from None
    await grpc_server.start()
    log.info("listening for gRPC on %s:%d (TensorFlow Serving's PredictionService, OIP v2's "
             "GRPCInferenceService)", settings.host, settings.grpc_port)
    return GrpcServer(grpc_server, clock)


async def stop_grpc(grpc_server: GrpcServer, drain_timeout_s: float, accept_s: float) -> None:
    """Take calls for `accept_s` at least and until none came for QUIET_S (at most half the drain
    timeout), then refuse new calls and answer those in flight within the rest of the drain timeout.

    grpc.aio takes arrived calls from gRPC's core one event loop turn at a time, and the core's
    shutdown cancels every call it has not handed over: on a busy loop, calls that arrived well
    before SIGTERM. So the server stops once the loop has caught up. A call that arrives just as
    it stops can still be cancelled: the race every HTTP/2 server has when it goes away.
    """
    started = time.monotonic()
    while (now := time.monotonic()) - started < drain_timeout_s / 2:
        if now - started >= accept_s and now - grpc_server.clock.last_taken >= QUIET_S:
            break
        await asyncio.sleep(0.05)
    await grpc_server.server.stop(max(drain_timeout_s - (time.monotonic() - started), 0))
