"""Test helpers that start and drive the real stack (Synapse, the module, the bridge, the UI)."""
