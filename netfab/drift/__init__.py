"""Drift: what a model's training rows and scores looked like, and how far other rows are from it.

    profile.py   ReferenceProfile: per-feature and score histograms fitted at training (written into
                 dataset_metadata.json), and the same bins counted for any rows
    psi.py       the population stability index between two histograms, and its documented thresholds
    monitor.py   DriftMonitor: the same histograms over a sliding window of traffic, for the server

Part of the core: training writes the profile, `fab drift` (train wing) and the server read it.
Imports the core's model zip and data/ (the front end's tokeniser); no TensorFlow.
"""
