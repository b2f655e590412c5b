"""netfab tasks. `fab -l` lists them; `fab --help train` explains one.

    fab train                                   # deep_v1 on the bundled 2K fixture -> ./artifacts
    NET_LEARNING_RATE=0.01 fab train --variant=rnn_v1 --dataset=out/part-*.json.gz
    fab config --variant=rnn_v1                 # effective config and the source of each value
    fab ci                                      # the Jenkins sanity run

Each task parses its options and calls one function in netfab/; a user's mistake ends in a
one-line `error: ...` and exit code 1, never a traceback (an option value of the wrong type
too: netfab.cli types every option). Heavy imports (TensorFlow) happen inside the tasks so
that `fab -l` stays instant.
"""
import logging
import sys

import netconfig
from netfab.cli import task
from netfab.errors import exit_on_user_error

FIXTURE = "the bundled 2K-row fixture (data/fixtures/sanity_2k.json)"


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")


def _fixture_path() -> str:
    from data.fixture import FIXTURE_PATH

    return str(FIXTURE_PATH)


@task(help={"variant": f"variant in variant_config.json (default {netconfig.DEFAULT_VARIANT})",
            "dataset": f"dataset URI: a file, folder or glob of NDJSON shards (default: {FIXTURE})",
            "output": "where model zips go: <output>/<variant>/<run_id>/model.zip (default ./artifacts)",
            "docker": "train inside the training image (fab build-image first); see docs/docker.md",
            "device": "with --docker: cpu or gpu (gpu needs the NVIDIA Container Toolkit)",
            "image": "with --docker: the image tag (default netfab:<device>)",
            "result": "also write the run's result as JSON here: zip URI, run id, metrics"})
def train(c, variant=netconfig.DEFAULT_VARIANT, dataset=None, output="artifacts", docker=False,
          device="cpu", image=None, result=None):
    """Train a variant on a dataset and write its model zip."""
    if docker:
        if result:  # the container sees only the output folder; the file would be lost in it
            from invoke.exceptions import Exit

            raise Exit("error: --result is not supported with --docker; run without --docker, "
                       "or read the zip's config.json (fab inspect)")
        return _in_container(["train", f"--variant={variant}"], output, dataset, device, image)
    _setup_logging()
    with exit_on_user_error():
        from netfab import storage
        from netfab.config import load_config

        if result and not storage.local_path(result).parent.is_dir():  # found before training, not after
            from netfab.errors import NetfabError

            raise NetfabError(f"--result={result}: its folder does not exist; create it or pick another path")
        # A config or dataset mistake is found in a second, before TensorFlow takes its time to load.
        effective = load_config(variant)
        storage.dataset_files(dataset or _fixture_path())
        from netfab.train.loop import train as run_training
        from netfab.train.trial_reporting import TrialPruned

        try:
            run = run_training(effective, dataset or _fixture_path(), output)
        except TrialPruned as pruned:  # a tuning trial its study stopped: no zip, a result saying so
            if result:
                storage.write_json_atomically(storage.local_path(result), {
                    "pruned": {"epoch": pruned.epoch, "validation_auc": pruned.value}})
            print(f"trial {pruned}")
            return
        if result:  # for programs (a tuning trial): whole or absent, so never half a record
            import dataclasses

            storage.write_json_atomically(storage.local_path(result), dataclasses.asdict(run))
    from netfab.train.loop import describe_result

    print(f"model zip: {run.zip_uri}")
    print(describe_result(run.metrics, effective.config.task))


@task(help={"output": "where the sanity zips go (default ./artifacts/ci)",
            "dataset": f"dataset URI (default: {FIXTURE})",
            "min_auc": "test AUC every variant must reach (default 0.65)",
            "variants": "comma-separated variants to check (default: every variant in variant_config.json)",
            "docker": "run inside the CPU training image (fab build-image first)",
            "image": "with --docker: the image tag (default netfab:cpu)",
            "baseline": "also gate every zip against this model zip as fab evaluate does (e.g. the live model)",
            "max_auc_drop": "with --baseline: AUC a zip may lose against it (default 0.005)",
            "max_log_loss_rise": "with --baseline: log loss a zip may gain against it (default 0.01)"})
