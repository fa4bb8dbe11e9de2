"""``python -m labkit``: the same as the ``labkit`` command."""

from labkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
