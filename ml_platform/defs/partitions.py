"""Partitions: one per ingestion batch of new images, one per collection for training, one per
dataset; and the partitioned declarations built on them (per-partition checks, all-batch deps)."""

import warnings

import dagster as dg

ingestion_batches = dg.DynamicPartitionsDefinition(name="ingestion_batches")
collection_partitions = dg.DynamicPartitionsDefinition(name="collections")
dataset_partitions = dg.DynamicPartitionsDefinition(name="datasets")  # one per labelled dataset


def partitioned_check_spec(
    name: str,
    asset: str,
    description: str,
    partitions: dg.PartitionsDefinition,
    *,
    blocking: bool = False,
) -> dg.AssetCheckSpec:
    """A check of `asset` that records one result per partition, so the UI shows each
    collection's (or batch's) last result instead of the newest one. Partitioned checks are
    a preview in dagster 1.13.27 (pinned): its PreviewWarning is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name,
            asset=asset,
            blocking=blocking,
            description=description,
            partitions_def=partitions,
        )


def every_batch_of(asset: str) -> dg.AssetDep:
    """A dependency on all the ingestion batches of `asset`: what a collection's or a
    dataset's asset reads (its images come from any batch)."""
    return dg.AssetDep(asset, partition_mapping=dg.AllPartitionMapping())
