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
    return {
        "openapi": "3.1.0",
        "info": {"title": "netfab prediction service", "version": "1",
                 "description": "TensorFlow Serving-compatible REST API for a netfab model zip."},
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
