"""Hugging Face Trainer: SavePredictions as compute_metrics and callback, on a tiny BERT built
from a config (no weights or data sets are downloaded)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from integration_helpers import analyze, check_report, require

torch = require("torch")
transformers = require("transformers")
require("accelerate")

from huggingface_run import N_CLASSES, N_VAL, Tokens, accuracy, args_for, model  # noqa: E402

from lossacc_cli.readers import discover, read_epoch  # noqa: E402
from lossacc_cli.writers import metadata_of  # noqa: E402
from lossacc_cli.writers.huggingface import SavePredictions  # noqa: E402

HERE = Path(__file__).resolve().parent
NAMES = ["neg", "neutral", "pos"]


def test_trainer_to_diagnosis(tmp_path):
    train, val = Tokens(400, seed=1), Tokens(150, seed=2)
    ids = [f"doc-{i:03d}" for i in range(len(val))]
    out = tmp_path / "preds"
    # The README's snippet.
    save = SavePredictions(out, ids=ids, compute_metrics=accuracy)
    trainer = transformers.Trainer(model=model(), args=args_for(str(out), num_train_epochs=4),
                                   train_dataset=train, eval_dataset=val,
                                   compute_metrics=save, callbacks=[save])
    trainer.train()
    final = trainer.evaluate()  # after training: not saved (epoch 4 is already written)
    assert "eval_accuracy" in final

    assert sorted(p.name for p in out.iterdir()) == [f"epoch_{e:03d}.parquet" for e in (1, 2, 3, 4)]
    report = analyze(out)
    check_report(report, epochs=[1, 2, 3, 4], n_samples=len(val), n_classes=N_CLASSES,
                 ids=set(ids), class_names=NAMES)
    last = read_epoch(discover(out)[0][-1])
    order = np.argsort(ids)
    assert last.labels.tolist() == val.labels[order].tolist()
    # The saved logits are the model's on eval_dataset, row for row.
    logits = trainer.predict(val).predictions
    np.testing.assert_allclose(last.scores, logits[order], rtol=1e-5, atol=1e-5)
    provenance = metadata_of(out / "epoch_004.parquet")["provenance"]
    assert provenance["framework"] == f"transformers {transformers.__version__}"
    assert provenance["model"] == "BertForSequenceClassification"


def test_batch_eval_metrics_and_step_numbering(tmp_path):
    train, val = Tokens(256, seed=1), Tokens(100, seed=2)
    seen = []

    def per_batch(eval_pred, compute_result):
        seen.append(len(eval_pred.label_ids))
        return {"batches": len(seen)} if compute_result else {}

    out = tmp_path / "preds"
    save = SavePredictions(out, compute_metrics=per_batch)
    args = args_for(str(out), eval_strategy="steps", eval_steps=4, num_train_epochs=2,
                    batch_eval_metrics=True, per_device_eval_batch_size=32)
    trainer = transformers.Trainer(model=model(), args=args, train_dataset=train,
                                   eval_dataset=val, compute_metrics=save, callbacks=[save])
    trainer.train()
    steps = [4, 8, 12, 16]
    assert sorted(p.name for p in out.iterdir()) == [f"step_{s:03d}.parquet" for s in steps]
    assert seen[:4] == [32, 32, 32, 4]
    report = analyze(out)
    check_report(report, epochs=steps, n_samples=len(val), n_classes=N_CLASSES,
                 ids=set(range(len(val))), class_names=NAMES)


def test_group_by_length_is_refused(tmp_path):
    save = SavePredictions(tmp_path / "preds")
    changes = ({"train_sampling_strategy": "group_by_length"}
               if "train_sampling_strategy" in transformers.TrainingArguments.__dataclass_fields__
               else {"group_by_length": True})
    trainer = transformers.Trainer(model=model(), args=args_for(str(tmp_path / "t"), **changes),
                                   train_dataset=Tokens(64, 1), eval_dataset=Tokens(32, 2),
                                   compute_metrics=save, callbacks=[save])
    with pytest.raises(ValueError, match="group_by_length"):
        trainer.train()


def test_two_processes_write_once_in_dataset_order(tmp_path):
    out = tmp_path / "preds"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(HERE / "huggingface_run.py"), str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == [f"epoch_{e:03d}.parquet" for e in (1, 2, 3)]
    report = analyze(out)
    check_report(report, epochs=[1, 2, 3], n_samples=N_VAL, n_classes=N_CLASSES,
                 ids=set(range(N_VAL)), class_names=NAMES)
    last = read_epoch(discover(out)[0][-1])
    assert last.labels.tolist() == Tokens(N_VAL, seed=2).labels.tolist()
    predicted = np.load(str(out) + "-predict.npy")  # the same model, predicted after training
    np.testing.assert_allclose(last.scores, predicted, rtol=1e-5, atol=1e-5)
