"""Kept so models registered before the move still load: their pickles name this module.

MLflow stores a pyfunc model's `PythonModel` with cloudpickle, which records the class by
module path. Versions registered before `dataset/` existed hold
`ml_platform.model_registry.dataset_models.pyfunc.FinetunedClassifierModel`; new code
imports `ml_platform.model_registry.dataset.pyfunc`.
"""

from ml_platform.model_registry.dataset.pyfunc import FinetunedClassifierModel

__all__ = ["FinetunedClassifierModel"]
