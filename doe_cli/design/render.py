"""Per-run `[% %]` rendering on data (never on JSON text), so quotes and braces in values survive.

Only strings containing `[%` are templates; each distinct template is compiled once. Which `my_run`
values a template reads is found from its syntax tree, so templates are rendered in dependency order
and a reference cycle is reported with the keys involved instead of looping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import jinja2
from jinja2 import nodes
from jinja2.runtime import new_context

# A rendered value that again contains `[% %]` (e.g. produced by a filter) is rendered again, this often.
MAX_RERENDERS = 10


class RenderError(Exception):
    """A template of one run failed; `path` is the value's path in the run config."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class CompiledTemplate:
    template: jinja2.Template
    refs: frozenset          # paths of my_run the template reads
    reads_all: bool          # it reads my_run as a whole (or through a computed key)
    fast: list | None        # text parts and value getters, when the template is simple enough (below)


class _NotFast(Exception):
    """A simple template met a case only Jinja handles (a missing key, an attribute of a non-mapping)."""


_FAST_NAMES = frozenset({"my_run", "run", "exp_host_lst"})
_MAPPING_ATTRIBUTES = frozenset(dir(dict))


def _fast_getter(node: nodes.Node, env: jinja2.Environment):
    """A function variables -> value for the expressions most designs use (constants, my_run.a.b,
    my_run['a'][0], run, plain filters with constant arguments), or None for anything else.

    It gives what Jinja gives; in every other case (a missing key, a value that is not a mapping) it
    raises _NotFast, and on that or any other exception (a failing filter) Jinja renders the template,
    with Jinja's error messages.
    """
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda variables: value
    if isinstance(node, nodes.Name) and node.name in _FAST_NAMES and node.ctx == "load":
        name = node.name
        return lambda variables: variables[name]
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        inner = _fast_getter(node.node, env)
        if inner is None:
            return None
        if isinstance(node, nodes.Getattr):
            key = node.attr
            if key in _MAPPING_ATTRIBUTES:
                return None  # Jinja would return the dict method, not the key

            def attribute(variables, inner=inner, key=key):
                obj = inner(variables)
                if type(obj) is not dict or key not in obj:
                    raise _NotFast
                return obj[key]

            return attribute
        if not isinstance(node.arg, nodes.Const):
            return None
        key = node.arg.value

        def item(variables, inner=inner, key=key):
            obj = inner(variables)
            kind = type(obj)
            if kind is dict and key in obj:
                return obj[key]
            if kind is list and type(key) is int and -len(obj) <= key < len(obj):
                return obj[key]
            raise _NotFast

        return item
    if isinstance(node, nodes.Filter) and node.node is not None and not node.kwargs \
            and node.dyn_args is None and node.dyn_kwargs is None \
            and all(isinstance(arg, nodes.Const) for arg in node.args):
        function = env.filters.get(node.name)
        inner = _fast_getter(node.node, env)
        if function is None or inner is None or getattr(function, "jinja_pass_arg", None) is not None:
            return None
        arguments = tuple(cast(nodes.Const, arg).value for arg in node.args)

        def apply(variables, inner=inner, function=function, arguments=arguments):
            return function(inner(variables), *arguments)

        return apply
    return None


def _render_fast(parts: list, variables: dict, finalize: Any) -> str | None:
    """The text of a simple template, or None when Jinja has to render it (and report any error)."""
    try:
        return "".join(part if type(part) is str else str(finalize(part(variables))) for part in parts)
    except Exception:  # noqa: BLE001 - _NotFast, or a filter failing: Jinja renders it again
        return None


