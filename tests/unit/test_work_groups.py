"""The xdist work groups: a module's tests per backend together; the worker deployment's tests in
one group, and the browser modules with real media in one; handed out longest first."""

from __future__ import annotations

from pathlib import Path

from tests.harness.scheduling import MODULE_SECONDS_PER_TEST, longest_first, work_group
from tests.harness.stack import JOIN_DEFAULT, SFU, TEMPLATED

ROOT = Path(__file__).resolve().parents[2]

MATRIX = "tests/integration/test_permission_matrix.py"


def test_a_modules_tests_on_one_backend_form_one_group() -> None:
    sqlite = {
        work_group(f"{MATRIX}::test_api[sqlite-read_server-owner]"),
        work_group(f"{MATRIX}::test_matrix[sqlite-matrix-join_space-banned]"),
    }
    assert sqlite == {f"{MATRIX}[sqlite]"}
    assert work_group(f"{MATRIX}::test_api[postgres-read_server-owner]") == f"{MATRIX}[postgres]"
    # Room version 11 is a stack of its own.
    assert work_group(f"{MATRIX}::test_matrix[matrix-join_space-banned-v11]") == f"{MATRIX}[v11]"


def test_every_test_on_the_worker_deployment_is_in_one_group() -> None:
    assert {
        work_group(f"{MATRIX}::test_matrix[matrix-ban_in_space-moderator-workers]"),
        work_group("tests/integration/test_workers.py::test_vetoes_on_the_client_worker[workers]"),
        work_group("tests/integration/test_reconcile.py::test_repair[workers]"),
    } == {"workers"}


def test_tests_without_a_backend_group_by_module() -> None:
    path = "tests/integration/test_doctor.py"
    assert work_group(f"{path}::test_doctor_lists") == f"{path}[]"
    assert work_group("tests/unit/test_model.py::test_names[bad-name]") == (
        "tests/unit/test_model.py[]"
    )


def test_long_tests_that_share_nothing_are_groups_of_their_own() -> None:
    # Each `guilds run` test and each benchmark smoke run starts all it needs itself.
    run = "tests/integration/test_run.py"
    bench = "tests/integration/test_bench_smoke.py"
    ids = [
        f"{run}::test_run_starts_everything",
        f"{run}::test_port_in_use_is_explained[web-GUILDS_WEB_PORT]",
        f"{run}::test_port_in_use_is_explained[homeserver-GUILDS_HOMESERVER_PORT]",
        f"{bench}::test_every_backend_figure_runs_quick",
        f"{bench}::test_the_browser_figures_run_quick",
    ]
    assert [work_group(nodeid) for nodeid in ids] == ids


def test_browser_modules_with_real_media_share_one_group_others_group_by_module() -> None:
    assert {
        work_group("tests/browser/test_calls.py::test_three_people[sqlite]"),
        work_group("tests/browser/test_direct_calls.py::test_video_call_invite_ring"),
        work_group("tests/browser/test_speaking.py::test_short_beeps_between_polls_are_heard"),
    } == {"browser-media"}
    chat = "tests/browser/test_chat.py"
    assert {
        work_group(f"{chat}::test_one_sends[sqlite]"),
        work_group(f"{chat}::test_history_loads_more[sqlite]"),
    } == {f"{chat}[sqlite]"}
    assert work_group("tests/browser/test_manage.py::test_roles[sqlite]") != f"{chat}[sqlite]"


def test_groups_are_handed_out_longest_first_and_unit_tests_last() -> None:
    groups = {
        "tests/unit/test_permissions.py[]": [
            f"tests/unit/test_permissions.py::t{i}" for i in range(200)
        ],
        "tests/integration/test_bench_smoke.py[]": ["tests/integration/test_bench_smoke.py::t"],
        f"{MATRIX}[sqlite]": [f"{MATRIX}::test_api[sqlite-{i}]" for i in range(300)],
        "tests/integration/test_auth.py[sqlite]": [
            f"tests/integration/test_auth.py::t{i}[sqlite]" for i in range(5)
        ],
    }
    order = longest_first(groups)
    # By number of tests (xdist's own order), the single long benchmark run would come third.
    assert order == [
        f"{MATRIX}[sqlite]",
        "tests/integration/test_bench_smoke.py[]",
        "tests/integration/test_auth.py[sqlite]",
        "tests/unit/test_permissions.py[]",
    ]


def test_every_module_with_a_figure_of_its_own_exists() -> None:
    for path in MODULE_SECONDS_PER_TEST:
        assert (ROOT / path).is_file(), f"{path} is gone: drop its figure"


def test_every_test_on_a_configured_stack_is_in_one_group_whatever_its_module() -> None:
    assert {
        work_group(f"{MATRIX}::test_matrix_with_the_holder_outside[matrix-x-owner-{JOIN_DEFAULT}]"),
        work_group(f"tests/integration/test_channel_joins.py::test_default[{JOIN_DEFAULT}]"),
    } == {JOIN_DEFAULT}
    assert {
        work_group(f"tests/integration/test_templates.py::test_listed[{TEMPLATED}]"),
        work_group(f"tests/browser/test_templates_ui.py::test_offered[{TEMPLATED}]"),
    } == {TEMPLATED}


def test_every_test_on_the_stack_with_an_sfu_is_in_one_group_whatever_its_module() -> None:
    # One Janus, Synapse and bridge for the SFU's access rules and the browser calls through it.
    assert {
        work_group(f"tests/integration/test_sfu_access.py::test_members_get[{SFU}]"),
        work_group(f"tests/integration/test_sfu_access.py::test_kicked[{SFU}-kick]"),
        work_group(f"tests/browser/test_sfu_calls.py::test_two_browsers[{SFU}]"),
    } == {SFU}
    # The module's test of a stack without an SFU goes with the other SQLite tests of the module.
    assert (
        work_group("tests/integration/test_sfu_access.py::test_without_an_sfu[sqlite]")
        == "tests/integration/test_sfu_access.py[sqlite]"
    )
