"""A tiny BERT built from a config (no weights or data sets are downloaded), trained with the
Trainer while SavePredictions saves each evaluation.

``python -m torch.distributed.run --standalone --nproc_per_node 2 huggingface_run.py OUT`` trains on two CPU
processes; process 0 writes, and also saves ``OUT-predict.npy`` (``trainer.predict`` on the eval
set after training) to compare with the last epoch file.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import transformers

from lossacc_cli.writers.huggingface import SavePredictions

VOCAB, LENGTH, N_CLASSES = 40, 8, 3


class Tokens(torch.utils.data.Dataset):
    """Token sequences whose class is the most frequent of three token groups, with label noise."""

    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng(seed)
        labels = rng.integers(N_CLASSES, size=n)
        tokens = rng.integers(4, VOCAB, size=(n, LENGTH))
        marked = rng.random((n, LENGTH)) < 0.4
        tokens[marked] = 1 + np.broadcast_to(labels[:, None], (n, LENGTH))[marked]
        flip = rng.random(n) < 0.15
        self.labels = np.where(flip, rng.integers(N_CLASSES, size=n), labels)
        self.tokens = tokens

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": torch.tensor(self.tokens[i]),
                "attention_mask": torch.ones(LENGTH, dtype=torch.long),
                "labels": torch.tensor(int(self.labels[i]))}


def model():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=LENGTH, num_labels=N_CLASSES,
        id2label={0: "neg", 1: "neutral", 2: "pos"}, label2id={"neg": 0, "neutral": 1, "pos": 2},
    )
    return transformers.BertForSequenceClassification(config)


def args_for(out: str, **changes):
    return transformers.TrainingArguments(**{**dict(
        output_dir=out + "-trainer", num_train_epochs=3, learning_rate=5e-3,
        per_device_train_batch_size=32, per_device_eval_batch_size=64, eval_strategy="epoch",
        save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, seed=0,
        logging_strategy="no", dataloader_num_workers=0), **changes})


def accuracy(eval_pred):
    return {"accuracy": float((eval_pred.predictions.argmax(-1) == eval_pred.label_ids).mean())}


N_VAL = 101  # not a multiple of 2 x the batch size: the last batches are padded, then trimmed


def run(out: str) -> None:
    torch.set_num_threads(1)
    train, val = Tokens(256, seed=1), Tokens(N_VAL, seed=2)
    save = SavePredictions(out, compute_metrics=accuracy)
    trainer = transformers.Trainer(model=model(), args=args_for(out, per_device_eval_batch_size=16),
                                   train_dataset=train, eval_dataset=val, compute_metrics=save,
                                   callbacks=[save])
    trainer.train()
    predictions = trainer.predict(val).predictions
    if trainer.is_world_process_zero():
        np.save(out + "-predict.npy", predictions)


if __name__ == "__main__":
    run(sys.argv[1])
