"""The OpenAPI 3 document of `fab serve`'s HTTP API (GET /openapi.json), with the model's features.

    from netfab.serve.openapi import openapi_document
    document = openapi_document(model)      # model may be None while it loads: generic schemas
"""
from netfab.serve.inputs import STRING

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _row_schema(model) -> dict:
    if model is None:
        return {"type": "object", "additionalProperties": True}
    properties = {name: {"type": ["string", "null"]} if kind == STRING else {"type": ["number", "null"]}
                  for name, kind in model.inputs.features.items()}
    return {"type": "object", "required": list(properties), "properties": properties,
            "additionalProperties": True,
            "description": "one raw row; null strings map to the out-of-vocabulary bucket, null "
                           "numbers to the training mean; other keys (an id) are ignored"}


def openapi_document(model) -> dict:
    row = _row_schema(model)
    columns = {"type": "object", "additionalProperties": {"type": "array"},
               "description": "feature -> list of values, one per row, all of one length"}
    errors = {
        "400": _json(ERROR, "bad input: empty or malformed body, missing feature, wrong type, NaN "
                            "(the message names the row and the field)"),
        "404": _json(ERROR, "no model of that name is served here"),
        "413": _json(ERROR, "body over the size limit (--max-body-mb)"),
        "503": _json(ERROR, "not ready, draining, or the queue is full (see Retry-After)"),
        "504": _json(ERROR, "no answer within the per-request timeout"),
    }
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "the model name (the variant, e.g. deep_v1, unless --name was given)"}
    probe = {"200": _json({"type": "object"}, "yes"), "503": _json({"type": "object"}, "no")}
    document = {
        "openapi": "3.1.0",
        "info": {"title": "netfab prediction service", "version": "1",
                 "description": "TensorFlow Serving-compatible REST API for a netfab model zip, and the Open "
                                "Inference Protocol v2 (KServe v2) on the same port."},
        "paths": {
            "/v1/models/{name}:predict": {"post": {
                "summary": "Probabilities for rows (row form) or columns (columnar form)",
                "parameters": [name],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"type": "object", "required": ["instances"],
                     "properties": {"instances": {"type": "array", "minItems": 1, "items": row},
                                    "signature_name": {"const": "serving_default"}}},
                    {"type": "object", "required": ["inputs"],
                     "properties": {"inputs": columns, "signature_name": {"const": "serving_default"}}},
                ]}}}},
                "responses": {"200": _json({"oneOf": [
                    {"type": "object", "properties": {"predictions": {"type": "array", "items": {"type": "number"}}}},
                    {"type": "object", "properties": {"outputs": {"type": "array", "items": {"type": "number"}}}},
                ]}, "predictions (row form) or outputs (columnar form): one probability per row, in order"),
                    **errors}}},
            "/v1/models/{name}": {"get": {"summary": "Model version status", "parameters": [name],
                                          "responses": {"200": _json({"type": "object"}, "status"), "404": errors["404"]}}},
            "/v1/models/{name}/metadata": {"get": {
                "summary": "The serving signature: raw features in, probability out", "parameters": [name],
                "responses": {"200": _json({"type": "object"}, "signature_def"), "404": errors["404"]}}},
            "/healthz": {"get": {"summary": "Liveness: the process answers", "responses": {"200": probe["200"]}}},
            "/readyz": {"get": {"summary": "Readiness: model loaded and warm, not draining", "responses": probe}},
            **_open_inference_paths(name, errors, probe),
            "/metrics": {"get": {"summary": "Prometheus text format; ?format=json for JSON",
                                 "responses": {"200": {"description": "metrics"}}}},
            "/admin/model": {"post": {
                "summary": "Swap to another model zip with zero failed requests (needs --admin-token)",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["model"], "properties": {"model": {"type": "string"}}}}}},
                "responses": {"200": _json({"type": "object"}, "the new and the previous model"),
                              "400": errors["400"], "401": _json(ERROR, "wrong token"),
                              "403": _json(ERROR, "admin endpoint off")}}},
        },
        "components": {"schemas": {"Error": {"type": "object", "required": ["error"],
                                             "properties": {"error": {"type": "string"}}}}},
    }
    paths = document["paths"]
    _add_versions_and_labels(paths)
    paths.update(_admin_paths(errors))
    return document


