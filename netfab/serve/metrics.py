"""The server's metrics, kept by pyformance and shown in Prometheus text format or as JSON.

    metrics = ServingMetrics(queue_rows=lambda: batcher.queued_rows, model=lambda: current_model)
    with metrics.latency.time(): ...
    metrics.as_json()                             # GET /metrics?format=json
    prometheus_text(metrics.as_json())            # GET /metrics (Prometheus text format 0.0.4)
    prometheus_text(merge([worker_1, worker_2]))  # the same for fab serve --workers=2

Latencies are pyformance timers (exponentially decaying reservoirs: the percentiles describe
roughly the last five minutes). Names are prefixed netfab_ and in seconds, as Prometheus expects.
"""
from pyformance import MetricsRegistry
from pyformance.meters import CallbackGauge

QUANTILES = (0.5, 0.95, 0.99)

# name -> help text; the timers below are shown as Prometheus summaries with these quantiles.
TIMERS = {
    "request_seconds": "time from a predict request's first byte read to its response, in seconds",
    "decode_seconds": "JSON parsing and input checking of a predict request, in seconds",
    "encode_seconds": "JSON encoding of a predict response, in seconds",
    "batch_seconds": "one model call on a merged batch, in seconds",
}
HISTOGRAMS = {
    "batch_rows": "rows per model call",
    "batch_requests": "requests merged into one model call",
}
COUNTERS = {
    "predicted_rows": "rows scored (cache hits included)",
    "cache_hits": "rows answered from the prediction cache",
    "cache_misses": "rows looked up in the prediction cache and not found",
    "rejected_requests": "requests answered 503 because the queue was full",
    "timed_out_requests": "requests answered 504 after the per-request timeout",
    "lone_requests": "small requests alone on the server, scored in the event loop without batching",
}


class ServingMetrics:
    def __init__(self, queue_rows, model, models_in_memory):
        self.registry = MetricsRegistry()
        self._model = model
        self.requests = self.registry.meter("requests")
        self.status: dict[int, int] = {}
        for name in TIMERS:
            setattr(self, name, self.registry.timer(name))
        for name in HISTOGRAMS:
            setattr(self, name, self.registry.histogram(name))
        for name in COUNTERS:
            setattr(self, name, self.registry.counter(name))
        self.registry.gauge("queue_rows", CallbackGauge(queue_rows))
        self._models_in_memory = models_in_memory

    def count_response(self, status: int) -> None:
        self.requests.mark()
        self.status[status] = self.status.get(status, 0) + 1

    @staticmethod
    def observe(timer, seconds: float) -> None:
        """Record a duration measured elsewhere (pyformance's Timer only has a private method for it)."""
        timer._update(seconds)

    def record_batch(self, requests: int, rows: int, seconds: float) -> None:
        self.batch_requests.add(requests)
        self.batch_rows.add(rows)
        self.observe(self.batch_seconds, seconds)

    def cache_hit_rate(self) -> float:
        hits, misses = self.cache_hits.get_count(), self.cache_misses.get_count()
        return hits / (hits + misses) if hits + misses else 0.0

    # --- views --------------------------------------------------------------------------------
    def as_json(self, collect_garbage: bool = True) -> dict:
        """collect_garbage: count only models that are really still held (a full collection first)."""
        model = self._model()
        return {
            "model": model.describe() if model else None,
            "model_loaded_at": model.loaded_at if model else None,
            "requests": {"count": self.requests.get_count(), "rate_1m": self.requests.get_one_minute_rate(),
                         "by_status": {str(k): v for k, v in sorted(self.status.items())}},
            **{name: self._quantiles(getattr(self, name)) for name in TIMERS},
            **{name: self._quantiles(getattr(self, name)) for name in HISTOGRAMS},
            **{name: getattr(self, name).get_count() for name in COUNTERS},
            "cache_hit_rate": self.cache_hit_rate(),
            "queue_rows": self.registry.gauge("queue_rows").get_value(),
            "models_in_memory": self._models_in_memory(collect_garbage),
        }

    @staticmethod
    def _quantiles(metric) -> dict:
        snapshot = metric.get_snapshot()
        return {"count": metric.get_count(), "mean": metric.get_mean(),
                **{f"p{int(q * 100)}": snapshot.get_percentile(q) for q in QUANTILES}}


