"""Keras 3 on the torch backend: PredictionCallback given the validation data."""

from __future__ import annotations

import os

import numpy as np
import pytest
from integration_helpers import analyze, check_report, require, task

require("torch")
keras = require("keras")

from lossacc_cli.readers import discover, read_epoch  # noqa: E402
from lossacc_cli.writers import metadata_of  # noqa: E402
from lossacc_cli.writers.keras import PredictionCallback  # noqa: E402

EPOCHS = 6


def _model(n_classes: int, activation: str | None):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input(shape=(10,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(n_classes, activation=activation),
    ], name="tiny_mlp")


def test_backend_is_torch():
    assert keras.backend.backend() == "torch", os.environ.get("KERAS_BACKEND")


def test_logits_model_to_diagnosis(tmp_path):
    x_train, y_train, x_val, y_val = task()
    model = _model(3, None)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # The README's snippet.
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=EPOCHS, verbose=0,
              callbacks=[PredictionCallback(tmp_path / "preds", (x_val, y_val), scores="logits")])

    report = analyze(tmp_path / "preds")
    check_report(report, epochs=list(range(1, EPOCHS + 1)), n_samples=len(y_val), n_classes=3,
                 ids=set(range(len(y_val))))
    last = read_epoch(discover(tmp_path / "preds")[0][-1])
    assert last.kind == "logits" and last.labels.tolist() == y_val.tolist()
    np.testing.assert_allclose(last.scores, model.predict(x_val, verbose=0), rtol=1e-6, atol=1e-6)
    provenance = metadata_of(discover(tmp_path / "preds")[0][0].path)["provenance"]
    assert provenance["framework"] == f"keras {keras.__version__} (torch backend)"
    assert provenance["model"] == "tiny_mlp"


def test_softmax_model_one_hot_labels_and_own_ids(tmp_path):
    x_train, y_train, x_val, y_val = task()
    one_hot = np.eye(3, dtype=np.float32)[y_val]
    ids = np.array([f"val-{i:04d}" for i in range(len(y_val))])
    model = _model(3, "softmax")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(x_train, np.eye(3, dtype=np.float32)[y_train], epochs=2, verbose=0,
              callbacks=[PredictionCallback(tmp_path, (x_val, one_hot), scores="probs", ids=ids,
                                            format="npz", class_names=["a", "b", "c"])])
    report = analyze(tmp_path)
    check_report(report, epochs=[1, 2], n_samples=len(y_val), n_classes=3, ids=set(ids.tolist()))
    last = read_epoch(discover(tmp_path)[0][-1])
    assert last.kind == "probs" and last.labels.tolist() == y_val.tolist()
    assert metadata_of(discover(tmp_path)[0][-1].path)["class_names"] == ["a", "b", "c"]


def test_binary_sigmoid_model(tmp_path):
    x_train, y_train, x_val, y_val = task(n_classes=2)
    model = _model(1, "sigmoid")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x_train, y_train.astype("float32"), epochs=2, verbose=0,
              callbacks=[PredictionCallback(tmp_path, (x_val, y_val.astype("float32")[:, None]),
                                            scores="probs")])
    report = analyze(tmp_path)
    check_report(report, epochs=[1, 2], n_samples=len(y_val), n_classes=2)
    assert read_epoch(discover(tmp_path)[0][-1]).kind == "prob"


def test_soft_labels_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not one-hot"):
        PredictionCallback(tmp_path, (np.zeros((2, 10)), np.full((2, 3), 1 / 3)), scores="probs")
