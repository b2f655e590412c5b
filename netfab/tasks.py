"""What a training task is: its target, the output the model exports, and the figure that chooses.

    from netfab.tasks import TASKS
    task = TASKS[config.task]          # binary | multiclass | multilabel | regression
    task.output, task.per_class, task.monitor, task.higher_is_better

One home for the task names, so the config's allowed values, the head (models/common.py), the
loop's loss and metrics (netfab/train/), and the served output (netfab/serve/) never drift apart.
The exact metrics per task live in netfab/train/metrics.py.
"""
from typing import NamedTuple


class Task(NamedTuple):
    target: str  # what label_column holds, for docs and error messages
    output: str  # the exported signature's output name
    per_class: bool  # output [rows, classes] with the class names recorded; else [rows]
    epoch_metric: str  # Keras's figure beside the loss after every epoch (metrics.csv, the log)
    monitor: str  # the validation figure (loss or epoch_metric) that chooses the epoch
    higher_is_better: bool  # of monitor
    monitor_exact: str  # the same figure among the exact metrics (netfab.train.metrics.task_metrics)


TASKS: dict[str, Task] = {
    "binary": Task("0 or 1 (or true/false)", "probability", False, "auc", "auc", True, "auc"),
    "multiclass": Task("one class per row: a string, an integer or a boolean", "probability", True,
                       "accuracy", "loss", False, "loss"),
    "multilabel": Task("a list of tags per row (strings; null or [] for none)", "probability", True,
                       "auc", "auc", True, "micro_auc"),
    "regression": Task("a number", "value", False, "rmse", "rmse", False, "rmse"),
}
