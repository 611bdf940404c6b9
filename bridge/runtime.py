"""The bridge's lifecycle: open the store, build its apps, connect to the homeserver, close.

`guilds serve` does, in this order: `await bridge.open()`; serve `bridge.appservice_app` on
`appservice.listen` (and mount `bridge.provisioning_app` at `/_guilds/v1` in the web app);
`await bridge.connect()`, which needs the listener up because Synapse pings it back; and on
shutdown `await bridge.close()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TypeVar

from aiohttp import web

from bridge.api.admin import add_routes as add_admin_routes
from bridge.api.app import create_provisioning_app, explain_failure
from bridge.api.appservice import create_appservice_app
from bridge.api.channels import add_routes as add_channel_routes
from bridge.api.invites import add_routes as add_invite_routes
from bridge.api.members import add_routes as add_member_routes
from bridge.api.operations import add_routes as add_operation_routes
from bridge.api.roles import add_routes as add_role_routes
from bridge.api.servers import add_routes as add_server_routes
from bridge.api.sfu import add_routes as add_sfu_routes
from bridge.api.templates import add_routes as add_template_routes
from bridge.engine.inbox import TransactionInbox
from bridge.engine.journal import OperationJournal
from bridge.engine.lease import Lease, LeaseBusy
from bridge.engine.matrix import (
    HomeserverUnavailable,
    MatrixClient,
    MatrixClientError,
    MatrixRequestError,
)
from bridge.engine.migrations import migrate
from bridge.engine.patience import wait_out
from bridge.engine.queue import ServerQueue
from bridge.engine.store import Database
from bridge.metrics import BridgeMetrics
from bridge.readback.acting import MembershipActing
from bridge.readback.convergence import Convergence, DoctorReport, doctor
from bridge.readback.directory import ServerDirectory
from bridge.readback.membership import BotMembership
from bridge.readback.reconcile import Reconciler
from bridge.readback.rooms import RoomsReader
from bridge.services.calls import CallSweeper
from bridge.services.channels import Channels
from bridge.services.declared import Declarations, Report, greet_declared_members
from bridge.services.invites import Invites
from bridge.services.members import Members
from bridge.services.roles import Roles
from bridge.services.servers import Servers
from bridge.services.sfu import SfuAccess, SfuCredentials
from guilds.config import GuildsConfig
from guilds.ids import RoomID
from guilds.vocabulary import CALL_MEMBER_EVENT

log = logging.getLogger(__name__)

# How long the homeserver may keep answering that it cannot reach our listener.
PING_DEADLINE_S = 60.0
# Synapse's answers to the appservice ping when it cannot reach us (a 502 or 504 either way).
PING_FAILURES = frozenset(
    {"M_CONNECTION_FAILED", "M_CONNECTION_TIMEOUT", "M_BAD_STATUS", "M_URL_NOT_SET"}
)
DECLARED_LEASE = "declared_servers"
# How long start-up reconciling waits for a `guilds apply` of the moment to finish.
DECLARED_START_WAIT_S = 300.0
T = TypeVar("T")


class BridgeStartupError(Exception):
    """The bridge cannot start; the message says what to fix."""


class Bridge:
    """The application service: its database, its HTTP apps and its link to the homeserver."""

    def __init__(self, config: GuildsConfig, *, matrix: MatrixClient | None = None) -> None:
        self.config = config
        self.bot_user_id = config.bot_user_id
        self.registration = config.appservice.registration
        self.matrix = matrix or MatrixClient(config.homeserver.url, self.registration.as_token)
        # Its own registry: several bridges in one process (tests) keep their counts apart.
        self.metrics = BridgeMetrics()
        self._db: Database | None = None
        self._inbox: TransactionInbox | None = None
        self._operations: OperationJournal | None = None
        self._queue: ServerQueue | None = None
        self._appservice_app: web.Application | None = None
        self._provisioning_app: web.Application | None = None
        self._declared_task: asyncio.Task[None] | None = None
        self._calls: CallSweeper | None = None
        self.sfu: SfuCredentials | None = None
        # The directory once its compaction of idle servers runs (`connect`).
        self._compacting: ServerDirectory | None = None
        self._convergence: Convergence | None = None

    # Built by open(); reading them earlier is a wiring mistake worth a clear message.
    @property
    def db(self) -> Database:
        return _opened(self._db)

    @property
    def inbox(self) -> TransactionInbox:
        return _opened(self._inbox)

    @property
    def operations(self) -> OperationJournal:
        return _opened(self._operations)

    @property
    def convergence(self) -> Convergence:
        return _opened(self._convergence)

    @property
    def queue(self) -> ServerQueue:
        return _opened(self._queue)

    @property
    def appservice_app(self) -> web.Application:
        return _opened(self._appservice_app)

    @property
    def provisioning_app(self) -> web.Application:
        return _opened(self._provisioning_app)

    async def open(self) -> None:
        """Open and migrate the database and build the apps; needs no homeserver."""
        db = await Database.open(
            self.config.database_url, busy_timeout_ms=self.config.database_busy_timeout_s * 1000
        )
        try:
            version = await migrate(db)
        except BaseException:
            await db.close()
            raise
        log.info("Database ready (%s, schema version %d)", db.dialect, version)
        self._db = db
        self._inbox = TransactionInbox(db)
        self._inbox.add_handler(BotMembership(self.matrix, self.bot_user_id), "m.room.member")
        self._operations = OperationJournal(
            db,
            self.matrix,
            self.bot_user_id,
            metrics=self.metrics,
            max_backoff_s=float(self.config.max_retry_wait_s),
        )
        # One writer per server: every change to a server takes its turn here.
        queue = self._queue = ServerQueue(
            db,
            self._operations,
            explain=explain_failure,
            answer_within_s=float(self.config.answer_within_s),
            max_backoff_s=float(self.config.max_retry_wait_s),
        )
        self._appservice_app = create_appservice_app(
            hs_token=self.registration.hs_token,
            bot_user_id=self.bot_user_id,
            inbox=self._inbox,
            metrics=self.metrics,
        )
        # Set at the end of connect(): until then the API answers 503 rather than a partial view.
        self.ready = asyncio.Event()
        self._provisioning_app = create_provisioning_app(
            self.matrix,
            self.ready,
            self.metrics,
            token_check_timeout_s=float(self.config.homeserver.token_check_timeout_s),
        )
        add_operation_routes(self._provisioning_app, queue)
        self.directory = ServerDirectory(self.matrix, self.bot_user_id, self.config.directory)
        # A server with operations running or waiting is about to be used: kept as it is.
        self.directory.busy = lambda server_id: queue.depth(server_id) > 0
        self.metrics.watch_directory(self.directory.footprint)
        self._operations.superseded = self.directory.superseded
        # After BotMembership: a room the bot has just joined is known before its events apply.
        self._inbox.add_handler(self.directory.handle, state_only=True)
        # The one place a server's rooms are gathered for planning (bridge/plans/rooms.py):
        # the services, the reconciler and convergence all read them through it.
        rooms = RoomsReader(
            self.directory,
            bot=self.bot_user_id,
            via=self.config.homeserver.server_name,
            join_all_channels=self.config.policies.join_channels == "all",
        )
        # Call memberships past their expiry (a closed tab, a lost connection) are cleared.
        self._calls = CallSweeper(self.matrix, self.directory)
        self._inbox.add_handler(self._calls.handle, CALL_MEMBER_EVENT)
        self._inbox.add_handler(self._calls.handle_member, "m.room.member")
        # After the directory's: reconciliation reads the state it has just applied.
        self.reconciler = Reconciler(
            matrix=self.matrix,
            journal=self._operations,
            rooms=rooms,
            queue=queue,
        )
        self._inbox.add_handler(self.reconciler.handle, state_only=True)
        # After the directory's, which knows what kind of room each membership is in.
        self._inbox.add_handler(
            MembershipActing(self.matrix, rooms).handle,
            "m.room.member",
        )
        # Last: after the directory applied the event and the reconciler read it back, the
        # server is checked against what its model derives (the bot's own events included).
        self._convergence = Convergence(
            db=db,
            journal=self._operations,
            rooms=rooms,
            sweep_interval_s=self.config.sweep_interval_s,
            turn=queue.turn,
        )
        self._convergence.on_repair = self.metrics.observe_repair
        queue.on_depth = self.metrics.set_queue_depth
        self._inbox.add_handler(self._convergence.handle, state_only=True)
        self._operations.on_end(self._convergence.after_operation)
        self.servers = Servers(
            matrix=self.matrix,
            journal=self._operations,
            rooms=rooms,
            db=db,
            policies=self.config.policies,
            templates=self.config.templates,
        )
        add_server_routes(self._provisioning_app, self.servers, queue)
        self.roles = Roles(servers=self.servers)
        add_role_routes(self._provisioning_app, self.roles, queue)
        self.members = Members(servers=self.servers)
        add_member_routes(self._provisioning_app, self.members, queue)
        self.channels = Channels(servers=self.servers)
        add_channel_routes(self._provisioning_app, self.channels, queue)
        self.invites = Invites(
            db=db,
            matrix=self.matrix,
            servers=self.servers,
            public_url=self.config.web.public_url,
        )
        add_invite_routes(self._provisioning_app, self.invites)
        # Channel calls on the SFU, when one is configured: credentials, and kicks on leave.
        janus = self.config.janus
        self.sfu = SfuCredentials(
            self.matrix,
            self.directory,
            None if janus is None else SfuAccess(janus),
            "" if janus is None else janus.public_url,
        )
        if janus is not None:
            self._inbox.add_handler(self.sfu.handle_member, "m.room.member")
        add_sfu_routes(self._provisioning_app, self.sfu)
        add_template_routes(self._provisioning_app, self.servers)
        self.declarations = Declarations(
            declared=self.config.servers,
            servers=self.servers,
            channels=self.channels,
            roles=self.roles,
            queue=queue,
        )
        add_admin_routes(
            self._appservice_app,
            lambda dry_run: self.apply_declared(dry_run=dry_run),
            lambda server, repair: self.doctor(server, repair=repair),
        )
        if self.config.servers:
            self._provisioning_app.middlewares.append(greet_declared_members(self.declarations))

    async def connect(self, *, deadline_s: float | None = None) -> None:
        """Make the bot ready on the homeserver, then start handling stored events.

        Call once `appservice_app` is being served: the homeserver's ping calls it back.
        A homeserver that is not up yet, restarting or rate-limiting is waited out (each wait
        logged; bridge/engine/patience.py), for ever unless `deadline_s` is given. What waiting
        cannot
        fix — an unknown as_token, a homeserver that cannot reach this listener — is a
        BridgeStartupError naming what to check.
        """
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        hs_url = self.config.homeserver.url
        try:
            await wait_out(
                f"The homeserver at {hs_url} is not answering",
                self.matrix.versions,
                deadline=deadline,
            )
        except MatrixClientError as exc:
            raise BridgeStartupError(f"The homeserver at {hs_url} is not reachable: {exc}") from exc
        try:
            await wait_out(
                f"Setting up the bot {self.bot_user_id}", self._prepare_bot, deadline=deadline
            )
        except MatrixRequestError as exc:
            hint = ""
            if exc.errcode in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                hint = (
                    f" The homeserver does not know the as_token: is "
                    f"{self.config.appservice.registration_path} listed in Synapse's "
                    "app_service_config_files, and was Synapse restarted since?"
                )
            raise BridgeStartupError(
                f"Cannot set up the bot {self.bot_user_id}: {exc}.{hint}"
            ) from exc
        except HomeserverUnavailable as exc:
            raise BridgeStartupError(f"The homeserver at {hs_url} went away: {exc}") from exc
        await self._ping(deadline)
        await self._load_servers()
        # Before the inbox and the API can take a turn: per server, the operations a crash or a
        # shutdown left unfinished, then the requests that were queued, go first.
        await self.queue.start()
        self.inbox.start()
        self.directory.start()
        self._compacting = self.directory
        if self._calls is not None:
            self._calls.start()
        # Every server checked once the queue has finished what a crash left, then on the slow
        # sweep.
        self.convergence.start()
        if self.config.servers:
            self._declared_task = asyncio.create_task(
                self._declared_at_start(), name="guilds-declared-servers"
            )
        self.ready.set()
        log.info("Bridge connected to %s as %s", hs_url, self.bot_user_id)

    async def apply_declared(self, *, dry_run: bool = False, wait_s: float = 30.0) -> Report:
        """Reconcile the servers guilds.yaml declares, holding the lease `guilds apply` takes."""
        async with Lease(self.db, DECLARED_LEASE).held(wait_s=wait_s):
            return await self.declarations.reconcile(dry_run=dry_run)

    async def _declared_at_start(self) -> None:
        # After the resumed operations: a declared server whose creation a crash interrupted
        # is finished by them, and then found, not made again.
        await self.queue.wait_started()
        try:
            await self.apply_declared(wait_s=DECLARED_START_WAIT_S)
        except LeaseBusy as exc:
            log.warning("Declared servers not reconciled at start: %s", exc)
        except Exception:
            log.exception("Declared servers could not be reconciled at start")

    async def doctor(
        self, server_id: str | None, *, repair: bool, serving: bool = True
    ) -> DoctorReport:
        """`guilds doctor`: every server's rooms compared with its model, repaired on request.

        `serving` is False when `guilds doctor` runs the bridge itself (no `guilds serve`):
        then nothing else would finish an unfinished operation, so the checks do not wait.
        """
        return await doctor(self.convergence, server_id, repair=repair, wait=serving)

    async def load_servers(self) -> None:
        """Read every server into the directory without serving (`guilds apply`)."""
        await self._load_servers()

    async def _load_servers(self) -> None:
        """Read every server the bridge administers into the directory, before events apply."""
        rows = await self.db.fetchall("SELECT server_id FROM servers WHERE deleted_at IS NULL")
        semaphore = asyncio.Semaphore(4)

        async def one(server_id: str) -> None:
            async with semaphore:
                if await self.directory.load(RoomID(server_id)) is None:
                    log.warning("Server %s could not be read; is the bot still in it?", server_id)

        await asyncio.gather(*(one(row["server_id"]) for row in rows))
        log.info("Loaded %d servers", len(rows))

    async def _prepare_bot(self) -> None:
        if await self.matrix.ensure_registered(self.config.appservice.bot_localpart):
            log.info("Registered the bot %s", self.bot_user_id)
        who = await self.matrix.whoami(user_id=self.bot_user_id)
        if who.get("user_id") != self.bot_user_id:
            raise BridgeStartupError(
                f"The as_token acts as {who.get('user_id')!r}, not the bot {self.bot_user_id}"
            )
        wanted = self.config.appservice.bot_displayname
        # Setting a display name sends a member event into every room of the bot: only on change.
        if wanted and await self.matrix.get_displayname(self.bot_user_id) != wanted:
            await self.matrix.set_displayname(self.bot_user_id, wanted)

    async def _ping(self, deadline: float | None) -> None:
        """Have the homeserver call our appservice endpoint, until it answers or time runs out.

        The homeserver itself being away is waited out like the rest of start-up; its answer
        that it cannot reach us (most often hs_token differs between the two sides) is given
        PING_DEADLINE_S, then explained.
        """
        own_deadline = deadline if deadline is not None else time.monotonic() + PING_DEADLINE_S
        delay = 0.1
        while True:
            try:
                ms = await wait_out(
                    "The homeserver is not answering the appservice ping",
                    lambda: self.matrix.ping(self.registration.id),
                    deadline=deadline,
                    passes=lambda exc: getattr(exc, "errcode", None) not in PING_FAILURES,
                )
            except HomeserverUnavailable as exc:
                if time.monotonic() + delay > own_deadline:
                    raise BridgeStartupError(
                        f"The homeserver cannot reach the application service at "
                        f"{self.registration.url} ({exc.errcode or exc.reason}): is it listening "
                        "there, and do both sides have the same hs_token?"
                    ) from exc
            except MatrixRequestError as exc:
                if exc.errcode == "M_UNRECOGNIZED":
                    log.warning("The homeserver does not support the appservice ping; skipped")
                    return
                raise BridgeStartupError(
                    f"The homeserver refused to ping application service "
                    f"{self.registration.id!r}: {exc}"
                ) from exc
            else:
                log.info("The homeserver reached the application service in %d ms", ms)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        """Stop the worker and close the homeserver client and the database; safe to repeat."""
        if self._declared_task is not None:
            self._declared_task.cancel()
            await asyncio.gather(self._declared_task, return_exceptions=True)
        if self._calls is not None:
            await self._calls.stop()
        if self.sfu is not None:
            await self.sfu.stop()
        if self._compacting is not None:
            await self._compacting.stop()
        if self._convergence is not None:
            await self._convergence.stop()
        if self._inbox is not None:
            await self._inbox.stop()
        if self._queue is not None:
            # Queued requests stay stored; the next start runs them.
            await self._queue.stop()
        if self._operations is not None:
            # Interrupted operations stay unfinished in the journal; the next start resumes them.
            await self._operations.stop()
        if self._compacting is not None:
            # Last: nothing reads an evicted server any more.
            self._compacting.close()
        await self.matrix.close()
        if self._db is not None:
            await self._db.close()


def _opened(value: T | None) -> T:
    if value is None:
        raise RuntimeError("call `await bridge.open()` first")
    return value