def _fast_plan(ast: nodes.Template, env: jinja2.Environment) -> list | None:
    """Text parts and getters of a template that is only text and simple expressions."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    parts: list = []
    for node in ast.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
        else:
            getter = _fast_getter(node, env)
            if getter is None:
                return None
            parts.append(getter)
    return parts


def _my_run_refs(ast: nodes.Node) -> tuple[frozenset, bool]:
    refs: set[tuple] = set()
    reads_all = False

    def chain(node: nodes.Node) -> tuple | None:
        keys = []
        while True:
            if isinstance(node, nodes.Getattr):
                keys.append(node.attr)
                node = node.node
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                keys.append(node.arg.value)
                node = node.node
            elif isinstance(node, nodes.Name) and node.name == "my_run":
                return tuple(reversed(keys))
            else:
                return None

    def visit(node: nodes.Node) -> None:
        nonlocal reads_all
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            path = chain(node)
            if path is not None:
                refs.add(path)
                return
        if isinstance(node, nodes.Name) and node.name == "my_run":
            reads_all = True
            return
        for child in node.iter_child_nodes():
            visit(child)

    visit(ast)
    return frozenset(refs), reads_all


class Renderer:
    """Renders the templates of runs; compiled templates are shared by all runs of a suite."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self.finalize = env.finalize or (lambda value: value)
        self._compiled: dict[str, CompiledTemplate] = {}
        self._orders: dict[tuple, list[int]] = {}

    def compile(self, source: str, path: tuple) -> CompiledTemplate:
        compiled = self._compiled.get(source)
        if compiled is None:
            try:
                ast = self.env.parse(source)
                template = self.env.from_string(ast)
            except jinja2.TemplateSyntaxError as error:
                raise RenderError(path, f"[% %] template syntax error: {error.message} "
                                        f"in {source!r}") from None
            refs, reads_all = _my_run_refs(ast)
            compiled = CompiledTemplate(template, refs, reads_all, _fast_plan(ast, self.env))
            self._compiled[source] = compiled
        return compiled

    def render_run(self, my_run: dict, run_templates: list, cmd_templates: list, run_index: int,
                   exp_host_lst: Any) -> None:
        """Replace, in place, each template (container, key, path) of a run by its rendered text."""
        # One variables mapping per run, shared by its templates; {% set %} writes to a template's own
        # context, never to this mapping.
        variables = {**self.env.globals, "my_run": my_run, "run": run_index, "exp_host_lst": exp_host_lst}
        if run_templates:
            for position in self._order(run_templates):
                container, key, path = run_templates[position]
                container[key] = self._render(container[key], path, variables)
        rendered: dict[str, str] = {}  # the hosts of a host type often share one command
        for container, key, path in cmd_templates:
            source = container[key]
            result = rendered.get(source)
            if result is None:
                result = rendered[source] = self._render(source, path, variables)
            container[key] = result

    def _render(self, text: str, path: tuple, variables: dict) -> str:
        for _ in range(MAX_RERENDERS):
            compiled = self.compile(text, path)
            fast_text = (_render_fast(compiled.fast, variables, self.finalize)
                         if compiled.fast is not None else None)
            if fast_text is not None:
                text = fast_text
                if "[%" not in text or "%]" not in text:
                    return text
                continue
            template = compiled.template
            try:
                # what Template.render does, minus merging the globals into a new dict for every call
                context = new_context(self.env, template.name, template.blocks, variables, shared=True)
                text = self.env.concat(template.root_render_func(context))
            except jinja2.UndefinedError as error:
                raise RenderError(path, f"[% %] undefined: {error.message}") from None
            except Exception as error:  # noqa: BLE001 - failures of filters and expressions in user templates
                raise RenderError(path, f"[% %] rendering failed: {type(error).__name__}: {error}") from None
            if "[%" not in text or "%]" not in text:
                return text
        raise RenderError(path, f"[% %] still unresolved after {MAX_RERENDERS} renderings: {text!r}")

    def _order(self, run_templates: list) -> list[int]:
        """Template positions so that each is rendered after the templates it reads; cycles are errors.
        Runs of an experiment mostly share their templates, so orders are cached by (path, source)."""
        signature = tuple((path, container[key]) for container, key, path in run_templates)
        order = self._orders.get(signature)
        if order is None:
            order = self._orders[signature] = self._dependency_order(signature)
        return order

    def _dependency_order(self, signature: tuple) -> list[int]:
        compiled = [self.compile(source, path) for path, source in signature]
        if not any(c.refs or c.reads_all for c in compiled):
            return list(range(len(signature)))
        paths = [path for path, _ in signature]

        def depends(i: int, j: int) -> bool:
            if compiled[i].reads_all:
                return True
            target = paths[j]
            return any(ref[:len(target)] == target or target[:len(ref)] == ref for ref in compiled[i].refs)

        order: list[int] = []
        state = [0] * len(paths)  # 0 new, 1 on the current path, 2 done
        stack: list[int] = []

        def visit(i: int) -> None:
            state[i] = 1
            stack.append(i)
            for j in range(len(paths)):
                if not depends(i, j):
                    continue
                if state[j] == 1:
                    cycle = stack[stack.index(j):] + [j]
                    names = " -> ".join(".".join(str(k) for k in paths[k]) for k in cycle)
                    raise RenderError(paths[i], f"[% %] references form a cycle: {names}")
                if state[j] == 0:
                    visit(j)
            stack.pop()
            state[i] = 2
            order.append(i)

        for i in range(len(paths)):
            if state[i] == 0:
                visit(i)
        return order