def _path_parameter(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _add_versions_and_labels(paths: dict) -> None:
    """/v1/models/{name}/versions/{version}[...] and /labels/{label}[...]: the same operations, one version."""
    for kind, parameter in (("versions/{version}", _path_parameter("version", "the model version (its run id)")),
                            ("labels/{label}", _path_parameter("label", "a label: stable, canary, ..."))):
        for suffix in (":predict", "", "/metadata"):
            for method, operation in paths[f"/v1/models/{{name}}{suffix}"].items():
                paths[f"/v1/models/{{name}}/{kind}{suffix}"] = {
                    method: {**operation, "parameters": [*operation["parameters"], parameter]}}


def _admin_paths(errors: dict) -> dict:
    """Several models and the experiment, changed without a restart (all need --admin-token)."""
    answer = {"200": _json({"type": "object"}, "what is served now, and before"), "400": errors["400"],
              "401": _json(ERROR, "wrong token"), "403": _json(ERROR, "admin endpoint off")}
    model = {"application/json": {"schema": {"type": "object", "required": ["model"],
                                              "properties": {"model": {"type": "string"}}}}}
    name = _path_parameter("name", "the model name")
    return {
        "/admin/models": {
            "get": {"summary": "Every loaded model: versions, labels, memory; the experiment", "responses": answer},
            "post": {"summary": "Load a model zip beside the ones served", "requestBody": {"content": model},
                     "responses": answer}},
        "/admin/models/{name}/versions/{version}": {"delete": {
            "summary": "Unload a version (refused while a label or an experiment arm names it)",
            "parameters": [name, _path_parameter("version", "its run id")], "responses": answer}},
        "/admin/models/{name}/labels/{label}": {"put": {
            "summary": "Point a label at a loaded version", "parameters": [name, _path_parameter("label", "the label")],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "required": ["version"], "properties": {"version": {"type": "string"}}}}}},
            "responses": answer}},
        "/admin/experiment": {
            "get": {"summary": "The experiment served", "responses": answer},
            "put": {"summary": "Serve this experiment (the file's JSON): re-weights without a restart",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": answer},
            "delete": {"summary": "End the experiment", "responses": answer}},
    }


def _open_inference_paths(name: dict, errors: dict, probe: dict) -> dict:
    """The Open Inference Protocol v2 endpoints (netfab.serve.oip_http); its own specification
    describes the tensors."""
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "the model version (the run id)"}
    model = {"200": _json({"type": "object"}, "the model's metadata: an input per feature (BYTES or FP32, "
                                              "shape [-1]), output probability (FP32)"), "404": errors["404"]}
    infer = {"summary": "Probabilities for OIP v2 tensors, one input per feature: JSON data, or binary data "
                        "after a JSON header of Inference-Header-Content-Length bytes",
             "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}},
                                                           "application/octet-stream": {"schema": {}}}},
             "responses": {"200": {"description": "outputs: probability, as JSON data or as binary data after a "
                                                  "JSON header (Inference-Header-Content-Length)"}, **errors}}
    paths = {"/v2/health/live": {"get": {"summary": "OIP v2 liveness", "responses": {"200": probe["200"]}}},
             "/v2/health/ready": {"get": {"summary": "OIP v2 readiness, as /readyz", "responses": probe}},
             "/v2": {"get": {"summary": "OIP v2 server metadata",
                             "responses": {"200": _json({"type": "object"}, "name, version, extensions")}}}}
    for prefix, parameters in (("/v2/models/{name}", [name]),
                               ("/v2/models/{name}/versions/{version}", [name, version])):
        paths[prefix] = {"get": {"summary": "OIP v2 model metadata", "parameters": parameters, "responses": model}}
        paths[prefix + "/ready"] = {"get": {"summary": "OIP v2 model readiness", "parameters": parameters,
                                            "responses": {**probe, "404": errors["404"]}}}
        paths[prefix + "/infer"] = {"post": {**infer, "parameters": parameters}}
    return paths
