"""``python -m salesflow``: the same as the ``salesflow`` command."""

from salesflow.cli import main

if __name__ == "__main__":
    main()
