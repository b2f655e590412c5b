"""The serving wing, `fab serve` and `fab predict`: model zips -> scores for raw rows (JSON, OIP v2, gRPC).

    app.py               ServerSettings and the aiohttp server: TF Serving's REST API, probes,
                         metrics, admin model swap
    oip_http.py          the Open Inference Protocol v2 (KServe v2) over HTTP: /v2/... on the same port
    oip_tensors.py       its tensors (JSON, or binary after a JSON header) -> checked columns, scores -> a tensor
    byte_elements.c      where a binary BYTES tensor's elements lie, found in C (setup.py builds it)
    string_views.py      string tensors pointing into request bodies: string_views.c, a TensorFlow
                         op compiled against the installed TensorFlow on first use
    refused.py           Refused: not ready, overloaded, too slow, another model; each protocol answers it
    connections.py       the HTTP connections: a cap, the idle timeout, aiohttp's own errors as JSON, the drain's closing
    grpc_server.py       --grpc-port: the gRPC server in the same event loop, started and drained with the HTTP one
    grpc_tf_serving.py   TensorFlow Serving's gRPC PredictionService (Predict, GetModelMetadata)
    grpc_inference.py    the Open Inference Protocol v2's GRPCInferenceService (ModelInfer, health, metadata)
    grpc_calls.py        what both share with the REST API: the model named, the scoring path, errors, metrics
    grpc_tensors.py      their tensors (TensorProtos, OIP's contents) -> checked columns; raw OIP via oip_tensors
    protos/              their generated modules and .proto sources (generate.sh makes them again)
    workers.py           --workers: forked server processes sharing the port
    model.py             a model zip loaded, warmed up and called (ServingModel)
    model_set.py         several models: names, versions, labels (ModelSet), model repositories
    experiment.py        an endpoint split across arms (weights, sticky keys), shadows beside
    request_log.py       a sampled share of scored requests as NDJSON shards (training rows)
    inputs.py            request bodies -> checked numpy columns (FeatureSchema); columns.py ByteSlices
    json_strings.py      a large JSON body's string columns as ByteSlices of their text
    batcher.py           MicroBatcher: concurrent requests merged into one model call
    cache.py             the LRU prediction cache
    metrics.py           pyformance registry, merged across workers, Prometheus text
    openapi.py           the OpenAPI document of the REST API
    saved_model.py       the SavedModel's signature called directly; `python -m` for fab ci's fresh-process check
    batch_prediction.py  `fab predict`: a file of rows -> a file of scores
    latency.py           model zips timed as fab serve calls them; `python -m` for fab optimize

Imports the core and the storage wing, and data/ for row checks; never train or tune.
"""
