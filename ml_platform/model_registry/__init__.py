"""MLflow model registry for collection classifiers: pyfunc model, register, promote, legacy.

Modules: `naming` (names, aliases, tag keys), `pyfunc_model` (the logged model),
`registry` (log and register), `aliases` (promote, rollback, history), `lookup`
(champion, list, show), `decision` (promotion decision and sanity checks), `legacy`
(import of pre-MLflow pickles). The public API is re-exported here.
"""

from ml_platform.model_registry.aliases import (
    ModelNotFoundError,
    NoPreviousChampionError,
    PromotionEntry,
    promote,
    read_history,
    rollback,
)
from ml_platform.model_registry.decision import (
    PromotionDecision,
    decide_promotion,
    parameter_problems,
    sanity_check,
)
from ml_platform.model_registry.legacy import LegacyImportOutcome, LegacyStatus, import_legacy
from ml_platform.model_registry.lookup import (
    ModelDetails,
    ModelSummary,
    ModelVersionInfo,
    get_champion,
    list_models,
    show,
)
from ml_platform.model_registry.naming import (
    Alias,
    ClassifierProvenance,
    ModelSource,
    ModelTag,
    VersionTag,
    model_name,
    training_data_fingerprint,
)
from ml_platform.model_registry.pyfunc_model import CollectionClassifierModel
from ml_platform.model_registry.registry import (
    RegisteredClassifier,
    ensure_experiment,
    register_classifier,
)

__all__ = [
    "Alias",
    "ClassifierProvenance",
    "CollectionClassifierModel",
    "LegacyImportOutcome",
    "LegacyStatus",
    "ModelDetails",
    "ModelNotFoundError",
    "ModelSource",
    "ModelSummary",
    "ModelTag",
    "ModelVersionInfo",
    "NoPreviousChampionError",
    "PromotionDecision",
    "PromotionEntry",
    "RegisteredClassifier",
    "VersionTag",
    "decide_promotion",
    "ensure_experiment",
    "get_champion",
    "import_legacy",
    "list_models",
    "model_name",
    "parameter_problems",
    "promote",
    "read_history",
    "register_classifier",
    "rollback",
    "sanity_check",
    "show",
    "training_data_fingerprint",
]
