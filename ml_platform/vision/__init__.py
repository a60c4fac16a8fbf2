"""Pure image code: decoding, detection, crops and embedders. Imports nothing from Dagster."""
