"""Carrying plans out: steps, the journal, the per-server queue, the inbox, the store."""
