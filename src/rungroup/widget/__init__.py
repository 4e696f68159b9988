"""The Explorer widget (`rungroup.Explorer`): see docs/widget.md and docs/architecture.md."""

from rungroup.widget.explorer import Explorer

__all__ = ["Explorer"]