def ci(c, output="artifacts/ci", dataset=None, min_auc=0.65, docker=False, image=None, baseline="",
       max_auc_drop=0.005, max_log_loss_rise=0.01, variants=""):
    """Jenkins sanity: train every variant on the fixture and verify each model zip (--baseline: and gate it)."""
    if docker:
        if baseline:  # the container sees only the output folder
            from invoke.exceptions import Exit

            raise Exit("error: --baseline is not supported with --docker; run fab evaluate on the zips it writes")
        return _in_container(["ci", f"--min-auc={min_auc}", *([f"--variants={variants}"] if variants else [])],
                             output, dataset, "cpu", image)
    _setup_logging()
    with exit_on_user_error():
        from netfab.train.ci import format_report, run_ci
        from netfab.train.evaluate import Gate

        checks = run_ci(output, dataset or _fixture_path(), [v for v in variants.split(",") if v] or None,
                        min_auc=float(min_auc), baseline=baseline,
                        gate=Gate(float(max_auc_drop), float(max_log_loss_rise)))
    print(format_report(checks))
    print(f"ci passed: {len(checks)} variant(s)")


@task(help={"variant": f"variant in variant_config.json (default {netconfig.DEFAULT_VARIANT})"})
def config(c, variant=netconfig.DEFAULT_VARIANT):
    """Print the effective config of a variant and where each value came from."""
    with exit_on_user_error():
        from netfab.config import load_config

        print(load_config(variant).describe())


@task
def variants(c):
    """List the variants, the keys each one changes, and the registered architectures."""
    with exit_on_user_error():
        import models
        from netfab.config import read_variants

        for name, deltas in read_variants().items():
            changes = ", ".join(f"{k}={v}" for k, v in deltas.items()) or "(defaults)"
            print(f"{name:<12} {changes}")
        print("\narchitectures:")
        for name, entry in models.REGISTRY.items():
            print(f"  {name:<10} {entry.summary}")


@task(help={"rows": "how many rows (default 2000)", "seed": "generator seed (default 7)",
            "out": "output file, .json or .json.gz (required, unless --force)",
            "force": "with no --out: regenerate the bundled fixture data/fixtures/sanity_2k.json",
            "shift": "draw from a moved population (more JP/BR/IN rows, prices x1.6): rows to test drift on"})
def fixture(c, rows=2000, seed=7, out=None, force=False, shift=False):
    """Write a deterministic booking dataset (newline-delimited JSON)."""
    with exit_on_user_error():
        from data.fixture import write_fixture
        from netfab.errors import NetfabError

        if not out and shift:
            raise NetfabError("fab fixture --shift needs --out=PATH: the bundled fixture stays the unshifted rows")
        if not out and not force:  # the bundled fixture is what CI and the tests train on
            raise NetfabError(f"fab fixture needs --out=PATH for the rows it writes; to regenerate the "
                              f"bundled fixture {_fixture_path()} itself, pass --force (or name it in --out)")
        summary = write_fixture(out or _fixture_path(), int(rows), int(seed), progress=True, shift=shift)
    print(f"{summary.rows} rows -> {summary.path} (label rate {summary.label_rate:.3f}, "
          f"{summary.seconds:.1f} s)")


@task(help={"model": "model zip URI"})
def inspect(c, model):
    """Verify a model zip's manifest and print its summary."""
    with exit_on_user_error():
        from netfab.model_zip import ModelZip

        with ModelZip(model) as package:
            print(package.describe())


@task(help={"model": "model zip URI to optimise (a path, file:// or gs://)",
            "output": "URI of the optimised model zip (not the --model zip itself)",
            "to": "xla | int8 | float16 | all (default all: every form measured, the fastest written: "
                  "the smallest product of its 1-row and 1,000-row latency ratios to the original)",
            "dataset": "the training data's URI, if it has moved (default: the source the zip records); "
                       "its test split is rebuilt from it",
            "max_auc_drop": "test AUC a form may lose before it is refused (default 0.002)"})
