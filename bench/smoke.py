"""Figures 1–6 with --quick at once, sharing one Guilds stack and one homeserver without the module.

    python -m bench.smoke [--backend sqlite] [FIGURE …]

The smoke run of the figures (tests/integration/test_bench_smoke.py): each figure runs as
`python -m bench.figN_… --quick` would run it, printing its table and writing its JSON into
--results-dir (or $GUILDS_BENCH_RESULTS), but on the stacks this process started once for all of
them instead of two homeservers of its own: the Guilds stack's config holds every figure's
templates (each figure's `admin_config`). The figures run at once, so a figure's numbers here
include the others' load: --quick judges none of them. Exits 1 if any figure failed, after the
others finished.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import traceback
from pathlib import Path

from bench.common import (
    SharedStacks,
    figure_stacks,
    log,
    merge_admin_configs,
    parse_args,
)

FIGURES = [
    "fig1_messages",
    "fig2_create_server",
    "fig3_role_change",
    "fig4_kick_ban",
    "fig5_invite_join",
    "fig6_read_paths",
]


async def run(figures: list[str], backend: str, results_dir: Path | None) -> list[str]:
    """Run `figures` at once on shared stacks; answers the ones that failed."""
    modules = {figure: importlib.import_module(f"bench.{figure}") for figure in figures}
    argv = ["--quick", "--backend", backend]
    if results_dir is not None:
        argv += ["--results-dir", str(results_dir)]
    figure_args = {
        figure: parse_args(figure, module.__doc__, getattr(module, "_extra", None), argv)
        for figure, module in modules.items()
    }
    config = merge_admin_configs(
        [modules[figure].admin_config(args) for figure, args in figure_args.items()]
    )
    failed: list[str] = []
    # Built as one figure run alone builds its own: the path of `python -m bench.figN_…`.
    own = argparse.Namespace(figure="smoke", backend=backend, shared=None)
    async with figure_stacks(own, config) as (stack, plain):
        shared = SharedStacks(stack, plain)

        async def one(figure: str) -> None:
            args = figure_args[figure]
            args.shared = shared
            try:
                result = await modules[figure].main(args)
            except Exception:
                log(f"{figure} failed:\n{traceback.format_exc()}")
                failed.append(figure)
                return
            result.print()
            result.write(args)

        await asyncio.gather(*(one(figure) for figure in figures))
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.smoke", description=__doc__)
    parser.add_argument("figures", nargs="*", help=f"default: all of {', '.join(FIGURES)}")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    figures: list[str] = args.figures or FIGURES
    unknown = set(figures) - set(FIGURES)
    if unknown:
        parser.error(f"not a figure of the smoke run: {', '.join(sorted(unknown))}")
    failed = asyncio.run(run(figures, args.backend, args.results_dir))
    if failed:
        log(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
