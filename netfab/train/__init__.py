"""The training wing, `fab train`, `fab ci`, `fab optimize`, `fab evaluate` and `fab drift`: effective
config + dataset URI -> a published model zip; a model zip -> one whose numeric core is optimised,
its figures beside another zip's, or its drift on a dataset.

    loop.py            train(): load and prepare the rows, fit with checkpoints and early stopping, package
    metrics.py         exact metrics of a split per task (AUC, log loss; accuracy, top-k, F1; RMSE, MAE, R²),
                       a trivial model's outputs, AUC differences
    plots.py           metrics.png, evaluation.png, drift.png
    ci.py              what Jenkins runs: every variant on the fixture, each zip checked
    optimize.py        fab optimize: a zip's forms built, scored on its test split, timed, the chosen one written
    core_forms.py      the optimised forms of a numeric core: xla, int8, float16
    zip_test_split.py  the rows a zip is scored on: its test split rebuilt from its dataset, or a dataset's rows
    zip_scores.py      a zip's SavedModel scoring raw columns
    evaluate.py        fab evaluate: a candidate beside a baseline on the same rows, figures, the gate
    drift_report.py    fab drift: a dataset against a zip's reference profile (netfab/drift), PSI per column

Imports the core, storage and dataset wings, and the researcher's models/ and data/. Serving code
(fab ci's SavedModel check, fab optimize's timing) runs in a fresh process, never imported.
"""
