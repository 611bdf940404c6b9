"""The Guilds policy inside Synapse: vetoes what breaks a server's rules, whatever the client.

Synapse loads `synapse_module.GuildsModule` from the `modules:` list of its configuration on
every process. Vetoes apply to events of local senders only: refusing a federated event would
fork the room's history, so those are left to the bridge's reconciliation.
"""

from __future__ import annotations

import logging
from typing import Any

from synapse.module_api import NOT_SPAM, EventBase, ModuleApi
from synapse.module_api.errors import ConfigError

from guilds.config import ConfigErrors, ModuleConfig, parse_module_config
from guilds.rules import call_membership_refusal
from guilds.vocabulary import CALL_MEMBER_EVENT, CHANNEL_EVENT

logger = logging.getLogger(__name__)

__all__ = ["GuildsModule"]


class GuildsModule:
    def __init__(self, config: ModuleConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        # Callbacks that act for users (not just veto) must run on exactly one process.
        self.acts_here = api.worker_name == config.acting_worker
        api.register_spam_checker_callbacks(check_event_for_spam=self.check_event_for_spam)
        logger.info(
            "Guilds module loaded (bot %s; acting callbacks %s on this process)",
            config.bot_user_id,
            "run" if self.acts_here else "do not run",
        )

    @staticmethod
    def parse_config(config: dict[str, Any]) -> ModuleConfig:
        try:
            return parse_module_config(config)
        except ConfigErrors as errors:
            first = errors.errors[0]
            raise ConfigError(str(errors), path=first.key.split(".")) from None

    async def check_event_for_spam(self, event: EventBase) -> str:
        # The message path must stay O(1): only the few event types Guilds rules on look
        # anything up, and then only the single state entry the rule needs.
        if event.type != CALL_MEMBER_EVENT or not self._api.is_mine(event.sender):
            return NOT_SPAM
        state = await self._api.get_room_state(event.room_id, [(CHANNEL_EVENT, "")])
        channel = state.get((CHANNEL_EVENT, ""))
        refusal = call_membership_refusal(channel.content if channel is not None else None)
        return refusal if refusal is not None else NOT_SPAM
