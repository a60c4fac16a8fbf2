"""Pure ML code: classifier training and model selection, clustering, hero scoring.

Nothing here imports Dagster or MLflow. Import from the modules, e.g.
``from ml_platform.learning.training import TrainingConfig, train_classifier``.
"""
