"""The serving wing, `fab serve` and `fab predict`: a model zip -> scores for raw rows (JSON or OIP v2 tensors).

    app.py               ServerSettings and the aiohttp server: TF Serving's REST API, probes,
                         metrics, admin model swap
    oip_http.py          the Open Inference Protocol v2 (KServe v2) over HTTP: /v2/... on the same port
    oip_tensors.py       its tensors (JSON, or binary after a JSON header) -> checked columns, scores -> a tensor
    connections.py       the HTTP connections: a cap, the idle timeout, aiohttp's own errors as JSON, the drain's closing
    workers.py           --workers: forked server processes sharing the port
    model.py             a model zip loaded, warmed up and called (ServingModel)
    inputs.py            request bodies -> checked numpy columns (FeatureSchema); columns.py ByteSlices
    batcher.py           MicroBatcher: concurrent requests merged into one model call
    cache.py             the LRU prediction cache
    metrics.py           pyformance registry, merged across workers, Prometheus text
    openapi.py           the OpenAPI document of the REST API
    saved_model.py       the SavedModel's signature called directly; `python -m` for fab ci's fresh-process check
    batch_prediction.py  `fab predict`: a file of rows -> a file of scores
    latency.py           model zips timed as fab serve calls them; `python -m` for fab optimize

Imports the core and the storage wing, and data/ for row checks; never train or tune.
"""
