"""What every gRPC call of `fab serve --grpc-port` shares with the REST API: the model, the scoring path, metrics.

    class Service(SomeServicer):
        def __init__(self, server): self.server = server     # the PredictionServer
        @answered
        async def Predict(self, request, context):
            model = served_model(self.server, request.model_spec.name)   # or a Refusal
            scores = await score(self.server, model, columns, rows, started)

A call goes through the PredictionServer's own path (PredictionServer.score: cache, lone small
requests, the batcher, the queue limit, --timeout), counted in its requests in flight (what the
drain and the lone-request check count) and in its metrics. A refusal is the call's gRPC
status, with a message that says what to do, as the REST API's 4xx/5xx say it;
`netfab_requests_total{code}` counts each call under the HTTP status of the same meaning, so
that one error rate covers every protocol.
"""
import functools
import time

import grpc
import orjson

from netfab.serve.inputs import InputError

# the HTTP status a gRPC status is counted under in netfab_requests_total{code}
HTTP_STATUS = {grpc.StatusCode.OK: 200, grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504}


class Refusal(Exception):
    """A call answered with a gRPC error status instead of a response."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def answered(method):
    """A servicer method counted as a request (in flight, metrics); a Refusal or InputError becomes its status."""
    @functools.wraps(method)
    async def call(self, request, context):
        server = self.server
        try:
            with server.handling():  # what the drain and the lone-request check count
                response = await method(self, request, context)
        except InputError as error:
            refusal = Refusal(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except Refusal as error:
            refusal = error
        else:
            server.metrics.count_response(200)
            return response
        server.metrics.count_response(HTTP_STATUS[refusal.code])
        await context.abort(refusal.code, refusal.message)  # raises: grpc answers with this status

    return call


def served_model(server, name: str):
    """The model a call names, or a Refusal: UNAVAILABLE while loading, NOT_FOUND for another name."""
    if server.batcher is None:
        raise Refusal(grpc.StatusCode.UNAVAILABLE, "not ready (loading the model); retry shortly")
    model = server.model
    if name != model.name:
        raise Refusal(grpc.StatusCode.NOT_FOUND, f"model {name!r} is not served here; this server serves "
                                                 f"{model.name!r}")
    return model


def refuse_version(model, label: str, number_given: bool) -> None:
    """NOT_FOUND when a call asks for a version other than the one served (a run id, so a label)."""
    if number_given or (label and label != model.version):
        raise Refusal(grpc.StatusCode.NOT_FOUND,
                      f"model {model.name!r} is served in version {model.version!r} only (a training run id); "
                      f"leave the version unset or ask for that version label")


async def score(server, model, columns: dict, rows: int, started: float):
    """The model's scores for checked columns, the REST API's way (PredictionServer.score: the cache,
    the batcher, the queue, the timeout, their metrics); its 503 or 504 as the gRPC status of the same meaning."""
    server.metrics.observe(server.metrics.decode_seconds, time.perf_counter() - started)
    scores, problem = await server.score(model, columns, rows, started)
    if problem is not None:
        code = grpc.StatusCode.DEADLINE_EXCEEDED if problem.status == 504 else grpc.StatusCode.UNAVAILABLE
        raise Refusal(code, orjson.loads(problem.body)["error"])
    server.metrics.predicted_rows.inc(rows)
    return scores


def answer_timed(server, started: float, encode_started: float) -> None:
    """Record a scored call's encoding time and whole time (the REST API's encode and request timers)."""
    now = time.perf_counter()
    server.metrics.observe(server.metrics.encode_seconds, now - encode_started)
    server.metrics.observe(server.metrics.request_seconds, now - started)
