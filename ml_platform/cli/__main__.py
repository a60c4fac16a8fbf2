"""`python -m ml_platform.cli` is `ml-platform`."""

from ml_platform.cli import main

if __name__ == "__main__":  # not on import: multiprocess step workers re-import __main__
    main()
