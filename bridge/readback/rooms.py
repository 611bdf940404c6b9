"""Where a server's `ServerRooms` is built: from the directory, the bot and the homeserver name.

Built once at start-up (bridge/runtime.py) and shared by the services and the read-back
handlers, so the one context every plan takes (bridge/plans/rooms.py) is made in one place
and nothing threads the directory's room kinds, its states and the bot separately. Reading
only the directory's public methods, it leaves how the directory holds state to the directory.
"""

from __future__ import annotations

from bridge.plans.rooms import ServerRooms
from bridge.readback.directory import ServerDirectory
from guilds.ids import RoomID, UserID
from guilds.model import Server


class RoomsReader:
    """The directory, the bot and the homeserver name: what building a `ServerRooms` takes."""

    def __init__(
        self,
        directory: ServerDirectory,
        *,
        bot: UserID,
        via: str,
        join_all_channels: bool = False,
    ) -> None:
        self.directory = directory
        self.bot = bot
        # The homeserver named in `via` of the links the bot writes.
        self.via = via
        # Policy `join_channels: all`: members are in every channel they may enter.
        self.join_all_channels = join_all_channels

    def of(self, server: Server) -> ServerRooms:
        """The rooms of `server` as the directory holds them now, read with that model.

        Given the model a caller has already checked a request against, so the plan is made
        from the very server the checks saw.
        """
        return ServerRooms(
            server=server,
            kinds=self.directory.room_kinds(server.server_id),
            states=self.directory.states(),
            bot=self.bot,
            via=self.via,
            join_all_channels=self.join_all_channels,
            left=self.directory.left_rooms(server.server_id),
        )

    def get(self, server_id: RoomID) -> ServerRooms | None:
        """The rooms of the server as the directory holds them; None when it holds no such
        server."""
        server = self.directory.get(server_id)
        return self.of(server) if server is not None else None
