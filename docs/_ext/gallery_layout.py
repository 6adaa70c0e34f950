"""The code under each gallery figure, laid out to fit its card (no Sphinx needed: tests/test_docs.py checks it
in the fast suite)."""

from __future__ import annotations

import ast

CODE_WIDTH = 48  # columns of the code under a figure: what a card shows without scrolling


def layout(code: str, width: int = 52) -> str:
    """The expression ``code`` laid out in ``width`` columns, as a formatter would: a call, list or dict that
    does not fit on its line breaks after its opening bracket, its items packed on the lines below."""
    return _fmt(ast.parse(code.strip(), mode="eval").body, 0, width)


def _src(node: ast.AST) -> str:
    return ast.unparse(node).replace("'", '"')  # our expressions hold no quote inside a string


def _fmt(node: ast.AST, indent: int, width: int) -> str:
    flat = _src(node)
    if indent + len(flat) <= width:
        return flat
    inner = indent + 4
    if isinstance(node, ast.Call):
        head, close = _src(node.func) + "(", ")"
        items = [_fmt(a, inner, width) for a in node.args]
        items += [f"{k.arg}=" + _fmt(k.value, inner + len(k.arg) + 1, width) for k in node.keywords]
    elif isinstance(node, (ast.List, ast.Tuple)):
        head, close = ("[", "]") if isinstance(node, ast.List) else ("(", ")")
        items = [_fmt(e, inner, width) for e in node.elts]
    elif isinstance(node, ast.Dict):
        head, close = "{", "}"
        items = [f"{_src(k)}: " + _fmt(v, inner + len(_src(k)) + 2, width)
                 for k, v in zip(node.keys, node.values, strict=True)]
    else:
        return flat
    lines: list[str] = []
    for i, item in enumerate(items):
        text = item + ("," if i < len(items) - 1 or "\n" in item else "")
        if lines and "\n" not in item and "\n" not in lines[-1] and len(lines[-1]) + 1 + len(text) <= width:
            lines[-1] += " " + text
        else:
            lines.append(" " * inner + text)
    return head + "\n" + "\n".join(lines) + "\n" + " " * indent + close
