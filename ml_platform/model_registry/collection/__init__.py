"""Collection classifiers in the MLflow registry: `crawlr-collection-<id>` models.

The same files as `dataset/`: `naming` (names, tags, provenance), `pyfunc` (the logged
model: embeddings in, probability and decision out), `register` (log, register, promote and
roll back by collection id), `lookup` (champion, loading, list, show), `gate` (promotion
decision on out-of-fold AP, sanity checks). Versions, aliases, loading and the promotion
history are the core's (`model_registry.versions`, `.aliases`, `.loading`).
"""
