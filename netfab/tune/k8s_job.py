"""A study as a Kubernetes Indexed Job: `parallelism` pods, each a tuning worker on the study.

    from netfab.tune.k8s_job import indexed_job, write_indexed_job
    write_indexed_job(spec, trials=20, path="tune-job.yaml", image="netfab:gpu", parallelism=4)

    fab tune --variant=deep_v1 --trials=20 --parallel=4 --storage=postgresql://tuner@db/netfab \
        --k8s=tune-job.yaml                                       # the same, from fab
    kubectl apply -f tune-job.yaml
    fab tune --variant=deep_v1 --trials=20 --storage=... --report  # leaderboard and pictures

Each pod runs `python -m netfab.tune.worker <study folder> --trials N` in the image's project
checkout, which asks the study for trials until it holds N: the pods and any other worker (a
laptop, `fab -H` hosts) share the study through its storage, which every pod must reach (a
PostgreSQL URL; the default SQLite file only on a volume the pods share, given as
`volume_claim`). The study spec travels in $NETFAB_STUDY, so a pod only needs to write trial
logs and zips to the study folder's path. A pod that is lost is started again by the Job
(backoffLimitPerIndex) and joins the study again; its trial runs again on whichever worker asks
first once its heartbeat has stopped.
"""
import json
import re

import yaml

from netfab import storage
from netfab.errors import NetfabError
from netfab.tune.study import StudySpec
from netfab.tune.worker import HEARTBEAT_SECONDS

PROJECT_DIR_IN_IMAGE = "/app"  # where Dockerfile.cpu/.gpu put the code (WORKDIR)


def indexed_job(spec: StudySpec, trials: int, image: str, parallelism: int = 1, gpus: int = 1,
                volume_claim: str = "", project_dir: str = PROJECT_DIR_IN_IMAGE,
                heartbeat: int = HEARTBEAT_SECONDS) -> dict:
    if trials < 1 or parallelism < 1:
        raise NetfabError(f"an Indexed Job needs --trials >= 1 and --parallel >= 1 "
                          f"(got {trials} and {parallelism})")
    if not spec.storage and not volume_claim:
        raise NetfabError(f"the pods of study {spec.name} cannot reach its default storage (a SQLite "
                          f"file in {spec.folder} on this machine); give --storage=postgresql://... "
                          f"that the pods reach")
    name = re.sub(r"[^a-z0-9-]+", "-", f"tune-{spec.name}".lower()).strip("-")[:52]
    container = {
        "name": "trial",
        "image": image,
        "workingDir": project_dir,
        "command": ["python", "-m", "netfab.tune.worker", spec.folder, "--trials", str(trials),
                    "--heartbeat", str(heartbeat)],
        "env": [{"name": "NETFAB_STUDY", "value": json.dumps(spec.to_json())},
                {"name": "PYTHONPATH", "value": project_dir}],
        "resources": {"limits": {"nvidia.com/gpu": gpus}} if gpus else {},
    }
    pod = {"restartPolicy": "Never", "containers": [container]}
    if volume_claim:
        container["volumeMounts"] = [{"name": "study", "mountPath": _mount_path(spec)}]
        pod["volumes"] = [{"name": "study", "persistentVolumeClaim": {"claimName": volume_claim}}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "netfab-tune", "netfab/study": name[5:]}},
        "spec": {
            "completionMode": "Indexed",  # one index per worker: a lost pod is started again alone
            "completions": parallelism,
            "parallelism": parallelism,
            "backoffLimitPerIndex": 2,
            "maxFailedIndexes": parallelism,
            "template": {"metadata": {"labels": {"app": "netfab-tune"}}, "spec": pod},
        },
    }


def write_indexed_job(spec: StudySpec, trials: int, path: str, image: str, parallelism: int = 1,
                      gpus: int = 1, volume_claim: str = "") -> str:
    """Publish the manifest whole at `path` (a file or gs:// URI); a line saying where."""
    manifest = indexed_job(spec, trials, image, parallelism, gpus, volume_claim)
    written = storage.publish_text(yaml.safe_dump(manifest, sort_keys=False), path)
    return (f"Indexed Job {manifest['metadata']['name']} ({parallelism} workers on a study of {trials} trials) "
            f"-> {written}; kubectl apply -f {written}")


def _mount_path(spec: StudySpec) -> str:
    return str(storage.local_path(spec.folder).parent)
