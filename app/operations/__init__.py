"""The one operations engine: every change to AWS is a plan run here (see docs/operations.md)."""
