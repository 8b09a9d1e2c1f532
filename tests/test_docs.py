"""README.md and the guides in docs/ say only what is true of today's code.

- Every ``bench`` command in a fenced ``bash`` block parses against the command line: the subcommand exists, every
  option exists, required options and arguments are there, numbers are numbers (click's own parser, no callback).
  Its ``--set`` keys exist in the profile it names, with values of the right type.
- The cheap ones run, in process: ``bench run`` (as ``--dry-run`` unless it prints its config; ``--out`` in a temporary
  folder), ``bench models``, ``bench datasets`` and ``bench check-model``. A command whose paths are placeholders
  (``PATH/...``, a folder the reader makes) is only parsed.
- Inline ``bench ...`` code in prose names an existing subcommand and options.
- ``python`` blocks compile; those of docs/api.md and docs/data.md run (smoke profile) except the marked
  ``<!-- compile-only -->`` ones and the API snippet, which tests/test_examples.py runs; docs/plugins.md's model passes
  ``bench check-model``. Every ``api.NAME`` the docs mention exists.
- Every relative link resolves, anchors included; the code-layout table names existing paths; the image counts table
  of docs/data.md matches the registered datasets.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "results" / "README.md"]
PLUGIN_EXAMPLE = REPO / "examples" / "plugin_example" / "bench_plugin_example"
FENCE = re.compile(r"^(?:<!-- (?P<marker>[\w-]+) -->\s*\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.M | re.S)


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@dataclass
class Block:
    doc: Path
    lang: str
    body: str
    marker: str | None
    line: int

    @property
    def where(self) -> str:
        return f"{_rel(self.doc)}:{self.line}"


def blocks(lang: str | None = None) -> list[Block]:
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if lang is None or m.group("lang") == lang:
                line = text.count("\n", 0, m.start("body"))
                out.append(Block(doc, m.group("lang"), m.group("body"), m.group("marker"), line))
    return out


def prose(text: str) -> str:
    """The text outside fenced blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


# ------------------------------------------------------------------------------------------- shell commands


@dataclass
class Command:
    argv: list[str]
    where: str
    stdout_to: str | None = None  # `> FILE`


def commands(block: Block) -> list[Command]:
    """The commands of a bash block: continuation lines joined, comments, `&&` / `;` / `|` chains, environment
    assignments and redirections taken apart."""
    text = block.body.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        tokens = shlex.split(line, comments=True)
        current: list[str] = []
        chain = [current]
        for tok in tokens:
            if tok in ("&&", ";", "|", "||"):
                current = []
                chain.append(current)
            else:
                current.append(tok)
        for argv in chain:
            while argv and re.match(r"^[A-Z_]+=", argv[0]):
                argv.pop(0)
            if argv[:1] == ["/usr/bin/time"]:
                argv = [a for a in argv[1:] if a != "-v"]
            stdout_to = None
            if ">" in argv:
                i = argv.index(">")
                stdout_to = argv[i + 1]
                argv = argv[:i] + argv[i + 2 :]
            if argv:
                out.append(Command(argv, block.where, stdout_to))
    return out


def bash_commands() -> list[Command]:
    return [c for b in blocks("bash") for c in commands(b)]


def bench_commands() -> list[Command]:
    return [c for c in bash_commands() if c.argv[0] == "bench"]


def resolve(args: list[str], where: str) -> tuple[click.Command, list[str], str]:
    """(click command, its arguments, its name) of `bench ARGS`."""
    from bench.cli import cli

    cmd, i, name = cli, 0, "bench"
    while isinstance(cmd, click.Group):
        assert i < len(args), f"{where}: `bench {' '.join(args)}` names no subcommand"
        sub = cmd.commands.get(args[i])
        assert sub is not None, (
            f"{where}: `bench {args[i]}` is not a subcommand of `{name}` ({', '.join(cmd.commands)})"
        )
        cmd, name, i = sub, f"{name} {args[i]}", i + 1
    return cmd, args[i:], name


