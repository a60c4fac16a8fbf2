"""`python -m ml_platform.cli` is `ml-platform`."""

from ml_platform.cli import main

main()
