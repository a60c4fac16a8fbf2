"""Kept so models registered before the move still load (see `dataset_models.pyfunc`)."""
