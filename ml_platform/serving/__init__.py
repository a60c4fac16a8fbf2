"""Serving: a FastAPI app over the registry's champions, the embedders and the detector.

`create_app(settings)` builds the app; `run_server(settings, host, port)` serves it.
"""

from ml_platform.serving.app import create_app, run_server
from ml_platform.serving.options import ServeOptions
from ml_platform.serving.vision_models import ModelFactories

__all__ = ["ModelFactories", "ServeOptions", "create_app", "run_server"]
