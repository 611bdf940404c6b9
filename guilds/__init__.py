"""The shared vocabulary of Guilds: event and room types, ids, configuration and rules.

Nothing here imports Synapse or aiohttp, so the Synapse module, the bridge, the web UI and
the tests can all use it and a rule is written once.
"""

__version__ = "0.1.0"
