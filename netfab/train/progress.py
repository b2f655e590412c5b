"""Progress you can watch: a line every few seconds during an epoch, and one when it ends.

    epoch 2/20  412,672/800,000 rows (52%)  61,204 rows/s  ETA 6 s  loss 0.4123
    epoch 2/20 done in 13 s (61,530 rows/s): train loss 0.4101 AUC 0.8817, validation loss 0.4088 AUC 0.8861

Plain log lines rather than a redrawn bar, so that a terminal, Jenkins' console and a tuning
trial's log.txt (which `fab tune` echoes per epoch) all show the same thing.
"""
import logging
import time

import keras

log = logging.getLogger(__name__)
EVERY_SECONDS = 10.0


class TrainingProgress(keras.callbacks.Callback):
    def __init__(self, rows: int, batch_size: int, epochs: int, every_seconds: float = EVERY_SECONDS,
                 metric: str = "auc"):
        super().__init__()
        self.rows, self.batch_size, self.epochs, self.every = rows, batch_size, epochs, every_seconds
        self.metric = metric  # the task's epoch figure (netfab/tasks.py)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.started = self.last_line = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self.last_line < self.every:
            return
        self.last_line = now
        done = min((batch + 1) * self.batch_size, self.rows)
        rate = done / (now - self.started)
        loss = f"  loss {float(logs['loss']):.4f}" if logs and "loss" in logs else ""
        log.info("epoch %d/%d  %s/%s rows (%d%%)  %s rows/s  ETA %.0f s%s", self.epoch, self.epochs,
                 f"{done:,}", f"{self.rows:,}", 100 * done // self.rows, f"{rate:,.0f}",
                 (self.rows - done) / rate, loss)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.monotonic() - self.started
        logs = logs or {}
        name = self.metric.upper() if self.metric in ("auc", "rmse") else self.metric
        log.info("epoch %d/%d done in %.0f s (%s rows/s): train loss %.4f %s %.4f, validation loss "
                 "%.4f %s %.4f", self.epoch, self.epochs, seconds, f"{self.rows / seconds:,.0f}",
                 logs.get("loss", float("nan")), name, logs.get(self.metric, float("nan")),
                 logs.get("val_loss", float("nan")), name, logs.get(f"val_{self.metric}", float("nan")))