def optimize(c, model, output, to="all", dataset=None, max_auc_drop=0.002):
    """Write a zip whose numeric core is optimised (XLA, int8, float16), measured side by side with the original."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.train.optimize import format_table, optimize_zip

        report = optimize_zip(model, output, to, dataset, max_auc_drop)
    print(format_table(report))


@task(help={"model": "the candidate model zip URI",
            "baseline": "the model zip it must not be worse than (e.g. the live one); without it only the floors gate",
            "dataset": "score every row of this dataset instead (default: the candidate's test split, rebuilt "
                       "from its training data)",
            "slice": "also report AUC and log loss per value of this column (numbers: per quartile)",
            "output": "folder (or gs:// prefix) for evaluation.json and evaluation.png (default artifacts/evaluation)",
            "max_auc_drop": "AUC the candidate may lose against the baseline (default 0.005)",
            "max_log_loss_rise": "log loss the candidate may gain against the baseline (default 0.01)",
            "min_auc": "fail below this AUC (default: no floor)",
            "max_calibration_error": "fail above this expected calibration error (default: no ceiling)"})
def evaluate(c, model, baseline=None, dataset=None, slice="", output="artifacts/evaluation", max_auc_drop=0.005,
             max_log_loss_rise=0.01, min_auc: float | None = None, max_calibration_error: float | None = None):
    """Score a candidate zip beside a baseline on the same rows; exit 1 when the candidate is worse (docs/evaluation.md)."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.train.evaluate import Gate, check_gate, evaluate_zips, format_table

        gate = Gate(float(max_auc_drop), float(max_log_loss_rise), min_auc, max_calibration_error)
        report = evaluate_zips(model, baseline, dataset, slice, gate, output)
        print(format_table(report))
        check_gate(report)


@task(help={"model": "model zip URI whose reference profile (written by fab train) is the reference",
            "dataset": "rows to compare with it: a file, folder or glob of NDJSON shards (they need no label)",
            "output": "folder (or gs:// prefix) for drift.json and drift.png (default artifacts/drift)"})
def drift(c, model, dataset, output="artifacts/drift"):
    """Per-feature and score drift (PSI) of a dataset against a model's training rows (docs/evaluation.md)."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.train.drift_report import drift_report, format_table

        report = drift_report(model, dataset, output)
    print(format_table(report))


_TUNED_IN_THIS_RUN: set = set()  # `fab -H a,b tune` calls the task once per host: run it once


@task(help={"variant": f"variant in variant_config.json (default {netconfig.DEFAULT_VARIANT})",
            "space": "search space JSON (default search_spaces/<variant>.json)",
            "trials": "how many trials the study holds (default 10); a rerun adds the missing ones",
            "seed": "sampler seed: a sequential study draws the same values every time (default 0)",
            "study": "study name (default <variant>-seed<seed>); the same name resumes it",
            "output": "where study folders go: <output>/<study>/ (default ./studies)",
            "dataset": f"dataset URI (default: {FIXTURE})",
            "sampler": "tpe (learns from finished trials) or random (default tpe)",
            "pruner": "median, hyperband or none: stop a trial whose validation AUC lags (default median)",
            "startup_trials": "random trials before TPE models, finished ones before median prunes (default 5)",
            "storage": "Optuna storage URL, e.g. postgresql://user@host/db for many hosts "
                       "(default: <study>/study.db, SQLite, one machine)",
            "parallel": "local worker processes, one trial each (default 1)",
            "max_failures": "stop after this many failed trials in a row (default 3)",
            "heartbeat": "seconds between a trial's heartbeats; two missed and another worker reruns it (default 60)",
            "report": "only rewrite leaderboard.csv and the pictures from the storage",
            "gpus_per_host": "with -H: workers per host (default: GPUs listed by nvidia-smi, else 1)",
            "remote_dir": "with -H: the project checkout on each host (default: this checkout's path)",
            "remote_python": "with -H: the python that runs workers there (default python3)",
            "k8s": "write a Kubernetes Indexed Job of --parallel workers to this file instead of running",
            "image": "with --k8s: the container image (default netfab:gpu, as fab build-image --device=gpu tags it)"})
def tune(c, variant=netconfig.DEFAULT_VARIANT, space=None, trials=10, seed=0, study=None,
         output="studies", dataset=None, sampler="tpe", pruner="median", startup_trials=5, storage="",
         parallel=1, max_failures=3, heartbeat=60, report=False, gpus_per_host: int | None = None,
         remote_dir=None, remote_python="python3", k8s=None, image="netfab:gpu"):
    """Optuna study (TPE, pruning): each trial a `fab train` in its own process; leaderboard + pictures."""
    _setup_logging()
    hosts = _cli_hosts(c)
    if hosts and tuple(hosts) in _TUNED_IN_THIS_RUN:
        return
    _TUNED_IN_THIS_RUN.add(tuple(hosts))
    with exit_on_user_error():
        from netfab.config import env_overrides
        from netfab.tune.run import choose_workers, new_study, report_study, run_study

        if report:  # the study as its folder records it, whatever the other options say
            print(report_study(f"{output}/{study or f'{variant}-seed{seed}'}"))
            return
        spec = new_study(variant, output, study, int(seed), space, dataset, env_overrides(),
                         sampler, pruner, storage, int(startup_trials))
        if k8s:
            from netfab.tune.k8s_job import write_indexed_job

            print(write_indexed_job(spec, int(trials), k8s, image=image, parallelism=int(parallel)))
            return
        if hosts and not storage:
            from netfab.errors import ConfigError

            raise ConfigError("fab -H ... tune needs --storage=postgresql://... that every host reaches "
                              "(the default SQLite file is for the workers of one machine)")
        workers = choose_workers(hosts, dict(c.connect_kwargs) if hosts else {}, int(parallel),
                                 remote_dir, remote_python, gpus_per_host)
        result = run_study(spec, int(trials), workers, max_failures=int(max_failures),
                           heartbeat=int(heartbeat))
    print(result.summary)


def _cli_hosts(c) -> list[str]:
    """The hosts of `fab -H h1,h2`: Fabric hands the task one Connection per host, the study needs all."""
    from fabric import Connection

    if not isinstance(c, Connection):
        return []
    from fabric.main import program

    return [h for h in (program.core[0].args.hosts.value or c.original_host).split(",") if h]


@task(help={"device": "cpu or gpu: which Dockerfile (Dockerfile.cpu / Dockerfile.gpu)",
            "tag": "image tag (default netfab:<device>)",
            "base_image": "the BASE_IMAGE build arg (default: the Dockerfile's own)",
            "push": "push the tag to its registry after the build"})
def build_image(c, device="cpu", tag=None, base_image=None, push=False):
    """Build the CPU or GPU training image through docker-py, streaming the build log."""
    with exit_on_user_error():
        from netfab.deploy.images import build_image as build

        build(device, tag=tag, base_image=base_image, push=push)


def _in_container(task_args, output, dataset, device, image):
    """Run a task inside the training image; its exit code becomes this task's."""
    from invoke.exceptions import Exit

    with exit_on_user_error():
        from netfab.deploy.containers import run_fab_in_container

        code = run_fab_in_container(task_args, output, dataset, device=device, image=image)
    if code:
        raise Exit(code=code)


