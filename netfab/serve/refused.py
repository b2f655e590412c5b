"""A request the server turns down for its own reasons, in words every protocol can answer.

    raise Refused(503, "overloaded: ...; retry after 1 s", retry_after_s=1)

Not ready, overloaded, too slow, or naming a model or version this server does not serve: the
same conditions over REST, OIP v2 and gRPC. `status` is the HTTP status of that meaning; the
HTTP protocols answer it with {"error": message} (netfab.serve.app's middleware), gRPC with the
status code of the same meaning (netfab.serve.grpc_calls), and `netfab_requests_total{code}`
counts it under `status` whichever way it came.
"""


class Refused(Exception):
    def __init__(self, status: int, message: str, retry_after_s: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after_s = status, message, retry_after_s
