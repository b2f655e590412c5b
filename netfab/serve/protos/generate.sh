#!/usr/bin/env bash
# Regenerates the Python modules of netfab/serve/protos/ from the .proto files beside them.
#
#   bash netfab/serve/protos/generate.sh            # from the checkout, with the project's venv active
#
# Why this way:
# - grpcio-tools 1.78 bundles protoc 31.1, whose Python code asks for a protobuf runtime of at
#   least 6.31.1: the same as TensorFlow 2.21's own generated modules, so the modules load with
#   every protobuf TensorFlow accepts (6.31.1 up to 7.x; tritonclient[grpc] in the test extra
#   holds it below 7). A newer grpcio-tools would ask for protobuf 7 and fail in the test venv.
#   It runs in a throwaway venv, so it never changes the project's protobuf.
# - TensorFlow Serving's protos import TensorFlow's (tensor.proto, meta_graph.proto,
#   example.proto). TensorFlow's wheel carries no .proto files, only their compiled descriptors:
#   those of the installed TensorFlow are handed to protoc as a descriptor set, so the generated
#   modules refer to exactly the messages `tensorflow.core.*` registers at run time.
# - The generated imports name their package as tensorflow_serving.apis; they are rewritten to
#   netfab.serve.protos.tensorflow_serving.apis, while the files keep their upstream names in
#   protobuf's registry ("tensorflow_serving/apis/predict.proto"), as the official stubs do.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}  # the project's interpreter: it has TensorFlow
TOOLS=$(mktemp -d /tmp/netfab-protoc.XXXXXX)
trap 'rm -rf "$TOOLS"' EXIT

python3 -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check 'grpcio-tools==1.78.0'

"$PYTHON" - "$TOOLS/tensorflow.pb" <<'EOF'
import sys
from google.protobuf import descriptor_pb2
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2

files, seen = descriptor_pb2.FileDescriptorSet(), set()

def add(descriptor):  # dependencies first, as protoc wants them
    if descriptor.name in seen:
        return
    seen.add(descriptor.name)
    for dependency in descriptor.dependencies:
        add(dependency)
    descriptor.CopyToProto(files.file.add())

for module in (example_pb2, tensor_pb2, meta_graph_pb2):
    add(module.DESCRIPTOR)
open(sys.argv[1], "wb").write(files.SerializeToString())
EOF

rm -f ./*_pb2*.py tensorflow_serving/apis/*_pb2*.py
"$TOOLS/venv/bin/python" -m grpc_tools.protoc --proto_path=. --descriptor_set_in="$TOOLS/tensorflow.pb" \
    --python_out=. --grpc_python_out=. \
    tensorflow_serving/apis/{model,input,classification,regression,inference,predict,get_model_metadata,prediction_service}.proto \
    open_inference_grpc.proto
sed -i 's/^from tensorflow_serving\.apis import/from netfab.serve.protos.tensorflow_serving.apis import/' \
    tensorflow_serving/apis/*_pb2*.py
sed -i 's/^import open_inference_grpc_pb2/from netfab.serve.protos import open_inference_grpc_pb2/' \
    open_inference_grpc_pb2_grpc.py
# The plugin writes a _grpc module for every file; only the two that define a service are kept.
for module in ./*_pb2_grpc.py tensorflow_serving/apis/*_pb2_grpc.py; do
    grep -q Servicer "$module" || rm "$module"
done
echo "generated: $(ls ./*_pb2*.py tensorflow_serving/apis/*_pb2*.py | tr '\n' ' ')"
