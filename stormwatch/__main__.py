"""`python -m stormwatch`."""

from .cli import run

# Guarded: the import reader runs in a spawned process, which imports this module again.
if __name__ == "__main__":
    run()
