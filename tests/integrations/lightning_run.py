"""A small Lightning run that saves its validation predictions with PredictionCallback.

``python lightning_run.py OUT DEVICES [relabel]`` trains on CPU with DEVICES processes (DDP when > 1;
Lightning starts the other processes by running this script again).
"""

from __future__ import annotations

import sys

import lightning as L
import torch
from integration_helpers import task
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lossacc_cli.writers.lightning import PredictionCallback

N_VAL = 241  # odd: on 2 devices the DistributedSampler pads with one repeated sample
EPOCHS = 5


class Classifier(L.LightningModule):
    def __init__(self, n_features: int = 10, n_classes: int = 3, return_ids: bool = False,
                 relabel: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 64), nn.ReLU(), nn.Linear(64, n_classes))
        self.return_ids = return_ids
        self.relabel = relabel  # from epoch 1 on, rank 1's first batch has other labels

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch[-2:]
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        # The README's snippet: return the logits and labels (ids come from the sampler).
        x, y = batch[-2:]
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), sync_dist=True)
        if self.relabel and self.current_epoch >= 1 and batch_idx == 0 and self.global_rank == 1:
            y = (y + 1) % 3
        out = {"logits": logits, "labels": y}
        if self.return_ids:
            out["ids"] = batch[0]
        return out

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def loaders(*, with_ids: bool = False, shuffle_val: bool = False):
    x_train, y_train, x_val, y_val = task(n_val=N_VAL)
    train = TensorDataset(torch.from_numpy(x_train), torch.from_numpy(y_train))
    tensors = (torch.from_numpy(x_val), torch.from_numpy(y_val))
    if with_ids:
        tensors = (torch.arange(N_VAL) * 10, *tensors)
    val = TensorDataset(*tensors)
    return (DataLoader(train, batch_size=32, shuffle=True),
            DataLoader(val, batch_size=50, shuffle=shuffle_val))


def run(out: str, devices: int = 1, *, return_ids: bool = False, shuffle_val: bool = False,
        epochs: int = EPOCHS, relabel: bool = False) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train, val = loaders(with_ids=return_ids, shuffle_val=shuffle_val)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        callbacks=[PredictionCallback(out, class_names=["a", "b", "c"])],
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=out + "-lightning",
    )
    trainer.fit(Classifier(return_ids=return_ids, relabel=relabel), train, val)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), relabel="relabel" in sys.argv[3:])