@task(iterable=["model", "label"],
      help={"model": "a model zip URI (a path, file:// or gs://), or a model repository (a folder or gs:// "
                     "prefix of zips); repeat for several (docs/serving.md, Several models)",
            "host": "address to bind (default 127.0.0.1; 0.0.0.0 in a container)",
            "port": "TCP port (default 8501, TensorFlow Serving's REST port)",
            "name": "model name in /v1/models/<name> (default: the zip's variant); with several zips, every "
                    "zip is a version of this name",
            "max_batch_rows": "rows per model call at most (default 16384)",
            "max_wait_ms": "how long a batch may wait to fill under concurrent load (default 2)",
            "max_queue_rows": "rows waiting for the model before requests get 503 (default 50000)",
            "timeout": "seconds per request, from its headers to its answer: 408 if the body is late, "
                       "else 504 (default 10)",
            "cache_rows": "LRU prediction cache entries, 0 = off (default 0)",
            "max_body_mb": "largest request body in MB, larger gets 413 (default 32)",
            "admin_token": "enables POST /admin/model (model swap) with this bearer token "
                           "(default: $NETFAB_ADMIN_TOKEN, off when unset)",
            "tf_threads": "TensorFlow inter- and intra-op threads each, 0 = TensorFlow's default, or "
                          "cores / workers with --workers (default 0)",
            "workers": "server processes sharing the port, each with its own model copy (default 1)",
            "idle_timeout": "seconds a connection may go without sending a whole request header, after "
                            "opening or after its last answer, before it is closed (default 15)",
            "max_connections": "open connections per server process; more are answered 503 (default 900)",
            "grpc_port": "also serve TensorFlow Serving's and OIP v2's gRPC APIs on this port, e.g. 8500 "
                         "(default 0: off)",
            "experiment": "an experiment file (JSON: endpoint, arms, shadow, assign_by, salt), a path or gs:// "
                          "URI, re-read every --experiment-poll seconds (docs/serving.md, Experiments)",
            "label": "a label to start with, NAME/labels/LABEL=VERSION (e.g. deep_v1/labels/stable=<run id>); "
                     "repeat for several; PUT /admin/models/NAME/labels/LABEL moves one later",
            "experiment_poll": "seconds between looks at the experiment file for a change (default 5)",
            "log_requests": "request log: a folder or gs:// prefix where sampled requests go as NDJSON "
                            "shards (default: off)",
            "log_fraction": "with --log-requests: the share of requests logged (default 0.01)",
            "log_shard_mb": "with --log-requests: publish a shard once it holds this many MB (default 64)",
            "log_shard_seconds": "with --log-requests: or once it is this old (default 300)",
            "drift_rows_per_s": "rows a second binned for drift against the zips' training profiles, shared by "
                                "the models and arms with traffic; netfab_drift_psi at /metrics (default 2000; 0: off)",
            "gc_young_objects": "allocations between Python's young garbage collections once serving (default "
                                "20000; Python's own: 700)"})
