"""The serving wing, `fab serve` and `fab predict`: a model zip -> scores for raw JSON rows.

    app.py               ServerSettings and the aiohttp server: TF Serving's REST API, probes,
                         metrics, admin model swap
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

Imports the core and the storage wing, and data/ for row checks; never train or tune.
"""
