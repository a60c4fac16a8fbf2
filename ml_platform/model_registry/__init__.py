"""The MLflow model registry: one core and two model families with the same file names.

Core: `versions` (model version info, `champion_version`, summaries, creating a version,
aliases' names), `loading` (`load_python_model`: the one way a registered version is loaded,
with the moved-home artifact remapping of `artifacts`), `aliases` (promote, roll back,
history, gate records), `artifacts` (artifact locations, experiments), `tracking` (MLflow's
process-wide URI, run owners), `requirements`, `legacy`/`legacy_manifest` (import of
pre-MLflow pickles).

Families, each with `naming`, `pyfunc`, `register`, `lookup`, `gate`:
`collection/` (`crawlr-collection-<id>`: embeddings in, probability out) and `dataset/`
(`dataset-<name>`: image bytes in, class probabilities out). The collection API most callers
need is re-exported here.
"""

from ml_platform.model_registry.aliases import (
    NoPreviousChampionError,
    PromotionDecision,
    PromotionEntry,
    read_history,
)
from ml_platform.model_registry.artifacts import ensure_experiment
from ml_platform.model_registry.collection.gate import (
    decide_promotion,
    parameter_problems,
    sanity_check,
)
from ml_platform.model_registry.collection.lookup import (
    ModelDetails,
    get_champion,
    list_models,
    show,
)
from ml_platform.model_registry.collection.naming import (
    ClassifierProvenance,
    ModelTag,
    VersionTag,
    model_name,
    training_data_fingerprint,
)
from ml_platform.model_registry.collection.pyfunc import CollectionClassifierModel
from ml_platform.model_registry.collection.register import (
    promote,
    register_classifier,
    rollback,
)
from ml_platform.model_registry.legacy import LegacyImportOutcome, LegacyStatus, import_legacy
from ml_platform.model_registry.loading import load_python_model
from ml_platform.model_registry.versions import (
    Alias,
    ModelNotFoundError,
    ModelSource,
    ModelSummary,
    ModelVersionInfo,
    RegisteredVersion,
    champion_version,
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
    "RegisteredVersion",
    "VersionTag",
    "champion_version",
    "decide_promotion",
    "ensure_experiment",
    "get_champion",
    "import_legacy",
    "list_models",
    "load_python_model",
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
