"""``python -m labkit``: the same as the ``labkit`` command."""

from labkit.cli import command

if __name__ == "__main__":
    command()
