"""The tuning wing, `fab tune`: a search space -> an Optuna study of trials, each a `fab train` in
its own process that reports its validation AUC per epoch and is pruned when it lags.

    run.py            new_study / run_study / report_study: starts workers, shows progress, reports
    study.py          StudySpec (study.json), the Optuna study and its seeded sampler, a trial's command
    search_space.py   search_spaces/*.json checked against NetConfig, mapped onto Optuna distributions
    worker.py         `python -m netfab.tune.worker`: ask for a trial, run it, tell, until the budget
    records.py        the storage's trials as records: status, budget spent, lost trials run again
    local_workers.py  --parallel=N worker processes on this machine
    ssh_hosts.py      one worker per GPU on `fab -H` hosts, over Fabric
    k8s_job.py        the study's workers as a Kubernetes Indexed Job
    report.py         leaderboard.csv, study.png, Optuna's pictures, the summary

Imports the core (netfab.study_storage: the storage and pruner a trial shares with its worker)
and the storage wing, not train: a trial is `fab train` in its own process, which hands back
its zip and metrics as a file (`fab train --result=PATH`).
"""
