"""Exact evaluation metrics on numpy arrays (Keras's streaming AUC is an approximation)."""
import numpy as np


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve by the rank-sum formula, ties counted half."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        raise ValueError("AUC needs both classes among the labels")
    ranks = _midranks(np.asarray(scores, dtype="float64"))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auc_difference(labels, scores_a, scores_b) -> tuple[float, float]:
    """AUC(a) - AUC(b) of two models scoring the same rows, and its standard error by DeLong's
    method (DeLong, DeLong & Clarke-Pearson 1988; the midrank form of Sun & Xu 2014). Paired: the
    models' errors on the same rows are correlated, which a per-model error would ignore."""
    labels = np.asarray(labels, dtype=bool)
    m, n = int(labels.sum()), int((~labels).sum())
    if m < 2 or n < 2:
        raise ValueError("an AUC difference's error needs two rows of each class")
    aucs, per_positive, per_negative = [], [], []
    for scores in (scores_a, scores_b):
        scores = np.asarray(scores, dtype="float64")
        positives, negatives = scores[labels], scores[~labels]
        together = _midranks(np.concatenate([positives, negatives]))
        aucs.append((together[:m].sum() - m * (m + 1) / 2) / (m * n))
        # Each positive's share of negatives scored below it; each negative's of positives above it.
        per_positive.append((together[:m] - _midranks(positives)) / n)
        per_negative.append(1.0 - (together[m:] - _midranks(negatives)) / m)
    covariance = np.cov(per_positive) / m + np.cov(per_negative) / n
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    return float(aucs[0] - aucs[1]), float(np.sqrt(max(variance, 0.0)))


def log_loss(labels, probabilities) -> float:
    p = np.clip(np.asarray(probabilities, dtype="float64"), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype="float64")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


# --- the other tasks (netfab/tasks.py); numpy alone: the image carries no scikit-learn/scipy -----

def multiclass_log_loss(labels, probabilities) -> float:
    """Mean -log p(true class); labels: class indices, probabilities: [rows, classes]."""
    p = np.asarray(probabilities, dtype="float64")
    return float(-np.mean(np.log(np.clip(p[np.arange(len(p)), labels], 1e-7, 1.0))))


def top_k_accuracy(labels, probabilities, k: int) -> float:
    """Share of rows whose class is among the k likeliest (k=1: accuracy); ties broken by class order."""
    p = np.asarray(probabilities)
    k = min(k, p.shape[1])
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return float((top == np.asarray(labels)[:, None]).any(axis=1).mean())


def f1_scores(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """(micro, macro) F1 of boolean [rows, classes] matrices; macro over the classes that occur in
    `truth` or `predicted` (a class neither holds nor predicts has no F1)."""
    tp = (truth & predicted).sum(axis=0).astype("float64")
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    present = (tp + fp + fn) > 0
    per_class = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    return float(micro), float(per_class.mean()) if present.any() else 0.0


def multilabel_aucs(labels, probabilities) -> tuple[float, float]:
    """(micro, macro) ROC AUC: micro over every (row, tag) pair, macro the mean over the tags with
    both a tagged and an untagged row in this split."""
    y, p = np.asarray(labels, bool), np.asarray(probabilities)
    per_tag = [roc_auc(y[:, j], p[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return roc_auc(y.ravel(), p.ravel()), float(np.mean(per_tag)) if per_tag else float("nan")


def task_metrics(task: str, labels, outputs, config) -> dict[str, float]:
    """Every exact metric of `task` for these labels and model outputs, by name (metrics.csv's and
    config.json's test_<name>, validation_<name>); `loss` is always the task's training loss."""
    outputs = np.asarray(outputs, dtype="float64")
    if task == "binary":
        return {"auc": roc_auc(labels, outputs), "loss": log_loss(labels, outputs)}
    if task == "multiclass":
        predicted = outputs.argmax(axis=1)
        classes = outputs.shape[1]
        one_hot = np.eye(classes, dtype=bool)
        _, macro_f1 = f1_scores(one_hot[labels], one_hot[predicted])
        return {"accuracy": float((predicted == labels).mean()),
                "top_k_accuracy": top_k_accuracy(labels, outputs, config.top_k),
                "macro_f1": macro_f1, "loss": multiclass_log_loss(labels, outputs)}
    if task == "multilabel":
        micro_auc, macro_auc = multilabel_aucs(labels, outputs)
        micro_f1, macro_f1 = f1_scores(np.asarray(labels, bool), outputs >= config.multilabel_threshold)
        return {"micro_auc": micro_auc, "macro_auc": macro_auc, "micro_f1": micro_f1, "macro_f1": macro_f1,
                "loss": log_loss(labels, outputs)}
    errors = outputs - np.asarray(labels, dtype="float64")
    mse = float(np.mean(errors ** 2))
    variance = float(np.var(labels))
    return {"rmse": mse ** 0.5, "mae": float(np.mean(np.abs(errors))),
            "r2": 1 - mse / variance if variance else float("nan"), "loss": mse}


def trivial_outputs(task: str, train_labels, rows: int) -> np.ndarray:
    """What a model that ignores the features answers, learnt from the training split: its label
    rate (binary), class or tag frequencies (multiclass: its argmax is the majority class;
    multilabel), or its mean (regression). The baseline a trained model must beat."""
    if task == "multiclass":
        classes = int(np.max(train_labels)) + 1
        frequencies = np.bincount(train_labels, minlength=classes) / len(train_labels)
        return np.tile(frequencies, (rows, 1))
    if task == "multilabel":
        return np.tile(np.asarray(train_labels).mean(axis=0), (rows, 1))
    return np.full(rows, float(np.mean(train_labels)))
