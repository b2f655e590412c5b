"""Training progress: a line during an epoch with rows, rows/s and ETA, and one when it ends."""
import logging

from netfab.train.progress import TrainingProgress


def test_progress_lines_name_rows_rate_eta_and_metrics(caplog):
    progress = TrainingProgress(rows=10_000, batch_size=1024, epochs=3, every_seconds=0)
    with caplog.at_level(logging.INFO, logger="netfab.train.progress"):
        progress.on_epoch_begin(1)
        progress.on_train_batch_end(3, {"loss": 0.5})  # steps 0..3 done: 4,096 rows
        progress.on_epoch_end(1, {"loss": 0.4, "auc": 0.8, "val_loss": 0.45, "val_auc": 0.78})
    during, end = caplog.messages
    assert during.startswith("epoch 2/3  4,096/10,000 rows (40%)") and "rows/s  ETA" in during
    assert "loss 0.5000" in during
    assert end.startswith("epoch 2/3 done in") and "validation loss 0.4500 AUC 0.7800" in end


def test_no_line_before_the_interval_has_passed(caplog):
    progress = TrainingProgress(rows=10_000, batch_size=1024, epochs=1, every_seconds=3600)
    with caplog.at_level(logging.INFO, logger="netfab.train.progress"):
        progress.on_epoch_begin(0)
        progress.on_train_batch_end(0, {"loss": 0.5})
    assert caplog.messages == []
