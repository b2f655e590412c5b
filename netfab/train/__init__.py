"""The training wing, `fab train` and `fab ci`: effective config + dataset URI -> a published model zip.

    loop.py     train(): load and prepare the rows, fit with checkpoints and early stopping, package
    metrics.py  exact AUC and log loss of a split
    plots.py    metrics.png
    ci.py       what Jenkins runs: every variant on the fixture, each zip checked

Imports the core, storage and dataset wings, and the researcher's models/ and data/.
"""
