"""`fab k8s`: manifests that the Kubernetes schemas accept, wired to fab serve's probes."""
import kubernetes_validate
import pytest
import yaml

from netfab.errors import NetfabError
from netfab.deploy.k8s_manifests import K8sSettings, build_manifests, deployment
from tests.helpers import run_fab

MODEL = "gs://models/deep_v1/20261122-061212-ddde1781607f536e/model.zip"


def validate(manifest):
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)


def test_fab_k8s_writes_manifests_the_kubernetes_schemas_accept(tmp_path):
    result = run_fab("k8s", f"--model={MODEL}", "--replicas=3", "--image=registry/netfab:cpu",
                     f"--output={tmp_path}")
    assert result.returncode == 0, result.stderr
    files = sorted(tmp_path.glob("*.yaml"))
    manifests = {yaml.safe_load(path.read_text())["kind"]: yaml.safe_load(path.read_text()) for path in files}
    assert set(manifests) == {"Deployment", "Service", "HorizontalPodAutoscaler", "Job"}
    for manifest in manifests.values():
        validate(manifest)

    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert manifests["Deployment"]["spec"]["replicas"] == 3
    assert container["image"] == "registry/netfab:cpu"
    assert {"name": "NETFAB_MODEL_URI", "value": MODEL} in container["env"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["terminationGracePeriodSeconds"] > 30  # longer than fab serve's drain
    assert manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 3
    job = manifests["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["resources"]["limits"]["nvidia.com/gpu"] == 1 and job["command"][:2] == ["fab", "train"]


def test_fab_k8s_warns_of_paths_no_pod_can_see(tmp_path):
    local = run_fab("k8s", "--model=artifacts/deep_v1/run/model.zip", "--train-output=artifacts",
                    f"--output={tmp_path}")
    assert local.returncode == 0, local.stderr
    assert local.stderr.splitlines() == [
        "warning: --model=artifacts/deep_v1/run/model.zip is a path on this machine, which the pods cannot "
        "see; give the zip's gs:// URI (fab train --output=gs://BUCKET/models publishes it there)",
        "warning: --train-output=artifacts is a path on this machine, which the pods cannot see; "
        "give a gs:// URI such as gs://BUCKET/models, or the Job's zip is lost with its pod"]
    assert len(list(tmp_path.glob("*.yaml"))) == 4  # written all the same
    in_bucket = run_fab("k8s", f"--model={MODEL}", f"--output={tmp_path}")
    assert in_bucket.returncode == 0 and in_bucket.stderr == ""


def test_the_validator_rejects_a_broken_manifest():
    """The check above means something: a misspelt field fails the same validation."""
    broken = deployment(K8sSettings(model_uri=MODEL))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_bad_settings_are_refused_with_what_to_do():
    with pytest.raises(NetfabError, match="replicas"):
        K8sSettings(model_uri=MODEL, replicas=0)
    with pytest.raises(NetfabError, match="not a valid Kubernetes name"):
        build_manifests(K8sSettings(model_uri=MODEL, name="Net_Fab"))
    result = run_fab("k8s", "--model=", "--output=/tmp/unused-netfab-k8s")
    assert result.returncode == 1 and "--model is required" in result.stderr


def test_fab_k8s_publishes_the_manifests_to_a_bucket(gcs):
    output = gcs.uri("deploy/k8s")
    result = run_fab("k8s", f"--model={MODEL}", f"--output={output}")
    assert result.returncode == 0, result.stderr
    names = ["00-deployment.yaml", "01-service.yaml", "02-hpa.yaml", "03-training-job.yaml"]
    assert gcs.names("deploy/") == [f"deploy/k8s/{name}" for name in names]
    assert result.stdout.splitlines() == [f"{output}/{name}" for name in names] + [f"kubectl apply -f {output}/"]
    blob = gcs.client.bucket(gcs.bucket).blob("deploy/k8s/00-deployment.yaml")
    validate(yaml.safe_load(blob.download_as_bytes()))


def test_fab_k8s_for_an_experiment_serves_every_arm_in_one_deployment_scaled_on_in_flight_requests(tmp_path):
    repository, experiment = "gs://models/", "gs://experiments/bookings.json"
    result = run_fab("k8s", f"--model={repository}", f"--experiment={experiment}",
                     "--label=deep_v1/labels/stable=20261122-061212-ddde1781607f536e", f"--output={tmp_path}")
    assert result.returncode == 0, result.stderr
    manifests = {m["kind"]: m for m in (yaml.safe_load(p.read_text()) for p in sorted(tmp_path.glob("*.yaml")))}
    for manifest in manifests.values():
        validate(manifest)
    assert [m for m in manifests if m == "Deployment"] == ["Deployment"]  # one Deployment for all arms
    container = manifests["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--experiment=$(NETFAB_EXPERIMENT_URI)" in container["command"]
    assert "--label=deep_v1/labels/stable=20261122-061212-ddde1781607f536e" in container["command"]
    assert {"name": "NETFAB_EXPERIMENT_URI", "value": experiment} in container["env"]
    metrics = manifests["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert {m["type"] for m in metrics} == {"Resource", "Pods"}
    pods = next(m["pods"] for m in metrics if m["type"] == "Pods")
    assert pods["metric"]["name"] == "netfab_requests_in_flight"  # the gauge fab serve exports
    assert pods["target"] == {"type": "AverageValue", "averageValue": "32"}
    plain = run_fab("k8s", f"--model={MODEL}", f"--output={tmp_path / 'plain'}")
    hpa = yaml.safe_load((tmp_path / "plain" / "02-hpa.yaml").read_text())
    assert plain.returncode == 0 and [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