def merge(workers: list[dict]) -> dict:
    """The as_json() of several server processes (fab serve --workers) as one.

    Counts and rates add up. A quantile of several workers is the count-weighted mean of their
    quantiles: exact for one worker, an approximation otherwise (the workers' samples are not
    shared), good enough to watch a latency move. The model is the first worker's; during a swap
    the workers' versions may differ for a moment, and "versions" lists them all.
    """
    if len(workers) == 1:
        return workers[0]
    first = workers[0]
    merged = {"model": first["model"], "model_loaded_at": first["model_loaded_at"], "workers": len(workers),
              "versions": sorted({w["model"]["version"] for w in workers if w["model"]}),
              "requests_by_worker": [w["requests"]["count"] for w in workers]}  # how evenly the kernel spreads
    by_status: dict[str, int] = {}
    for worker in workers:
        for code, count in worker["requests"]["by_status"].items():
            by_status[code] = by_status.get(code, 0) + count
    merged["requests"] = {"count": sum(w["requests"]["count"] for w in workers),
                          "rate_1m": sum(w["requests"]["rate_1m"] for w in workers), "by_status": by_status}
    for name in {**TIMERS, **HISTOGRAMS}:
        count = sum(w[name]["count"] for w in workers)
        merged[name] = {"count": count, **{key: (sum(w[name][key] * w[name]["count"] for w in workers) / count
                                                 if count else 0.0)
                                           for key in first[name] if key != "count"}}
    for name in (*COUNTERS, "queue_rows", "models_in_memory"):
        merged[name] = sum(w[name] for w in workers)
    lookups = merged["cache_hits"] + merged["cache_misses"]
    merged["cache_hit_rate"] = merged["cache_hits"] / lookups if lookups else 0.0
    return merged


def prometheus_text(data: dict) -> str:
    """as_json() (or merge() of several) in Prometheus text format 0.0.4."""
    lines = []

    def metric(name, kind, help_text, samples):
        lines.append(f"# HELP netfab_{name} {help_text}")
        lines.append(f"# TYPE netfab_{name} {kind}")
        lines.extend(f"netfab_{name}{labels} {float(value):.9g}" for labels, value in samples)

    metric("requests_total", "counter",
           "responses to the API by HTTP status code (a gRPC call under the status of the same meaning)",
           [(f'{{code="{code}"}}', count) for code, count in sorted(data["requests"]["by_status"].items())]
           or [("", 0)])
    metric("requests_per_second", "gauge", "request rate over the last minute", [("", data["requests"]["rate_1m"])])
    for name, help_text in {**TIMERS, **HISTOGRAMS}.items():
        summary = data[name]
        metric(name, "summary", help_text,
               [(f'{{quantile="{q}"}}', summary[f"p{int(q * 100)}"]) for q in QUANTILES] +
               [("_sum", summary["mean"] * summary["count"]), ("_count", summary["count"])])
    for name, help_text in COUNTERS.items():
        metric(f"{name}_total", "counter", help_text, [("", data[name])])
    metric("cache_hit_rate", "gauge", "share of cache lookups answered from the cache", [("", data["cache_hit_rate"])])
    metric("queue_rows", "gauge", "rows waiting for the model", [("", data["queue_rows"])])
    metric("models_in_memory", "gauge", "loaded models not yet garbage collected (1 between swaps, per worker)",
           [("", data["models_in_memory"])])
    metric("workers", "gauge", "server processes answering on this port (fab serve --workers)",
           [("", data.get("workers", 1))])
    if data["model"]:
        versions = data.get("versions", [data["model"]["version"]])
        metric("model_info", "gauge", "the model being served (value 1; name and version as labels)",
               [(f'{{name="{data["model"]["name"]}",version="{version}"}}', 1) for version in versions])
        metric("model_loaded_timestamp_seconds", "gauge", "when the served model was loaded",
               [("", data["model_loaded_at"])])
    return "\n".join(lines) + "\n"
