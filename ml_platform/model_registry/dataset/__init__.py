"""Fine-tuned dataset classifiers in the MLflow registry: `dataset-<name>` models.

The same files as `collection/`: `naming` (names, tags), `pyfunc` (the logged model: image
bytes in, class probabilities out), `register` (the MLflow run and the model version),
`lookup` (champion, loading), `gate` (promotion decision on test accuracy). Versions,
aliases, loading and the promotion history are the core's (`model_registry.versions`,
`.aliases`, `.loading`).
"""
