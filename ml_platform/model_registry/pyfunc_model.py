"""Kept so models registered before the move still load: their pickles name this module.

MLflow stores a pyfunc model's `PythonModel` with cloudpickle, which records the class by
module path. Versions registered before `collection/` existed hold
`ml_platform.model_registry.pyfunc_model.CollectionClassifierModel`; new code imports
`ml_platform.model_registry.collection.pyfunc`.
"""

from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel

__all__ = ["CollectionClassifierModel"]
