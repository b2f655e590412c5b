"""`fab k8s`: Kubernetes manifests for serving a model zip and for training on a GPU.

    from netfab.deploy.k8s_manifests import K8sSettings, write_manifests
    paths = write_manifests(K8sSettings(model_uri="gs://bucket/models/deep_v1/<run>/model.zip"), "k8s/")
    kubectl apply -f k8s/

One function per manifest, each returning a plain dict, and MANIFESTS listing them in the
order `kubectl apply` should see them: a new kind of workload (e.g. the Indexed Job of the
tuning issue) is one more function and one more entry. Each manifest goes to its own YAML file,
published through netfab.storage: the output may be a local folder or gs://bucket/prefix.

The serving image holds no model: the Deployment passes the model URI as an environment
variable and `fab serve` fetches it at start-up; /readyz keeps the pod out of the Service
until the model is warm, and SIGTERM drains it within the termination grace period.

An experiment (--experiment, with --model a model repository such as gs://bucket/models/) is one
Deployment whose every pod serves all arms and shadows: the split happens inside fab serve by
the request's key, so a user stays on one arm whichever pod answers, one Service and one HPA
cover the endpoint, and a re-weight is an edit of the experiment file (each pod re-reads it),
not a rollout. One Deployment per arm would need a mesh (Istio, Knative) to split traffic, could
not key it by a feature, and would scale a 1% arm to whole pods. Its HPA scales on requests in
flight per pod (the netfab_requests_in_flight gauge, through a Prometheus adapter serving the
custom metrics API) as well as CPU: a pod waiting on its batcher is loaded before its CPU says so.
"""
import dataclasses
import re

import yaml

from netfab import storage
from netfab.errors import NetfabError

SERVE_PORT = 8501
DRAIN_SECONDS = 30  # fab serve's drain timeout (ServerSettings.drain_timeout_s)
PRESTOP_SECONDS = 5  # let endpoints drop the pod before it stops accepting connections
IN_FLIGHT_METRIC = "netfab_requests_in_flight"  # the gauge fab serve exports at /metrics
NAME_RULE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")  # DNS-1123 label, room for suffixes


@dataclasses.dataclass(frozen=True)
class K8sSettings:
    model_uri: str  # the zip fab serve fetches (gs:// in a cluster)
    name: str = "netfab"  # prefix of every object's name, and the app label
    image: str = "netfab:cpu"  # serving image (Dockerfile.cpu)
    gpu_image: str = "netfab:gpu"  # training image (Dockerfile.gpu)
    replicas: int = 2  # initial and minimum serving pods
    max_replicas: int = 8  # HorizontalPodAutoscaler ceiling
    target_cpu_percent: int = 70  # HPA scales out above this average CPU use
    cpu: str = "1"  # per serving pod (request; limit is twice)
    memory: str = "1Gi"  # per serving pod (request; limit is twice)
    train_variant: str = "deep_v1"  # what the training Job trains
    train_dataset: str = ""  # dataset URI for the training Job
    train_output: str = ""  # where the training Job publishes its model zip
    experiment_uri: str = ""  # an experiment file every pod serves (and re-reads); "" = none
    labels: tuple[str, ...] = ()  # fab serve --label values, NAME/labels/LABEL=VERSION
    target_in_flight: int = 0  # HPA: also scale above this many requests in flight per pod; 0 = CPU only

    def __post_init__(self):
        if not self.model_uri:
            raise NetfabError("--model is required: the model zip URI the pods will serve")
        if not NAME_RULE.match(self.name):
            raise NetfabError(f"--name {self.name!r} is not a valid Kubernetes name: lower-case "
                              f"letters, digits and '-', at most 52 characters")
        if not 1 <= self.replicas <= self.max_replicas:
            raise NetfabError(f"--replicas must be between 1 and max replicas "
                              f"({self.max_replicas}); got {self.replicas}")
        if self.target_in_flight < 0:
            raise NetfabError(f"--target-in-flight must be 0 (CPU only) or more, got {self.target_in_flight}")


# What to give instead of a path on this machine, for each URI a pod reads or writes.
IN_A_BUCKET = {
    "--model": "the zip's gs:// URI (fab train --output=gs://BUCKET/models publishes it there)",
    "--dataset": "a gs:// dataset (fab dataset --out=gs://BUCKET/datasets/NAME writes one)",
    "--train-output": "a gs:// URI such as gs://BUCKET/models, or the Job's zip is lost with its pod",
    "--experiment": "the experiment file's gs:// URI (gcloud storage cp bookings.json gs://BUCKET/experiments/)",
}


