"""The server's metrics, kept by pyformance and shown in Prometheus text format or as JSON.

    metrics = ServingMetrics(queue_rows=lambda: batcher.queued_rows, model=lambda: current_model,
                             models_in_memory=models_in_memory, models=lambda: model_set, in_flight=lambda: 3)
    metrics.observe(metrics.request_seconds, 0.004)
    metrics.arm("bookings", "deep_v1/labels/canary", "live").record(requests=1, rows=1, seconds=0.003, scores=scores)
    metrics.as_json()                             # GET /metrics?format=json
    prometheus_text(metrics.as_json())            # GET /metrics (Prometheus text format 0.0.4)
    prometheus_text(merge([worker_1, worker_2]))  # the same for fab serve --workers=2

Per model: its memory (the process's resident memory growth while it loaded and warmed up).
Per experiment arm (netfab.serve.experiment), labelled {experiment, arm, role="live"|"shadow"}:
requests, rows, errors, latency, and the score's distribution as a Prometheus histogram.
Per model or arm whose zip has a reference profile: drift, netfab_drift_psi{model, arm, role,
version, feature} over a sliding window of its traffic (netfab.serve.drift_tracking).

Latencies are pyformance timers (exponentially decaying reservoirs: the percentiles describe
roughly the last five minutes), except an arm's: the quantiles of its last 1,028 requests. Names are prefixed netfab_ and in seconds, as Prometheus expects.
"""
import collections
import threading

import numpy as np
from pyformance import MetricsRegistry
from pyformance.meters import CallbackGauge
from pyformance.stats.snapshot import Snapshot

from netfab.drift.profile import SCORE, one_score_per_row
from netfab.drift.psi import ACT, WATCH
from netfab.serve.drift_tracking import drift_scores, merge_drift

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


SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # the upper bounds of the score histogram
SCORE_BUCKET_ARRAY, LAST_BUCKET = np.array(SCORE_BUCKETS, dtype=np.float32), len(SCORE_BUCKETS) - 1
ARM_ROLES = ("live", "shadow")  # an arm answers its requests; a shadow is scored beside, never answering


class ArmMetrics:
    """One arm's (or shadow's) figures: requests, rows, errors, latency, score histogram.

    Recorded on the event loop for every request of an experiment (a shadow's, in the shadow's
    thread), so recording only appends; the scores are binned and the latencies put in the window
    every FOLD_EVERY records, and when read.
    Latency quantiles are over the arm's last LATENCY_WINDOW records (not a decaying reservoir: a
    reservoir's update per request costs more than everything else an arm adds to a request)."""
    LATENCY_WINDOW = 1028  # pyformance's reservoir size
    FOLD_EVERY = 256

    def __init__(self):
        self.requests = self.rows = self.errors = 0
        self.score_counts = [0] * len(SCORE_BUCKETS)  # not cumulative: one per bucket
        self.score_sum = 0.0
        self._latencies = collections.deque(maxlen=self.LATENCY_WINDOW)
        self._seconds_count, self._seconds_sum = 0, 0.0
        self._pending_seconds: list[float] = []
        self._pending_scores: list[np.ndarray] = []
        self._lock = threading.Lock()  # a shadow's figures are written in its thread, read in the event loop

    def record(self, requests: int, rows: int, seconds: float, scores) -> None:
        """`requests` scored together (shadow calls are) in `seconds`: their rows' scores (a per-class
        model's: its likeliest class's probability per row)."""
        with self._lock:
            self.requests += requests
            self.rows += rows
            self._pending_seconds.append(seconds)
            self._pending_scores.append(scores)
            if len(self._pending_seconds) < self.FOLD_EVERY:
                return
        self._fold()

    def record_error(self) -> None:
        self.record_errors(1)

    def record_errors(self, requests: int) -> None:
        with self._lock:
            self.requests += requests
            self.errors += requests

    def _fold(self) -> None:
        with self._lock:
            seconds, scores = self._pending_seconds, self._pending_scores
            if not seconds:
                return
            self._pending_seconds, self._pending_scores = [], []
            self._latencies.extend(seconds)
            self._seconds_count += len(seconds)
            self._seconds_sum += sum(seconds)
            scores = np.concatenate([one_score_per_row(part) for part in scores])
            binned = np.bincount(np.searchsorted(SCORE_BUCKET_ARRAY, scores, side="left").clip(0, LAST_BUCKET),
                                 minlength=len(SCORE_BUCKETS))
            for bucket, count in enumerate(binned.tolist()):
                self.score_counts[bucket] += count
            self.score_sum += float(np.sum(scores, dtype=np.float64))

    def as_json(self) -> dict:
        self._fold()
        snapshot = Snapshot(list(self._latencies))
        seconds = {"count": self._seconds_count,
                   "mean": self._seconds_sum / self._seconds_count if self._seconds_count else 0.0,
                   **{f"p{int(q * 100)}": snapshot.get_percentile(q) for q in QUANTILES}}
        return {"requests": self.requests, "rows": self.rows, "errors": self.errors, "seconds": seconds,
                "score_buckets": list(self.score_counts), "score_sum": self.score_sum}


