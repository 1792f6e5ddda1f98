"""Generate the sample prediction sets shipped in this folder.

Both sets come from real training runs: a small numpy MLP trained with Adam on a
seeded synthetic Gaussian-mixture task, with the validation logits saved after each
epoch in the input format that lossacc reads.

- ``balanced/``: 10 balanced classes, Parquet, one file per epoch.
- ``imbalanced/``: 5 classes with skewed priors, NPZ, every second epoch saved.

In both, about 1.5% of the validation samples are confidently wrong (mislabeled in
``balanced``, corrupted features in ``imbalanced``), so the mean validation loss has a
minimum mid-training and then rises while accuracy keeps rising or holds.

Run ``python sample_data/generate.py``; only numpy and pyarrow are needed. The output
is deterministic: running it twice gives identical arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- model


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, max-shifted for stability."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def per_sample_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy of each row in nats, computed in float64."""
    logp = log_softmax(logits.astype(np.float64))
    return -logp[np.arange(len(labels)), labels]


class MLP:
    """One-hidden-layer ReLU network with a softmax output, trained with Adam."""

    def __init__(self, n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator):
        # He initialisation for the ReLU layer, small output layer.
        self.params = [
            rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_hidden)),
            np.zeros(n_hidden),
            rng.normal(0.0, np.sqrt(1.0 / n_hidden), (n_hidden, n_out)),
            np.zeros(n_out),
        ]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def logits(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2 = self.params
        return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2

    def adam_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        w1, b1, w2, b2 = self.params
        hidden = np.maximum(x @ w1 + b1, 0.0)
        grad_z = np.exp(log_softmax(hidden @ w2 + b2))
        grad_z[np.arange(len(y)), y] -= 1.0
        grad_z /= len(y)
        grad_h = (grad_z @ w2.T) * (hidden > 0)
        grads = [x.T @ grad_h, grad_h.sum(0), hidden.T @ grad_z, grad_z.sum(0)]
        self.t += 1
        for i, g in enumerate(grads):
            self.m[i] = 0.9 * self.m[i] + 0.1 * g
            self.v[i] = 0.999 * self.v[i] + 0.001 * g * g
            m_hat = self.m[i] / (1.0 - 0.9**self.t)
            v_hat = self.v[i] / (1.0 - 0.999**self.t)
            self.params[i] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def train(
    model: MLP,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    *,
    n_epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Mini-batch training; returns the float32 validation logits after every epoch."""
    history = []
    for _ in range(n_epochs):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            model.adam_step(x_train[batch], y_train[batch], lr)
        history.append(model.logits(x_val).astype(np.float32))
    return history


# --------------------------------------------------------------------------- data


def gaussian_mixture(
    n: int,
    means: np.ndarray,
    priors: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n points; class k is an equal mixture of the sub-clusters ``means[k]``."""
    n_classes, n_sub, n_dim = means.shape
    labels = rng.choice(n_classes, size=n, p=priors)
    sub = rng.integers(0, n_sub, size=n)
    x = means[labels, sub] + rng.normal(0.0, 1.0, (n, n_dim))
    return x, labels


# --------------------------------------------------------------------------- writers


def clear(folder: Path, pattern: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(pattern):
        old.unlink()


def write_parquet_epochs(
    folder: Path,
    history: list[np.ndarray],
    sample_ids: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
) -> None:
    clear(folder, "epoch_*.parquet")
    n_samples, n_classes = history[0].shape
    offsets = pa.array(np.arange(0, n_samples * n_classes + 1, n_classes, dtype=np.int32))
    metadata = {b"lossacc.class_names": json.dumps(class_names).encode()}
    for epoch, logits in enumerate(history, start=1):
        table = pa.table(
            {
                "sample_id": pa.array(sample_ids, pa.int64()),
                "label": pa.array(labels, pa.int64()),
                "logits": pa.ListArray.from_arrays(offsets, pa.array(logits.ravel(), pa.float32())),
                "epoch": pa.array(np.full(n_samples, epoch), pa.int64()),
            }
        ).replace_schema_metadata(metadata)
        # Byte-stream-split lets zstd find the shared exponent bytes of the floats.
        pq.write_table(
            table,
            folder / f"epoch_{epoch:03d}.parquet",
            compression="zstd",
            use_dictionary=["label", "epoch"],
            use_byte_stream_split=["logits.list.element"],
        )


def write_npz_epochs(
    folder: Path,
    history: dict[int, np.ndarray],
    sample_ids: np.ndarray,
    labels: np.ndarray,
) -> None:
    clear(folder, "epoch_*.npz")
    for epoch, logits in history.items():
        np.savez_compressed(
            folder / f"epoch_{epoch:03d}.npz",
            sample_ids=sample_ids,
            labels=labels.astype(np.int64),
            logits=logits,
        )


# --------------------------------------------------------------------------- checks


def report(name: str, epochs: list[int], history: list[np.ndarray], labels: np.ndarray) -> None:
    """Print the loss-up/accuracy-up evidence and fail loudly if it is absent."""
    mean_loss = np.array([per_sample_loss(z, labels).mean() for z in history])
    median_loss = np.array([np.median(per_sample_loss(z, labels)) for z in history])
    accuracy = np.array([(z.argmax(1) == labels).mean() for z in history])
    best, last = int(np.argmin(mean_loss)), len(history) - 1
    print(f"{name}: {len(history)} epochs saved, N={len(labels)}, K={history[0].shape[1]}")
    print(
        f"  min-loss epoch {epochs[best]}: loss {mean_loss[best]:.4f}  "
        f"acc {accuracy[best]:.4f}  median loss {median_loss[best]:.4f}"
    )
    print(
        f"  last epoch {epochs[last]}:     loss {mean_loss[last]:.4f}  "
        f"acc {accuracy[last]:.4f}  median loss {median_loss[last]:.4f}"
    )
    if not (0 < best < last and mean_loss[last] > mean_loss[best] + 0.03):
        raise SystemExit(f"{name}: validation loss does not rise after a mid-run minimum")
    if accuracy[last] < accuracy[best]:
        raise SystemExit(f"{name}: validation accuracy fell after the loss minimum")


# --------------------------------------------------------------------------- sets


def make_balanced() -> None:
    """10 classes, 20-D, two sub-clusters per class; 15 of 1000 labels flipped."""
    rng = np.random.default_rng(20240611)
    n_classes, n_dim, n_val, n_flipped = 10, 20, 1000, 15
    means = rng.normal(0.0, 1.2, (n_classes, 2, n_dim))
    priors = np.full(n_classes, 1.0 / n_classes)
    x_train, y_train = gaussian_mixture(4000, means, priors, rng)
    x_val, y_val = gaussian_mixture(n_val, means, priors, rng)
    # Annotation errors in the evaluation set: the model will learn the true class and
    # grow ever more confident in it, so these samples' losses climb all run long.
    flipped = rng.choice(n_val, size=n_flipped, replace=False)
    y_val[flipped] = (y_val[flipped] + rng.integers(1, n_classes, n_flipped)) % n_classes

    model = MLP(n_dim, 64, n_classes, rng)
    history = train(model, x_train, y_train, x_val, n_epochs=32, lr=0.002, batch_size=64, rng=rng)
    sample_ids = np.arange(100_000, 100_000 + n_val, dtype=np.int64)
    class_names = [f"cluster_{k}" for k in range(n_classes)]
    write_parquet_epochs(HERE / "balanced", history, sample_ids, y_val, class_names)
    report("balanced", list(range(1, len(history) + 1)), history, y_val)


def make_imbalanced() -> None:
    """5 classes with priors 0.6/0.2/0.1/0.05/0.05; 15 of 1000 samples with corrupted features."""
    rng = np.random.default_rng(7321)
    n_classes, n_dim, n_val, n_corrupt = 5, 16, 1000, 15
    priors = np.array([0.6, 0.2, 0.1, 0.05, 0.05])
    means = rng.normal(0.0, 1.0, (n_classes, 2, n_dim))
    x_train, y_train = gaussian_mixture(3000, means, priors, rng)
    x_val, y_val = gaussian_mixture(n_val, means, priors, rng)
    # Atypical evaluation points (think of a sensor glitch): correctly labelled, but
    # their features look like a typical member of another class.
    corrupt = rng.choice(n_val, size=n_corrupt, replace=False)
    other = (y_val[corrupt] + rng.integers(1, n_classes, n_corrupt)) % n_classes
    x_val[corrupt] = means[other, rng.integers(0, 2, n_corrupt)] + rng.normal(
        0.0, 0.5, (n_corrupt, n_dim)
    )

    model = MLP(n_dim, 48, n_classes, rng)
    history = train(model, x_train, y_train, x_val, n_epochs=40, lr=0.002, batch_size=64, rng=rng)
    # Validation was run every second epoch only; gaps between saved epochs are normal.
    saved = {epoch: history[epoch - 1] for epoch in range(2, len(history) + 1, 2)}
    sample_ids = np.array([f"rec-{i:05d}" for i in range(n_val)])
    write_npz_epochs(HERE / "imbalanced", saved, sample_ids, y_val)
    report("imbalanced", list(saved), list(saved.values()), y_val)

    prior = np.bincount(y_val, minlength=n_classes) / n_val
    entropy = -(prior * np.log(prior)).sum()
    print(f"  class prior {np.round(prior, 3).tolist()}")
    print(f"  chance loss H(prior) = {entropy:.4f} nats vs ln K = {np.log(n_classes):.4f}")


def main() -> None:
    make_balanced()
    make_imbalanced()


if __name__ == "__main__":
    main()
