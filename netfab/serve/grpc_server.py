"""`fab serve --grpc-port=8500`: the gRPC APIs on a second port, in the REST server's process and event loop.

    grpc_server = await start_grpc(prediction_server)   # in PredictionServer.run, after HTTP listens
    ...
    await grpc_server.stop(drain_seconds)                # on SIGTERM, after the HTTP listener: calls
                                                         # in flight are answered, new ones refused

Two services on the port: TensorFlow Serving's PredictionService (netfab.serve.grpc_tf_serving)
and the Open Inference Protocol v2's GRPCInferenceService (netfab.serve.grpc_inference). grpc.aio
runs them on the asyncio loop that runs aiohttp, so both protocols share one model, batcher,
cache, readiness and metrics (netfab.serve.grpc_calls).
"""
import asyncio
import logging

import grpc

from netfab.errors import NetfabError

log = logging.getLogger(__name__)


def _services():
    # Importing them imports TensorFlow (their protos use TensorFlow's): seconds, so in a thread.
    from netfab.serve.grpc_inference import InferenceService
    from netfab.serve.grpc_tf_serving import PredictionService

    return PredictionService, InferenceService


async def start_grpc(server) -> grpc.aio.Server:
    """Listen on server.settings.grpc_port (same --host) with both services; a NetfabError if it cannot."""
    settings = server.settings
    services = await asyncio.get_running_loop().run_in_executor(None, _services)
    grpc_server = grpc.aio.server(options=[
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
    except RuntimeError as error:  # gRPC's only word for a port in use or an address not of this machine
        raise NetfabError(f"cannot listen for gRPC on {settings.host}:{settings.grpc_port}: {error}; another "
                          f"process may listen there (choose another --grpc-port), or --host is not an "
                          f"address of this machine") from None
    await grpc_server.start()
    log.info("listening for gRPC on %s:%d (TensorFlow Serving's PredictionService, OIP v2's "
             "GRPCInferenceService)", settings.host, settings.grpc_port)
    return grpc_server
