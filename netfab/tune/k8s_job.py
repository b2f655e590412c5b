"""A study as a Kubernetes Indexed Job: pod N runs trial N (its JOB_COMPLETION_INDEX).

    from netfab.tune.k8s_job import indexed_job, write_indexed_job
    write_indexed_job(spec, trials=20, path="tune-job.yaml", image="netfab:gpu", parallelism=4)

    fab tune --variant=deep_v1 --trials=20 --parallel=4 --k8s=tune-job.yaml   # the same, from fab
    kubectl apply -f tune-job.yaml
    fab tune --variant=deep_v1 --trials=20          # afterwards: nothing left to run, leaderboard

Each pod runs `python -m netfab.tune.trial_runner <study folder>` in the image's project checkout;
the study spec travels in $NETFAB_STUDY, so the pod only needs to write to the study folder,
which must be storage every pod and the machine running `fab tune` share (a volume mounted at
the same path, given as `volume_claim`). A failed training is a recorded trial and exits 0; a
pod that is lost is retried by the Job (backoffLimitPerIndex).
"""
import json
import re

import yaml

from netfab import storage
from netfab.errors import NetfabError
from netfab.tune.study import StudySpec

PROJECT_DIR_IN_IMAGE = "/app"  # where Dockerfile.cpu/.gpu put the code (WORKDIR)


def indexed_job(spec: StudySpec, trials: int, image: str, parallelism: int = 1, gpus: int = 1,
                volume_claim: str = "", project_dir: str = PROJECT_DIR_IN_IMAGE) -> dict:
    if trials < 1 or parallelism < 1:
        raise NetfabError(f"an Indexed Job needs --trials >= 1 and --parallel >= 1 "
                          f"(got {trials} and {parallelism})")
    name = re.sub(r"[^a-z0-9-]+", "-", f"tune-{spec.name}".lower()).strip("-")[:52]
    container = {
        "name": "trial",
        "image": image,
        "workingDir": project_dir,
        "command": ["python", "-m", "netfab.tune.trial_runner", spec.folder],
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
            "completionMode": "Indexed",  # JOB_COMPLETION_INDEX = the trial index
            "completions": trials,
            "parallelism": parallelism,
            "backoffLimitPerIndex": 2,  # a lost pod retries its own trial, not the whole Job
            "maxFailedIndexes": trials,
            "template": {"metadata": {"labels": {"app": "netfab-tune"}}, "spec": pod},
        },
    }


def write_indexed_job(spec: StudySpec, trials: int, path: str, image: str, parallelism: int = 1,
                      gpus: int = 1, volume_claim: str = "") -> str:
    """Publish the manifest whole at `path` (a file or gs:// URI); a line saying where."""
    manifest = indexed_job(spec, trials, image, parallelism, gpus, volume_claim)
    written = storage.publish_text(yaml.safe_dump(manifest, sort_keys=False), path)
    return (f"Indexed Job {manifest['metadata']['name']} ({trials} trials, {parallelism} at a time) "
            f"-> {written}; kubectl apply -f {written}")


def _mount_path(spec: StudySpec) -> str:
    return str(storage.local_path(spec.folder).parent)
