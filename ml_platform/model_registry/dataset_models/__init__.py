"""Fine-tuned dataset classifiers in the MLflow registry: `dataset-<name>` models.

`naming` (names, tags), `pyfunc` (the logged model: image bytes in, class probabilities
out), `register` (the MLflow run and the model version), `lookup` (champion, loading),
`gate` (promotion decision on test accuracy). Aliases and the promotion history are those
of collection classifiers (`model_registry.aliases.promote_model`).
"""
