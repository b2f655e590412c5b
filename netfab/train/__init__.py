"""The training wing, `fab train`, `fab ci` and `fab optimize`: effective config + dataset URI -> a
published model zip, and a model zip -> one whose numeric core is optimised.

    loop.py            train(): load and prepare the rows, fit with checkpoints and early stopping, package
    metrics.py         exact AUC and log loss of a split
    plots.py           metrics.png
    ci.py              what Jenkins runs: every variant on the fixture, each zip checked
    optimize.py        fab optimize: a zip's forms built, scored on its test split, timed, the chosen one written
    core_forms.py      the optimised forms of a numeric core: xla, int8, float16
    zip_test_split.py  a zip's test split rebuilt from its dataset

Imports the core, storage and dataset wings, and the researcher's models/ and data/. Serving code
(fab ci's SavedModel check, fab optimize's timing) runs in a fresh process, never imported.
"""
