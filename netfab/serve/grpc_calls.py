"""What every gRPC call of `fab serve --grpc-port` shares with the REST API: the model, the scoring path, metrics.

    class Service(SomeServicer):
        def __init__(self, server): self.server = server     # the PredictionServer
        @answered
        async def Predict(self, request, context):
            model = served_model(self.server, request.model_spec.name)   # or Refused
            scores = await score(self.server, model, columns, rows, started)

A call goes through the PredictionServer's own path (PredictionServer.score: cache, lone small
requests, the batcher, the queue limit, --timeout), counted in its requests in flight (what the
drain and the lone-request check count) and in its metrics. A refusal (netfab.serve.refused) is the
call's gRPC status, with the message the REST API's 4xx/5xx give;
`netfab_requests_total{code}` counts each call under the HTTP status of the same meaning, so
that one error rate covers every protocol.
"""
import functools
import time

import grpc

from netfab.serve.inputs import InputError
from netfab.serve.refused import Refused

# the gRPC status of each HTTP status a refusal carries (netfab.serve.refused)
GRPC_CODE = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
             503: grpc.StatusCode.UNAVAILABLE, 504: grpc.StatusCode.DEADLINE_EXCEEDED}


def answered(method):
    """A servicer method counted as a request (in flight, metrics); an InputError or a Refused
    becomes its gRPC status, counted in netfab_requests_total under the HTTP status of that meaning."""
    @functools.wraps(method)
    async def call(self, request, context):
        server = self.server
        try:
            with server.handling():  # what the drain and the lone-request check count
                response = await method(self, request, context)
        except InputError as error:
            refused = Refused(400, str(error))
        except Refused as error:
            refused = error
        else:
            server.metrics.count_response(200)
            return response
        server.metrics.count_response(refused.status)
        await context.abort(GRPC_CODE[refused.status], refused.message)  # raises: grpc answers with this status

    return call


def served_model(server, name: str, version: str = ""):
    """The model a call names, at the version it names ("": any); Refused (UNAVAILABLE while
    loading, NOT_FOUND otherwise) if it is not served. Versions are run ids: a number never matches."""
    return server.model_named(name, version or None)


async def score(server, model, columns: dict, rows: int, started: float):
    """The model's scores for checked columns, the REST API's way (PredictionServer.score: the cache,
    the batcher, the queue, the timeout, their metrics)."""
    server.metrics.observe(server.metrics.decode_seconds, time.perf_counter() - started)
    return await server.score(model, columns, rows, started)
