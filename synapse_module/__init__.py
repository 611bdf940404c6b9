"""The Guilds policy inside Synapse: vetoes what breaks a server's rules, whatever the client.

Synapse loads `synapse_module.GuildsModule` from the `modules:` list of its configuration on
every process. The files of this package:

- `vetoes.py`: the callbacks refusing what a sender's roles do not allow: state events,
  messages, redactions, joins, invites, kicks, bans and unbans;
- `acting.py`: acting for local users (auto-join, default channel, leaving channels a removed
  role no longer opens), when the bridge asks through `acting_http.py`'s endpoint;
- `policies.py`: the homeserver admin's policies a client could bypass the bridge for;
- `state.py`: the few state entries each rule reads.

Vetoes apply to local senders only: refusing a federated event would fork the room's history,
so those are left to the bridge's reconciliation.
"""

from __future__ import annotations

import logging
from typing import Any

from synapse.module_api import EventBase, ModuleApi
from synapse.module_api.errors import Codes, ConfigError, SynapseError

from guilds.config import ConfigErrors, ModuleConfig, parse_module_config
from guilds.vocabulary import MODULE_MEMBERSHIP_PATH
from synapse_module.acting import Acting
from synapse_module.acting_http import MembershipResource
from synapse_module.policies import PolicyVetoes
from synapse_module.state import MEMBER
from synapse_module.vetoes import Verdict, Vetoes

logger = logging.getLogger(__name__)

__all__ = ["GuildsModule"]


class GuildsModule:
    def __init__(self, config: ModuleConfig, api: ModuleApi) -> None:
        self._config = config
        self._api = api
        self.vetoes = Vetoes(api, config.bot_user_id)
        self.policies = PolicyVetoes(api, config.bot_user_id, config.policies)
        self.acting = Acting(api, config.bot_user_id)
        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam,
            user_may_join_room=self.user_may_join_room,
            user_may_invite=self.user_may_invite,
            user_may_create_room=self.user_may_create_room,
        )
        # Kicks, bans and unbans reach no spam-checker callback: Synapse's room-member handler
        # asks only `user_may_invite` and `user_may_join_room`, and the third-party rules'
        # `check_event_allowed`, which refuses them here. Its price: with any such callback
        # registered, Synapse hands it the room's state for every event it creates (messages
        # too). The callback itself returns on the event type at once.
        api.register_third_party_rules_callbacks(check_event_allowed=self.check_event_allowed)
        # No `on_new_event`: Synapse would load each room's whole state for it on every event
        # (acting.py); the bridge asks the module to act instead.
        api.register_web_resource(
            MODULE_MEMBERSHIP_PATH, MembershipResource(api, self.acting, config.bot_user_id)
        )
        if config.acting_worker is not None:
            logger.warning(
                "Guilds: acting_worker is no longer used (every process serves the bridge's "
                "requests to act); remove it from the module's configuration"
            )
        logger.info("Guilds module loaded (bot %s)", config.bot_user_id)

    @staticmethod
    def parse_config(config: dict[str, Any]) -> ModuleConfig:
        try:
            return parse_module_config(config)
        except ConfigErrors as errors:
            first = errors.errors[0]
            raise ConfigError(str(errors), path=first.key.split(".")) from None

    async def check_event_for_spam(self, event: EventBase) -> str:
        refusal = await self.policies.refusal(event)
        if refusal is not None:
            return refusal
        return await self.vetoes.check_event_for_spam(event)

    async def check_event_allowed(
        self, event: EventBase, state_events: Any
    ) -> tuple[bool, dict[str, Any] | None]:
        """Kicks, bans and unbans by local users: refused with a sentence naming what is missing.

        `state_events` is the room's state before the event. A plain False would answer with
        Synapse's generic sentence; Synapse lets a module raise SynapseError instead.
        """
        if (
            event.type != MEMBER
            or event.sender == self._config.bot_user_id
            or event.sender == event.state_key
            or not self._api.is_mine(event.sender)
        ):
            return True, None
        refusal = await self.vetoes.membership_refusal(event, state_events)
        if refusal is not None:
            raise SynapseError(403, refusal, Codes.FORBIDDEN)
        return True, None

    async def user_may_join_room(self, user_id: str, room_id: str, is_invited: bool) -> Verdict:
        return await self.vetoes.user_may_join_room(user_id, room_id, is_invited)

    async def user_may_create_room(self, user_id: str, room_config: dict[str, Any]) -> Verdict:
        return await self.vetoes.user_may_create_room(user_id, room_config)

    async def user_may_invite(self, inviter: str, invitee: str, room_id: str) -> Verdict:
        return await self.vetoes.user_may_invite(inviter, invitee, room_id)
