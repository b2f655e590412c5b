"""The server's metrics, kept by pyformance and shown in Prometheus text format or as JSON.

    metrics = ServingMetrics(queue_rows=lambda: batcher.queued_rows, model=lambda: current_model)
    with metrics.latency.time(): ...
    metrics.prometheus_text()     # GET /metrics            (Prometheus text format 0.0.4)
    metrics.as_json()             # GET /metrics?format=json

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
        self.registry.gauge("models_in_memory", CallbackGauge(models_in_memory))

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
    def as_json(self) -> dict:
        model = self._model()
        return {
            "model": model.describe() if model else None,
            "requests": {"count": self.requests.get_count(), "rate_1m": self.requests.get_one_minute_rate(),
                         "by_status": {str(k): v for k, v in sorted(self.status.items())}},
            **{name: self._quantiles(getattr(self, name)) for name in TIMERS},
            **{name: self._quantiles(getattr(self, name)) for name in HISTOGRAMS},
            **{name: getattr(self, name).get_count() for name in COUNTERS},
            "cache_hit_rate": self.cache_hit_rate(),
            "queue_rows": self.registry.gauge("queue_rows").get_value(),
            "models_in_memory": self.registry.gauge("models_in_memory").get_value(),
        }

    @staticmethod
    def _quantiles(metric) -> dict:
        snapshot = metric.get_snapshot()
        return {"count": metric.get_count(), "mean": metric.get_mean(),
                **{f"p{int(q * 100)}": snapshot.get_percentile(q) for q in QUANTILES}}

    def prometheus_text(self) -> str:
        lines = []

        def metric(name, kind, help_text, samples):
            lines.append(f"# HELP netfab_{name} {help_text}")
            lines.append(f"# TYPE netfab_{name} {kind}")
            lines.extend(f"netfab_{name}{labels} {float(value):.9g}" for labels, value in samples)

        metric("requests_total", "counter", "HTTP responses to the API, by status code",
               [(f'{{code="{code}"}}', count) for code, count in sorted(self.status.items())] or [("", 0)])
        metric("requests_per_second", "gauge", "request rate over the last minute",
               [("", self.requests.get_one_minute_rate())])
        for name, help_text in {**TIMERS, **HISTOGRAMS}.items():
            m = getattr(self, name)
            snapshot = m.get_snapshot()
            samples = [(f'{{quantile="{q}"}}', snapshot.get_percentile(q)) for q in QUANTILES]
            total = m.get_sum() if hasattr(m, "get_sum") else m.get_mean() * m.get_count()
            samples += [("_sum", total), ("_count", m.get_count())]
            lines.append(f"# HELP netfab_{name} {help_text}")
            lines.append(f"# TYPE netfab_{name} summary")
            lines.extend(f"netfab_{name}{suffix if suffix.startswith('_') else ''}"
                         f"{suffix if suffix.startswith('{') else ''} {float(v):.9g}" for suffix, v in samples)
        for name, help_text in COUNTERS.items():
            metric(f"{name}_total", "counter", help_text, [("", getattr(self, name).get_count())])
        metric("cache_hit_rate", "gauge", "share of cache lookups answered from the cache",
               [("", self.cache_hit_rate())])
        metric("queue_rows", "gauge", "rows waiting for the model",
               [("", self.registry.gauge("queue_rows").get_value())])
        metric("models_in_memory", "gauge", "loaded models not yet garbage collected (1 between swaps)",
               [("", self.registry.gauge("models_in_memory").get_value())])
        model = self._model()
        if model:
            metric("model_info", "gauge", "the model being served (value 1; name and version as labels)",
                   [(f'{{name="{model.name}",version="{model.version}"}}', 1)])
            metric("model_loaded_timestamp_seconds", "gauge", "when the served model was loaded",
                   [("", model.loaded_at)])
        return "\n".join(lines) + "\n"
