"""The shell preloads every module main.js imports statically (web/preload.py)."""

from __future__ import annotations

from pathlib import Path

from web.preload import module_graph


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_static_imports_are_followed_breadth_first_and_only_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "js/main.js",
        'import { a } from "./a.js";\n'
        "import {\n  b,\n  c,\n} from './views/b.js';\n"
        'export { d } from "./d.js";\n'
        'import "./side-effect.js";\n',
    )
    write(tmp_path, "js/a.js", 'import { x } from "./deep/x.js";\nexport const a = 1;\n')
    write(tmp_path, "js/views/b.js", 'import { a } from "../a.js";\nexport const b = 2, c = 3;\n')
    write(tmp_path, "js/d.js", "export const d = 4;\n")
    write(tmp_path, "js/side-effect.js", "window.x = 1;\n")
    write(tmp_path, "js/deep/x.js", "export const x = 5;\n")
    assert module_graph("js/main.js", tmp_path) == [
        "/static/js/a.js",
        "/static/js/views/b.js",
        "/static/js/d.js",
        "/static/js/side-effect.js",
        "/static/js/deep/x.js",
    ]


def test_dynamic_imports_type_comments_and_outside_paths_are_not_preloaded(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "static/js/main.js",
        '/** @param {import("./typed.js").T} t */\n'
        'const lazy = () => import("./lazy.js");\n'
        '// import { gone } from "./commented.js";\n'
        'import { secret } from "../../secret.js";\n'
        'import { missing } from "./missing.js";\n'
        'import { ok } from "./ok.js";\n',
    )
    for name in ("typed.js", "lazy.js", "ok.js"):
        write(tmp_path, f"static/js/{name}", "export const ok = 1;\n")
    write(tmp_path, "secret.js", "export const secret = 1;\n")
    assert module_graph("js/main.js", tmp_path / "static") == ["/static/js/ok.js"]


def test_the_clients_own_graph_holds_the_modules_the_first_render_needs() -> None:
    graph = module_graph("js/main.js")
    for module in ("views/home.js", "views/chat.js", "sync.js", "matrix.js"):
        assert f"/static/js/{module}" in graph
    assert "/static/js/main.js" not in graph
    assert len(graph) == len(set(graph))