def serve(c, model=None, host="127.0.0.1", port=8501, name="", max_batch_rows=16384, max_wait_ms=2.0,
          max_queue_rows=50_000, timeout=10.0, cache_rows=0, max_body_mb=32.0, admin_token=None,
          tf_threads=0, workers=1, idle_timeout=15.0, max_connections=900, grpc_port=0, experiment="",
          experiment_poll=5.0, label=None, log_requests="", log_fraction=0.01, log_shard_mb=64.0, log_shard_seconds=300.0,
          drift_rows_per_s=2000.0, gc_young_objects=20_000):
    """Serve model zips over TensorFlow Serving's REST API (and gRPC: --grpc-port) until SIGTERM (docs/serving.md)."""
    import os

    _setup_logging()
    with exit_on_user_error():
        from netfab.serve.app import ServerSettings, model_sources, serve as run_server

        settings = ServerSettings(
            host=host, port=int(port), model_name=name, max_batch_rows=int(max_batch_rows),
            max_wait_ms=float(max_wait_ms), max_queue_rows=int(max_queue_rows), timeout_s=float(timeout),
            cache_rows=int(cache_rows), max_body_mb=float(max_body_mb),
            admin_token=admin_token or os.environ.get("NETFAB_ADMIN_TOKEN", ""), tf_threads=int(tf_threads),
            workers=int(workers), idle_timeout_s=float(idle_timeout), max_connections=int(max_connections),
            grpc_port=int(grpc_port), labels=tuple(label or ()), experiment_uri=experiment, experiment_poll_s=float(experiment_poll),
            log_uri=log_requests, log_fraction=float(log_fraction), log_shard_mb=float(log_shard_mb),
            log_shard_seconds=float(log_shard_seconds), drift_rows_per_s=float(drift_rows_per_s),
            gc_young_objects=int(gc_young_objects))
        run_server(model_sources(model, name), settings)


@task(help={"model": "model zip URI (a path, file:// or gs://)",
            "input": "NDJSON rows to score: a file, a folder of shards or a glob (.gz too)",
            "output": "where the scores go: CSV, or NDJSON if it ends in .json/.jsonl/.ndjson",
            "batch_rows": "rows per model call (default 16384)",
            "threads": "model calls at a time (default 2)",
            "id_column": "the column written beside each row's output (default: the model's id_column; "
                         "with none, the row number)"})