class ServingMetrics:
    def __init__(self, queue_rows, model, models_in_memory, models=lambda: (), in_flight=lambda: 0,
                 drift=lambda: []):
        self.registry = MetricsRegistry()
        self._drift = drift
        self._model = model
        self._models, self._in_flight = models, in_flight
        self.arms: dict[tuple[str, str, str], ArmMetrics] = {}
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

    def arm(self, experiment: str, arm: str, role: str) -> ArmMetrics:
        """The figures of one arm of an experiment (role: live or shadow), made on first use."""
        key = (experiment, arm, role)
        metrics = self.arms.get(key)
        if metrics is None:
            metrics = self.arms[key] = ArmMetrics()
        return metrics

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
            "models": [{**m.describe(), "memory_bytes": m.memory_bytes} for m in self._models()],
            "in_flight": self._in_flight(),
            "arms": [{"experiment": e, "arm": a, "role": r, **metrics.as_json()}
                     for (e, a, r), metrics in sorted(self.arms.items())],
            "drift": self._drift(),
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
        merged[name] = _merge_summaries([w[name] for w in workers])
    for name in (*COUNTERS, "queue_rows", "models_in_memory", "in_flight"):
        merged[name] = sum(w.get(name, 0) for w in workers)
    # every worker holds every model: one process's figure is what a replica needs per copy
    merged["models"] = first.get("models", [])
    merged["arms"] = _merge_arms([w.get("arms", []) for w in workers])
    merged["drift"] = merge_drift([w.get("drift", []) for w in workers])
    lookups = merged["cache_hits"] + merged["cache_misses"]
    merged["cache_hit_rate"] = merged["cache_hits"] / lookups if lookups else 0.0
    return merged


def _merge_summaries(summaries: list[dict]) -> dict:
    """Summaries ({"count", "mean", "p50", ...}) of several workers as one: counts add up, every
    other figure is the count-weighted mean (see merge)."""
    count = sum(summary["count"] for summary in summaries)
    return {"count": count, **{key: (sum(s[key] * s["count"] for s in summaries) / count if count else 0.0)
                               for key in summaries[0] if key != "count"}}


def _merge_arms(workers: list[list[dict]]) -> list[dict]:
    """Arm figures of several workers: counts and histograms add up, latency quantiles weighted as above."""
    merged: dict[tuple, dict] = {}
    for arms in workers:
        for arm in arms:
            key = (arm["experiment"], arm["arm"], arm["role"])
            into = merged.get(key)
            if into is None:
                merged[key] = {**arm, "seconds": dict(arm["seconds"]), "score_buckets": list(arm["score_buckets"])}
                continue
            into["seconds"] = _merge_summaries([into["seconds"], arm["seconds"]])
            for name in ("requests", "rows", "errors", "score_sum"):
                into[name] += arm[name]
            into["score_buckets"] = [a + b for a, b in zip(into["score_buckets"], arm["score_buckets"])]
    return [merged[key] for key in sorted(merged)]


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
    metric("requests_in_flight", "gauge", "requests being handled now, every protocol (the HPA's custom metric)",
           [("", data.get("in_flight", 0))])
    models = data.get("models", [])
    if models:
        metric("model_memory_bytes", "gauge", "resident memory the process grew by while the model loaded and "
                                              "warmed up (per worker)",
               [(f'{{name="{m["name"]}",version="{m["version"]}"}}', m["memory_bytes"]) for m in models])
    arms = data.get("arms", [])
    if arms:
        def labels(arm, **extra) -> str:
            pairs = {"experiment": arm["experiment"], "arm": arm["arm"], "role": arm["role"], **extra}
            return "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"

        metric("arm_requests_total", "counter", "requests (shadow: shadow calls) scored by each experiment arm",
               [(labels(a), a["requests"]) for a in arms])
        metric("arm_rows_total", "counter", "rows scored by each experiment arm", [(labels(a), a["rows"]) for a in arms])
        metric("arm_errors_total", "counter", "requests an experiment arm failed to score (overload, timeout, error)",
               [(labels(a), a["errors"]) for a in arms])
        metric("arm_seconds", "summary", "time to score an arm's rows (queue and model), in seconds",
               [(labels(a, quantile=q), a["seconds"][f"p{int(q * 100)}"]) for a in arms for q in QUANTILES])
        lines.extend(f"netfab_arm_seconds_{part}{labels(a)} {value:.9g}" for a in arms for part, value in
                     (("sum", a["seconds"]["mean"] * a["seconds"]["count"]), ("count", a["seconds"]["count"])))
        histogram = []
        for a in arms:
            cumulative = np.cumsum(a["score_buckets"])
            histogram += [(f"_bucket{labels(a, le=f'{bound:g}')}", count)
                          for bound, count in zip(SCORE_BUCKETS[:-1], cumulative[:-1])]
            histogram += [(f"_bucket{labels(a, le='+Inf')}", cumulative[-1]), (f"_sum{labels(a)}", a["score_sum"]),
                          (f"_count{labels(a)}", cumulative[-1])]
        metric("arm_score", "histogram", "the distribution of the scores each experiment arm gave", histogram)
    drift = data.get("drift", [])
    if drift:
        def drift_labels(entry, **extra) -> str:
            pairs = {"model": entry["endpoint"], "arm": entry["arm"], "role": entry["role"],
                     "version": entry["version"], **extra}
            return "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"

        metric("drift_window_rows", "gauge", "rows in the sliding window drift is measured on (per model or arm)",
               [(drift_labels(e), e["rows"]) for e in drift])
        metric("drift_psi", "gauge", f"population stability index of the window against the training profile, per "
                                     f"feature and for the score (feature=\"{SCORE}\"): {WATCH} watch, {ACT} act",
               [(drift_labels(e, feature=name), psi) for e in drift for name, psi in drift_scores(e).items()])
    return "\n".join(lines) + "\n"