def option_names(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}


def option_values(args: list[str], name: str) -> list[str]:
    out = []
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith(name + "="):
            out.append(a.split("=", 1)[1])
    return out


def test_the_docs_have_commands_to_check():
    names = {" ".join(c.argv[:2]) for c in bench_commands()}
    assert {"bench run", "bench score", "bench report", "bench check-model", "bench eval", "bench data"} <= names
    readme = [c for c in bench_commands() if c.where.startswith("README.md")]
    assert any(c.argv == ["bench", "run", "--profile", "demo", "--out", "results/demo"] for c in readme), \
        "README.md lost its main job"  # fmt: skip
    shell = [c.argv for c in bash_commands() if c.where.startswith("README.md")]
    assert ["python", "-m", "pytest", "-q"] in shell, "README.md lost its test command"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e '.[test]'" in ci and "pytest -q" in ci, "README.md says .ci/run runs its test command"


def test_every_documented_bench_command_parses():
    problems = []
    for c in bench_commands():
        assert "..." not in c.argv, f"{c.where}: write the command in full in a code block, not `{' '.join(c.argv)}`"
        cmd, args, name = resolve(c.argv[1:], c.where)
        try:
            cmd.make_context(name, list(args), resilient_parsing=False)
        except click.ClickException as e:
            problems.append(f"{c.where}: `{' '.join(c.argv)}`: {e.format_message()}")
    assert not problems, "\n".join(problems)


def test_inline_bench_commands_name_existing_subcommands_and_options():
    problems = []
    for doc in DOCS:
        for m in re.finditer(r"`(bench [^`]*)`", prose(doc.read_text(encoding="utf-8"))):
            argv = [a for a in m.group(1).split() if a != "..."]
            cmd, args, name = resolve(argv[1:], _rel(doc))
            for a in args:
                if a.startswith("-") and a.split("=")[0] not in option_names(cmd):
                    problems.append(f"{_rel(doc)}: `{m.group(1)}`: `{name}` has no option {a}")
    assert not problems, "\n".join(problems)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _load_plugins(paths: list[str]) -> None:
    from bench import plugins

    for p in paths:
        plugins.load(p)


def _isolated(function: str, *args: str):
    """``function(*args)`` of this module in a fresh interpreter: the plug-ins it registers (the guides' example
    models and dataset) must not leak into the registries of the other tests of this session."""
    code = f"import json; from tests import test_docs as t; print('RESULT ' + json.dumps(t.{function}(*{args!r})))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return json.loads(r.stdout.rsplit("RESULT ", 1)[1])


@pytest.fixture(scope="module")
def doc_plugin(tmp_path_factory) -> str:
    """docs/plugins.md's example model, as the file `my_model.py` the guide's commands name."""
    text = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- plugin-snippet -->\s*```python\n(.*?)```", text, re.S)
    assert block, "docs/plugins.md lost its plug-in example marker"
    path = tmp_path_factory.mktemp("plugin") / "my_model.py"
    path.write_text(block.group(1), encoding="utf-8")
    return str(path)


EXAMPLE_PLUGINS = [str(PLUGIN_EXAMPLE / "model.py"), str(PLUGIN_EXAMPLE / "data.py")]  # what `pip install` would add


def check_set_keys(plugin: str) -> list[str]:
    from bench.config import load_profile

    _load_plugins([plugin, *EXAMPLE_PLUGINS])
    problems, checked = [], 0
    for c in bench_commands():
        sets = option_values(c.argv, "--set")
        if not sets:
            continue
        if not _cuda():  # loading a profile needs its device to exist: without CUDA only the spelling is checked
            device = re.compile(r"run\.device=(cpu|cuda(:\d+)?)")
            problems += [
                f"{c.where}: bad --set {s}" for s in sets if s.startswith("run.device=") and not device.fullmatch(s)
            ]
            sets = [s for s in sets if not s.startswith("run.device=")]
        profile = (option_values(c.argv, "--profile") or [None])[0]
        if option_values(c.argv, "--config") and profile is None:
            continue  # the profile is the file's
        try:
            load_profile(profile, sets=sets)
            checked += 1
        except Exception as e:
            problems.append(f"{c.where}: `{' '.join(c.argv)}`: {e}")
    return problems if checked >= 5 else [*problems, f"only {checked} commands with --set were checked"]


