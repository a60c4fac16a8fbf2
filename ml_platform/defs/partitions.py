"""Partitions: one per ingestion batch of new images, one per collection for training."""

import dagster as dg

ingestion_batches = dg.DynamicPartitionsDefinition(name="ingestion_batches")
collection_partitions = dg.DynamicPartitionsDefinition(name="collections")
dataset_partitions = dg.DynamicPartitionsDefinition(name="datasets")  # one per labelled dataset
