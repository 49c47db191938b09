"""No model output (or any other data) is run as code.

An AST scan of cpe/ for the calls that run or unpickle text: each hit is either gone or
allowlisted here with the reason it never sees model output. The GRM parser, the one
reader of free model text, is given code-shaped outputs and must only call them invalid.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cpe.algo.grm_parse import parse_grm_output
from cpe.reward.format import format_grm_output

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "cpe"

#: (file relative to the repo, finding) -> why it is safe.
ALLOWED = {
    ("cpe/launch/__main__.py", "dynamic import importlib.import_module"): (
        "the module comes from the fixed COMMANDS table, keyed by the sub-command"
    ),
    ("cpe/reward/python_backend.py", "dynamic import pkgutil.resolve_name"): (
        "grm.python_function names code the user configured to run, not model output"
    ),
}

RUNS_TEXT = {"eval", "exec", "compile", "__import__"}
UNPICKLERS = {"pickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}
SHELLS = {("os", "system"), ("os", "popen")}
DYNAMIC_IMPORTS = {("importlib", "import_module"), ("pkgutil", "resolve_name")}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.expr) -> tuple[str, str] | None:
    """('module', 'attr') for ``module.attr`` (also ``a.module.attr``)."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name | ast.Attribute):
        base = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
        return base, node.attr
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _finding(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name) and func.id in RUNS_TEXT:
        return f"builtin {func.id}"
    dotted = _dotted(func)
    if dotted is None:
        return None
    module, attr = dotted
    if module in UNPICKLERS and attr.startswith("load"):
        return f"unpickling {module}.{attr}"
    if dotted in SHELLS:
        return f"shell {module}.{attr}"
    if module == "subprocess" and _is_true(_keyword(call, "shell")):
        return f"shell subprocess.{attr}(shell=True)"
    if module == "yaml" and attr in ("unsafe_load", "full_load", "load_all", "load"):
        loader = _keyword(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
        name = getattr(loader, "attr", getattr(loader, "id", None))
        if attr == "load" and name in SAFE_YAML_LOADERS:
            return None
        return f"unsafe yaml.{attr}"
    if module == "torch" and attr == "load" and not _is_true(_keyword(call, "weights_only")):
        return "torch.load without weights_only=True"
    if attr == "load" and _is_true(_keyword(call, "allow_pickle")):
        return f"{module}.load(allow_pickle=True)"
    if dotted in DYNAMIC_IMPORTS:
        return f"dynamic import {module}.{attr}"
    return None


def findings(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    hits = [(n.lineno, _finding(n)) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return sorted((line, what) for line, what in hits if what)


@pytest.mark.parametrize(
    "source, what",
    [
        ("eval(text)", "builtin eval"),
        ("exec(text)", "builtin exec"),
        ("__import__(text)", "builtin __import__"),
        ("pickle.loads(blob)", "unpickling pickle.loads"),
        ("yaml.load(text)", "unsafe yaml.load"),
        ("yaml.load(text, Loader=yaml.Loader)", "unsafe yaml.load"),
        ("yaml.unsafe_load(text)", "unsafe yaml.unsafe_load"),
        ("torch.load(path)", "torch.load without weights_only=True"),
        ("torch.load(path, weights_only=False)", "torch.load without weights_only=True"),
        ("subprocess.run(cmd, shell=True)", "shell subprocess.run(shell=True)"),
        ("os.system(cmd)", "shell os.system"),
        ("np.load(path, allow_pickle=True)", "np.load(allow_pickle=True)"),
        ("importlib.import_module(name)", "dynamic import importlib.import_module"),
    ],
)
def test_the_scan_finds_each_pattern(source, what):
    assert findings(source) == [(1, what)]


@pytest.mark.parametrize(
    "source",
    [
        "yaml.safe_load(text)",
        "yaml.load(text, Loader=yaml.SafeLoader)",
        "torch.load(path, weights_only=True)",
        "subprocess.run([sys.executable, '-m', 'cpe.train'])",
        "ast.literal_eval(text)",
        "model.eval()",
        "re.compile(pattern)",
    ],
)
def test_the_scan_passes_safe_calls(source):
    assert findings(source) == []


def test_cpe_runs_no_text_as_code_beyond_the_allowlist():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, what in findings(path.read_text()):
            found.setdefault((rel, what), []).append(line)
    unexplained = {k: v for k, v in found.items() if k not in ALLOWED}
    assert unexplained == {}, "remove these or allowlist them with a reason"
    assert set(ALLOWED) <= set(found), "stale allowlist entries"


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch {marker}')",
        "<scores>Helpfulness: __import__('os').system('touch {marker}')\n"
        "Personalization: 2\nNaturalness: 1</scores>",
        "<critique>ok</critique><scores>Helpfulness: eval(\"open('{marker}','w')\")\n"
        "Personalization: exec('import os; os.system(\"touch {marker}\")')\n"
        "Naturalness: 1</scores>",
    ],
)
def test_code_shaped_grm_output_is_invalid_and_nothing_runs(payload, tmp_path):
    marker = tmp_path / "ran"
    judgement = parse_grm_output(payload.format(marker=marker))
    assert not judgement.valid and judgement.error
    assert not marker.exists()


def test_a_valid_output_still_parses():
    # the parser's control: the inputs above fail for their content, not their shape
    assert parse_grm_output(format_grm_output("Fine.", [1, 2, 3])).valid