def test_documented_set_keys_exist(doc_plugin):
    problems = _isolated("check_set_keys", doc_plugin)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------ running the cheap ones


PLACEHOLDER = re.compile(r"(^|[=/])(PATH|DIGEST12|my-data|my-images|my_samples)\b")


def _runnable(c: Command, produced: set[str], plugin: str) -> list[str] | None:
    """The argv to run in process (paths mapped), or None when the command cannot run as written here."""
    argv = ["bench", *[plugin if a == "my_model.py" else a for a in c.argv[1:]]]
    if argv[1] == "run":
        if "--print-config" not in argv and "--dry-run" not in argv:
            argv.append("--dry-run")
    elif argv[1] not in ("models", "datasets", "check-model"):
        return None  # report / eval / score / data build need results or data the reader makes
    if any(PLACEHOLDER.search(a) for a in argv):
        return None
    for value in option_values(argv, "--data-root") + option_values(argv, "--config") + option_values(argv, "--plugin"):
        path = value.split("=", 1)[-1]
        if not ((REPO / path).exists() or path in produced):
            return None
    return argv


def run_cheap_commands(plugin: str, tmp: str) -> list[str]:
    """Each `bench run` of the docs plans (a dry run, or --print-config); `models`, `datasets`, `check-model` run."""
    import contextlib
    import io

    from bench import cli

    os.chdir(REPO)
    _load_plugins(EXAMPLE_PLUGINS)
    produced: dict[str, Path] = {}
    ran, problems = 0, []
    for n, c in enumerate(bench_commands()):
        argv = _runnable(c, set(produced), plugin)
        if argv is None:
            continue
        for i, a in enumerate(argv):
            if argv[i - 1] == "--out":
                argv[i] = str(Path(tmp) / f"out{n}")
            if argv[i - 1] == "--config" and a in produced:
                argv[i] = str(produced[a])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv[1:])
        if code != 0:
            problems.append(f"{c.where}: `{' '.join(c.argv)}` exited {code}: {err.getvalue().strip()[-500:]}")
            continue
        if c.stdout_to:
            produced[c.stdout_to] = Path(tmp) / f"stdout{n}"
            produced[c.stdout_to].write_text(out.getvalue(), encoding="utf-8")
        ran += 1
    return problems if ran >= 8 else [*problems, f"only {ran} documented commands could run"]


def test_cheap_documented_commands_run(tmp_path, doc_plugin):
    problems = _isolated("run_cheap_commands", doc_plugin, str(tmp_path))
    assert not problems, "\n".join(problems)


def test_other_documented_commands_exist():
    """`python SCRIPT.py` commands name scripts that exist; `pip install PATH` names an existing folder."""
    for c in bash_commands():
        if c.argv[0] in ("python", "python3") and c.argv[1:2] != ["-m"]:
            assert (REPO / c.argv[1]).is_file(), f"{c.where}: {c.argv[1]} does not exist"
        if c.argv[:2] == ["pip", "install"]:
            for a in c.argv[2:]:
                if a.startswith("examples/"):
                    assert (REPO / a).is_dir(), f"{c.where}: {a} does not exist"


# ------------------------------------------------------------------------------------------------ Python


def test_python_blocks_compile():
    for b in blocks("python"):
        compile(b.body, b.where, "exec")


