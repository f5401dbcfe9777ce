"""`python -m stormwatch`."""

from .cli import run

run()
