"""Generated gRPC modules of the two wire protocols `fab serve --grpc-port` speaks; do not edit.

    tensorflow_serving/apis/   TensorFlow Serving's PredictionService (tensorflow/serving, Apache 2.0)
    open_inference_grpc        the Open Inference Protocol v2 (kserve/open-inference-protocol, Apache 2.0)

Their .proto sources sit beside them as published upstream (tensorflow/serving at 9d981c5c,
2026-07-30; kserve/open-inference-protocol at d49cc23f, 2025-05-11), unchanged. generate.sh makes the modules
again (and says why it pins grpcio-tools); netfab/serve/grpc_*.py hold the code that serves them.
TensorFlow Serving's modules import TensorFlow's own (tensorflow.core.*): importing them imports
TensorFlow.
"""
