"""stormwatch: collect, watch and report coordinated solidarity storms on social media."""

__version__ = "0.1.0"