def local_path_warnings(settings: K8sSettings) -> list[str]:
    """A warning for each URI the pods use that is a path on this machine: no pod can see it."""
    given = {"--model": settings.model_uri, "--dataset": settings.train_dataset,
             "--train-output": settings.train_output, "--experiment": settings.experiment_uri}
    return [f"warning: {flag}={uri} is a path on this machine, which the pods cannot see; "
            f"give {IN_A_BUCKET[flag]}"
            for flag, uri in given.items() if uri and not storage.is_gcs(uri)]


def _labels(settings, component) -> dict:
    return {"app.kubernetes.io/name": settings.name, "app.kubernetes.io/component": component}


def _doubled(quantity: str) -> str:
    number, unit = re.match(r"^([0-9.]+)(.*)$", quantity).groups()
    doubled = float(number) * 2
    return f"{int(doubled) if doubled.is_integer() else doubled}{unit}"


def deployment(settings: K8sSettings) -> dict:
    labels = _labels(settings, "serving")
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10,
             "timeoutSeconds": 2, "failureThreshold": 3}
    container = {
        "name": "serve",
        "image": settings.image,
        # $(NETFAB_MODEL_URI) is expanded by Kubernetes from the env below.
        "command": ["fab", "serve", "--model=$(NETFAB_MODEL_URI)", "--host=0.0.0.0", f"--port={SERVE_PORT}",
                    *([f"--experiment=$(NETFAB_EXPERIMENT_URI)"] if settings.experiment_uri else []),
                    *(f"--label={label}" for label in settings.labels)],
        "env": [{"name": "NETFAB_MODEL_URI", "value": settings.model_uri},
                *([{"name": "NETFAB_EXPERIMENT_URI", "value": settings.experiment_uri}]
                  if settings.experiment_uri else [])],
        "ports": [{"name": "http", "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": settings.cpu, "memory": settings.memory},
                      "limits": {"cpu": _doubled(settings.cpu), "memory": _doubled(settings.memory)}},
        # Fetching and warming a model takes a while: the startup probe gives it 5 minutes
        # before liveness applies, and readiness keeps traffic away until /readyz says so.
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": probe,
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 2,
                           "timeoutSeconds": 2, "failureThreshold": 1},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"{settings.name}-serve", "labels": labels},
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
                                             "prometheus.io/port": str(SERVE_PORT)}},
                "spec": {"containers": [container],
                         "terminationGracePeriodSeconds": PRESTOP_SECONDS + DRAIN_SECONDS + 10},
            },
        },
    }


def service(settings: K8sSettings) -> dict:
    labels = _labels(settings, "serving")
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"{settings.name}-serve", "labels": labels},
        "spec": {"selector": labels, "type": "ClusterIP",
                 "ports": [{"name": "http", "port": SERVE_PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def horizontal_pod_autoscaler(settings: K8sSettings) -> dict:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"{settings.name}-serve", "labels": _labels(settings, "serving")},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{settings.name}-serve"},
            "minReplicas": settings.replicas, "maxReplicas": settings.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": settings.target_cpu_percent}}},
                *([{"type": "Pods", "pods": {  # the HPA takes the largest replica count any metric asks for
                    "metric": {"name": IN_FLIGHT_METRIC},
                    "target": {"type": "AverageValue", "averageValue": str(settings.target_in_flight)}}}]
                  if settings.target_in_flight else [])],
        },
    }


def training_job(settings: K8sSettings) -> dict:
    command = ["fab", "train", f"--variant={settings.train_variant}"]
    command += [f"--dataset={settings.train_dataset}"] if settings.train_dataset else []
    command += [f"--output={settings.train_output}"] if settings.train_output else []
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": f"{settings.name}-train-{settings.train_variant.replace('_', '-')}",
                     "labels": _labels(settings, "training")},
        "spec": {
            "backoffLimit": 2,  # a killed run resumes from its checkpoint on the next try
            "template": {
                "metadata": {"labels": _labels(settings, "training")},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "train", "image": settings.gpu_image, "command": command,
                        "resources": {"requests": {"cpu": "4", "memory": "8Gi"},
                                      "limits": {"nvidia.com/gpu": 1, "memory": "16Gi"}},
                    }],
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                },
            },
        },
    }


# file stem -> builder, in apply order.
MANIFESTS = {
    "deployment": deployment,
    "service": service,
    "hpa": horizontal_pod_autoscaler,
    "training-job": training_job,
}


def build_manifests(settings: K8sSettings) -> dict[str, dict]:
    return {stem: build(settings) for stem, build in MANIFESTS.items()}


def write_manifests(settings: K8sSettings, output: str) -> list[str]:
    """One YAML file per manifest in `output` (a folder or gs:// prefix), each published whole;
    returns their URIs."""
    return [storage.publish_text(yaml.safe_dump(manifest, sort_keys=False),
                                 storage.join(output, f"{number:02d}-{stem}.yaml"))
            for number, (stem, manifest) in enumerate(build_manifests(settings).items())]
