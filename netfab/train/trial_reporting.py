"""A training run that is a tuning trial: its validation AUC goes to the study after every epoch,
and it stops when the study's pruner says the trial is not worth finishing.

    reporter = StudyReporter.from_environ(os.environ, config.epochs)   # None unless a tuning worker started us
    core.fit(..., callbacks=[..., reporter])
    if reporter and reporter.pruned_at:                 # loop.train removes the run, raises TrialPruned

The tuning worker (netfab/tune/worker.py) sets the three NETFAB_TRIAL_* variables; a plain
`fab train`, or the reproduce command on the leaderboard, has none and trains as usual. The
value reported is Keras's validation AUC of the epoch (the same figure the epoch's log line shows).
"""
import keras

from netfab.study_storage import ENV_STORAGE, ENV_STUDY, ENV_TRIAL_ID, SPEC_ATTR, make_pruner, open_storage


class TrialPruned(Exception):
    """The study's pruner stopped this run after `epoch` epochs; no model zip was written."""

    def __init__(self, epoch: int, value: float):
        super().__init__(f"pruned after epoch {epoch} (validation AUC {value:.4f})")
        self.epoch, self.value = epoch, value


class StudyReporter(keras.callbacks.Callback):
    def __init__(self, trial):
        super().__init__()
        self.trial = trial
        self.pruned_at = 0
        self.value = float("nan")

    @classmethod
    def from_environ(cls, environ, epochs: int) -> "StudyReporter | None":
        """The reporter for the trial the NETFAB_TRIAL_* variables name, judged by the pruner the
        study's settings name; None without them. `epochs`: this run's epoch budget."""
        if not environ.get(ENV_TRIAL_ID):
            return None
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=environ[ENV_STUDY],
                                  storage=open_storage(environ[ENV_STORAGE]))
        settings = study.user_attrs[SPEC_ATTR]
        study.pruner = make_pruner(settings["pruner"], settings["startup_trials"], epochs)
        return cls(optuna.trial.Trial(study, int(environ[ENV_TRIAL_ID])))

    def on_epoch_end(self, epoch, logs=None):
        self.value = float(logs["val_auc"])
        self.trial.report(self.value, step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True
