"""Files under ML_PLATFORM_HOME: image blobs, batch manifests, the ledger, Parquet tables."""
