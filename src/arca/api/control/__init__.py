"""The /api/v1 control plane: JSON over the artifact workflows (docs/artifacts.md)."""
