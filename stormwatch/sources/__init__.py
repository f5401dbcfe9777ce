"""Platform sources: each returns raw pages stamped with provenance and the cursor that covers them.

`capabilities` says what a source can do (small protocols the collector checks with `isinstance`),
`registry` maps each platform to its source factory and normalizers, `http` holds what every source needs
from HTTP answers and failures, and one module per platform talks to it through its own library.
"""

from __future__ import annotations

from .capabilities import Source

__all__ = ["Source"]
