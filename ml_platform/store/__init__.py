"""Storage: the Store (blobs.py, a local directory or s3:// through fsspec), the Layout of
every asset output in it (layout.py), the tables and objects on top, and the SQL metadata."""