def predict(c, model, input, output, batch_rows=16384, threads=2, id_column=None):
    """Score a file of rows offline: `<id>,<output>` per row, in input order."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.serve.batch_prediction import predict_file

        summary = predict_file(model, input, output, int(batch_rows), int(threads), id_column=id_column)
    print(f"{summary.rows} rows scored -> {summary.output}  ({summary.items_per_second:,.0f} items/s "
          f"scoring; read {summary.read_seconds:.1f} s, scored {summary.score_seconds:.1f} s, "
          f"wrote {summary.write_seconds:.1f} s)")


@task(iterable=["label"],
      help={"model": "model zip URI the pods serve (gs:// in a cluster), or a model repository prefix",
            "replicas": "serving pods: initial and HPA minimum (default 2)",
            "max_replicas": "HPA maximum (default 8)",
            "image": "serving image (default netfab:cpu)",
            "gpu_image": "image of the GPU training Job (default netfab:gpu)",
            "name": "name prefix and app label (default netfab)",
            "variant": "variant the training Job trains (default deep_v1)",
            "dataset": "dataset URI for the training Job",
            "train_output": "where the training Job publishes its zip",
            "output": "folder for the YAML files (default k8s/)",
            "study": "also an Indexed Job running this study's trials (a folder made by fab tune)",
            "trials": "with --study: how many trials the Indexed Job runs (default 10)",
            "parallel": "with --study: trial pods at a time (default 2)",
            "experiment": "an experiment file (gs://) every pod serves; --model is then the model repository "
                          "holding its arms (one Deployment for all arms: docs/serving.md)",
            "label": "fab serve --label for the pods, NAME/labels/LABEL=VERSION; repeat for several",
            "target_in_flight": "HPA: also scale out above this many requests in flight per pod, through a "
                                "Prometheus adapter (default: 32 with --experiment, else CPU only)"})
def k8s(c, model, replicas=2, max_replicas=8, image="netfab:cpu", gpu_image="netfab:gpu",
        name="netfab", variant=netconfig.DEFAULT_VARIANT, dataset="", train_output="", output="k8s",
        study="", trials=10, parallel=2, experiment="", label=None, target_in_flight: int | None = None):
    """Write Kubernetes manifests: serving Deployment, Service, HPA, GPU training Job (+ tuning Job)."""
    with exit_on_user_error():
        from netfab.deploy.k8s_manifests import K8sSettings, local_path_warnings, write_manifests

        settings = K8sSettings(model_uri=model, name=name, image=image, gpu_image=gpu_image,
                               replicas=int(replicas), max_replicas=int(max_replicas),
                               train_variant=variant, train_dataset=dataset, train_output=train_output,
                               experiment_uri=experiment, labels=tuple(label or ()),
                               target_in_flight=(32 if experiment else 0) if target_in_flight is None
                               else int(target_in_flight))
        for warning in local_path_warnings(settings):  # written all the same: a volume may hold the path
            print(warning, file=sys.stderr)
        paths = write_manifests(settings, output)
        if study:
            from netfab.tune.study import read_spec
            from netfab.tune.k8s_job import write_indexed_job

            print(write_indexed_job(read_spec(study), int(trials), f"{output}/04-tune-job.yaml",
                                    image=gpu_image, parallelism=int(parallel)))
    for path in paths:
        print(path)
    print(f"kubectl apply -f {output}/")


@task(iterable=["param"],
      help={"variant": f"variant whose config names the query and the engine settings (default {netconfig.DEFAULT_VARIANT})",
            "out": "dataset URI for the shards: a folder or gs://bucket/prefix (default artifacts/datasets/<query>)",
            "engine": "bigquery | duckdb (default: bigquery when a GCP project is configured, else duckdb)",
            "start": "start_date parameter, YYYY-MM-DD", "end": "end_date parameter, YYYY-MM-DD",
            "param": "NAME=VALUE for any parameter the query declares; repeat for several",
            "dry_run": "check the query and report the bytes it would scan, write nothing",
            "overwrite": "replace a dataset already at --out"})
def dataset(c, variant=netconfig.DEFAULT_VARIANT, out=None, engine=None, start=None, end=None,
            param=None, dry_run=False, overwrite=False):
    """Run the config's query (data/queries/<query>.sql) and write its rows as NDJSON shards."""
    _setup_logging()
    with exit_on_user_error():
        from netfab.config import load_config
        from netfab.dataset.make import make_dataset, parse_params

        effective = load_config(variant)
        params = parse_params(param or [], start=start, end=end)
        out = out or f"artifacts/datasets/{effective.config.query}"
        result = make_dataset(effective, out, params, engine=engine, dry_run=dry_run, overwrite=overwrite)
    scanned = "" if result.bytes_processed is None else f", {_size(result.bytes_processed)} scanned"
    if result.dry_run:
        print(f"dry run: query {result.query} on {result.engine} is valid{scanned}; nothing written")
        return
    jobs = f", jobs {' '.join(result.job_ids)}" if result.job_ids else ""
    print(f"dataset: {result.uri}  ({result.rows:,} rows in {len(result.shards)} shard(s), "
          f"{result.engine}{scanned}{jobs}, {result.seconds:.0f} s)")
    print(f"train on it: fab train --variant={variant} --dataset={result.uri}")


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


@task(help={"rows": "impressions (default 20000)", "seed": "generator seed (default 7)",
            "out": "warehouse folder (default: the config's warehouse, data/warehouse)"})
def warehouse(c, rows=20000, seed=7, out=None):
    """Write the sample warehouse (users, listings, impressions, bookings) for the duckdb engine."""
    with exit_on_user_error():
        from data.warehouse import write_warehouse
        from netfab.config import load_config

        summary = write_warehouse(out or load_config().config.warehouse, int(rows), int(seed))
    tables = ", ".join(f"travel.{name} {count:,}" for name, count in summary.rows.items())
    print(f"warehouse {summary.path}: {tables} rows ({summary.seconds:.1f} s)")
