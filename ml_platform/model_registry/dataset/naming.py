"""Names and tags of fine-tuned dataset classifiers: `dataset-<name>` registered models."""

from __future__ import annotations

from enum import StrEnum

from ml_platform.model_registry.versions import GATE_TAG, SOURCE_TAG

DATASET_MODEL_PREFIX = "dataset-"
DATASET_EXPERIMENT = "dataset-classifiers"


class DatasetTag(StrEnum):
    """Tags on every dataset model version: everything needed to use it correctly."""

    DATASET = "dataset"
    DATASET_VERSION = "dataset_version"
    DATASET_DIGEST = "dataset_digest"
    CLASS_NAMES = "class_names"  # JSON list, index order of the model's outputs
    NUM_CLASSES = "num_classes"
    MODEL_NAME = "model_name"
    ARCHITECTURE = "architecture"  # JSON (learning.finetune.Architecture)
    PREPROCESSING = "preprocessing"  # JSON (vision.preprocess.PreprocessSpec)
    BASE_WEIGHTS = "base_weights"  # source@revision
    BASE_WEIGHTS_SOURCE = "base_weights_source"
    BASE_WEIGHTS_REVISION = "base_weights_revision"
    WEIGHTS = "weights"  # pretrained | random (of the base)
    AUGMENTATION = "augmentation"
    TRAIN_LOSS = "train_loss"
    VAL_ACCURACY = "val_accuracy"
    TEST_ACCURACY = "test_accuracy"
    BEST_EPOCH = "best_epoch"
    N_TRAIN = "n_train"
    N_VAL = "n_val"
    N_TEST = "n_test"
    DAGSTER_RUN_ID = "dagster_run_id"
    DAGSTER_PARTITION = "dagster_partition"
    SOURCE = SOURCE_TAG  # ModelSource
    TRAINING_CONFIG_DIGEST = "training_config_digest"
    INFERENCE_VARIANT = "inference_variant"  # torch | onnx | onnx-int8 (learning.finetune)
    # which weights suggested the training labels (services.label_provenance): random |
    # unknown | pretrained | none, and "N of M" labels from random / unrecorded suggestions
    LABEL_WEIGHTS = "label_weights"
    LABELS_FROM_RANDOM_SUGGESTIONS = "labels_from_random_suggestions"
    LABELS_FROM_UNRECORDED_SUGGESTIONS = "labels_from_unrecorded_suggestions"
    GATE_DECISION = GATE_TAG  # set last, after the aliases moved: the gate is complete


def dataset_model_name(dataset: str) -> str:
    """`dataset-<name>`: the registered model of a dataset's fine-tuned classifier."""
    if not dataset:
        raise ValueError("dataset name must not be empty")
    return f"{DATASET_MODEL_PREFIX}{dataset}"
