"""The tuning wing, `fab tune`: a search space -> a study of trials, each a `fab train` in its own process.

    run.py           new_study / run_study: hands trial indices to slots, leaderboard and study.png at the end
    study.py         StudySpec: the study folder, a trial's values, environment and reproduce command
    search_space.py  search_spaces/*.json checked against NetConfig, seeded sampling
    trial_runner.py  `python -m netfab.tune.trial_runner`: one trial on this machine, its trial.json
    slots.py         where a trial runs: local processes (HostLost when a host cannot)
    ssh_hosts.py     one slot per GPU on `fab -H` hosts, over Fabric
    k8s_job.py       the study as a Kubernetes Indexed Job
    report.py        leaderboard.csv, study.png, the summary

Imports the core and the storage wing, not train: a trial is `fab train` in its own process,
which hands back its zip and metrics as a file (`fab train --result=PATH`).
"""