def test_documented_api_names_exist():
    from bench import api

    for doc in DOCS:
        for name in sorted(set(re.findall(r"(?<![\w/.])api\.(?!md\b)([A-Za-z_]\w*)", doc.read_text(encoding="utf-8")))):
            assert hasattr(api, name), f"{_rel(doc)} mentions api.{name}, which bench.api does not have"


@pytest.mark.slow
def test_runnable_python_blocks_run(tmp_path):
    """docs/api.md's and docs/data.md's Python blocks run as written (smoke profile), each in a fresh namespace."""
    runnable = [b for b in blocks("python") if b.doc.name in ("api.md", "data.md")
                and b.marker not in ("api-snippet", "compile-only")]  # fmt: skip
    assert len(runnable) >= 3
    for b in runnable:
        assert 'profile="demo"' not in b.body and 'profile="cpu"' not in b.body, f"{b.where}: keep runnable blocks tiny"
    script = tmp_path / "blocks.py"
    script.write_text("".join(f"print('--- {b.where}', flush=True)\nexec(compile({b.body!r}, {b.where!r}, 'exec'), {{}})\n"
                              for b in runnable), encoding="utf-8")  # fmt: skip
    (tmp_path / "docs").symlink_to(REPO / "docs")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]


def check_model_items(plugin: str) -> list[list[str]]:
    from bench import api

    report = api.check_model("pixelgauss", plugins=[plugin])
    return [[i.status, i.name, i.detail] for i in report.items]


def test_plugin_guide_model_passes_check_model(doc_plugin):
    """docs/plugins.md's model passes every item of `bench check-model`, resume included (not skipped)."""
    items = _isolated("check_model_items", doc_plugin)
    assert len(items) >= 7 and all(status == "ok" for status, _, _ in items), items


# ---------------------------------------------------------------------------------------- links and tables


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation except - and _ dropped, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6} (.+)$", prose(doc.read_text(encoding="utf-8")), re.M):
        s = slug(m.group(1))
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def test_relative_links_resolve():
    problems, checked = [], 0
    for doc in DOCS:
        for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", prose(doc.read_text(encoding="utf-8"))):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            checked += 1
            if not dest.exists():
                problems.append(f"{_rel(doc)}: link {target}: {path} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{_rel(doc)}: link {target}: no heading '#{anchor}' in {_rel(dest)}")
    assert not problems, "\n".join(problems)
    assert checked >= 20


def test_readme_links_every_guide():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for guide in ("using", "plugins", "data", "api", "results", "trust", "performance", "paper-model"):
        assert f"(docs/{guide}.md)" in readme, f"README.md does not link docs/{guide}.md"


def test_code_layout_names_existing_paths():
    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    table = text.split("<!-- code-layout -->", 1)[1]
    paths = re.findall(r"^\| `([^`]+)` \|", table, re.M)
    assert len(paths) >= 20
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"docs/api.md's code layout names paths that do not exist: {missing}"


def test_image_counts_table_matches_the_registered_datasets():
    from bench.config import PROFILE_NAMES
    from bench.datasets import registry
    from bench.datasets.split import n_outliers_for

    text = (REPO / "docs" / "data.md").read_text(encoding="utf-8")
    table = text.split("<!-- counts-table -->", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            rows[(name, cells[1].strip("`"))] = cells[2:]
    for name in ("folder", "facemask", "corrupted", "roomcrop"):
        for profile in PROFILE_NAMES:
            s = registry.get(name).settings_for(profile)
            held = s.classifier_train_per_class + s.classifier_test_per_class
            expected = [s.inliers, s.classifier_train_per_class, s.classifier_test_per_class, s.reference,
                        getattr(s, "pool_per_half", None), s.inliers + held + s.reference,
                        held + n_outliers_for(30, s.inliers)]  # fmt: skip
            assert rows.get((name, profile)) == ["" if v is None else f"{v:,}" for v in expected], \
                f"docs/data.md's image counts for {name} / {profile} differ from the code: {expected}"  # fmt: skip
