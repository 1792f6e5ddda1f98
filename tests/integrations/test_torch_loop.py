"""A plain PyTorch training loop with the writer as a context manager (the README's snippet)."""

from __future__ import annotations

import numpy as np
import pytest
from integration_helpers import analyze, check_report, require, task

torch = require("torch")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lossacc_cli.readers import discover, read_epoch  # noqa: E402
from lossacc_cli.writers import PredictionWriter, ValidationSetChanged, metadata_of, with_ids  # noqa: E402

torch.set_num_threads(1)


def _model(n_features=10, n_classes=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_features, 64), nn.ReLU(), nn.Linear(64, n_classes))


def _train_one_epoch(model, optimizer, loader):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_training_loop_to_diagnosis(tmp_path):
    x_train, y_train, x_val, y_val = task()
    train_loader = DataLoader(TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train)),
                              batch_size=32, shuffle=True)
    val_set = TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val))
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    # The README's quick start, as a user writes it (a shuffled loader is fine: ids go along).
    val_loader = DataLoader(with_ids(val_set), batch_size=64, shuffle=True)
    with PredictionWriter(tmp_path / "preds", class_names=["a", "b", "c"], model_name="mlp") as writer:
        for epoch in range(1, 9):
            _train_one_epoch(model, optimizer, train_loader)
            model.eval()
            with torch.no_grad():
                for ids, (x, y) in val_loader:
                    writer.add(ids, y, logits=model(x))
            writer.end_epoch(epoch)

    report = analyze(tmp_path / "preds")
    check_report(report, epochs=list(range(1, 9)), n_samples=len(y_val), n_classes=3,
                 ids=set(range(len(y_val))), class_names=["a", "b", "c"])
    sources, _ = discover(tmp_path / "preds")
    first = read_epoch(sources[0])
    assert first.ids.tolist() == list(range(len(y_val)))  # rows saved in id order
    assert first.labels.tolist() == y_val.tolist()
    provenance = metadata_of(sources[0].path)["provenance"]
    assert provenance["framework"] == f"torch {torch.__version__}"
    assert provenance["model"] == "mlp"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_half_and_double_precision_logits(tmp_path, dtype):
    torch_dtype = getattr(torch, dtype)
    logits = torch.randn(50, 4, generator=torch.Generator().manual_seed(1)).to(torch_dtype)
    labels = torch.arange(50) % 4
    with PredictionWriter(tmp_path, format="npz") as writer:
        writer.add(torch.arange(50), labels, logits=logits)
        writer.end_epoch(1)
    saved = read_epoch(discover(tmp_path)[0][0])
    expected = {"float16": np.float16, "bfloat16": np.float32, "float64": np.float64}[dtype]
    assert saved.scores.dtype == expected
    # bfloat16 -> float32 is exact: the same numbers torch's own widening gives
    assert np.array_equal(saved.scores, logits.float().numpy().astype(expected))


def test_tensors_that_need_grad_and_from_autocast(tmp_path):
    model = _model(n_features=5, n_classes=3)
    x = torch.randn(20, 5)
    with PredictionWriter(tmp_path) as writer:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)  # bfloat16, requires grad
        assert logits.dtype == torch.bfloat16 and logits.requires_grad
        writer.add(torch.arange(20), torch.zeros(20, dtype=torch.long), logits=logits)
        writer.end_epoch(0)
    saved = read_epoch(discover(tmp_path)[0][0])
    assert np.array_equal(saved.scores, logits.detach().float().numpy())


def test_shuffled_rows_without_ids_cannot_be_written_silently(tmp_path):
    """Issue 12's pitfall: batch positions used as ids of a shuffled loader."""
    _, _, x_val, y_val = task()
    val_set = TensorDataset(torch.from_numpy(x_val), torch.from_numpy(y_val))
    loader = DataLoader(val_set, batch_size=50, shuffle=True)
    model = _model()
    with pytest.raises(ValidationSetChanged, match="labels changed"):
        with PredictionWriter(tmp_path) as writer:
            for epoch in range(2):
                position = 0
                for x, y in loader:
                    writer.add(torch.arange(position, position + len(y)), y, logits=model(x))
                    position += len(y)
                writer.end_epoch(epoch)
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_000.parquet"]
