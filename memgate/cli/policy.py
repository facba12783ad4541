"""``memgate policy ...``: validate a policy file, print the schema or the built-in policy."""

from __future__ import annotations

from pathlib import Path

import click

from memgate.cli.common import handle_errors


@click.group()
def policy() -> None:
    """Validate a policy file, print the policy schema, or show the built-in policy."""


@policy.command("check")
@click.argument("file")
@handle_errors
def policy_check(file: str) -> None:
    """Validate FILE against the policy schema; list every error with its path."""
    from memgate.policy import load_policy

    pol = load_policy(file)
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    click.echo(f"{file}: valid policy (version {pol.version}, {n(len(pol.rules), 'rule')}, "
               f"{n(len(pol.components), 'component')})")
    note = _schema_note(file)
    if note:
        click.echo(f"memgate: note: {file}: {note}", err=True)


#: The editor's modeline, as docs/policy.md, examples/memgate.yml and `policy show` write it.
SCHEMA_MODELINE = "# yaml-language-server: $schema=policy.schema.json"


def _schema_note(file: str) -> str | None:
    """What is wrong with the schema a policy names for editors, if anything: a file that is
    not there (an editor then validates nothing, silently), or a memgate.dev address (nothing
    serves it). Only the text is read; the named path is checked, never opened."""
    import json
    import re

    try:
        head = Path(file).read_text("utf-8", errors="replace")[:65536]
    except OSError:
        return None
    m = re.search(r"^#\s*yaml-language-server:\s*\$schema=(\S+)", head, re.MULTILINE)
    target = m.group(1) if m else None
    if target is None and head.lstrip().startswith("{"):
        try:
            data = json.loads(head)
        except ValueError:
            data = None
        value = data.get("$schema") if isinstance(data, dict) else None
        target = value if isinstance(value, str) else None
    if not target:
        return None
    fix = (f"write the schema next to the policy with `memgate policy schema > "
           f"{Path(file).parent / 'policy.schema.json'}` and name it $schema=policy.schema.json")
    if "://" in target:
        if "memgate.dev" in target:
            return f"the $schema {target} is not served by anything; {fix}"
        return None
    if not (Path(file).parent / target).is_file():
        return f"the $schema file {target} does not exist next to it; {fix}"
    return None


@policy.command("schema")
def policy_schema_cmd() -> None:
    """Print the policy JSON Schema (for editors: yaml-language-server $schema)."""
    import json

    from memgate.policy import policy_schema

    click.echo(json.dumps(policy_schema(), indent=2))


@policy.command("show")
def policy_show() -> None:
    """Print the built-in default policy with the reasons for its numbers.

    A starting point for ./memgate.yml: `memgate policy show > memgate.yml`, and
    `memgate policy schema > policy.schema.json` for editors that validate as you type.
    """
    from importlib.resources import files

    text = (files("memgate") / "data" / "default-policy.yml").read_text("utf-8")
    # The packaged file points at the schema beside it; a copy in a user's repository needs
    # the schema written next to it.
    text = text.replace("# yaml-language-server: $schema=../schemas/policy.schema.json",
                        f"{SCHEMA_MODELINE}\n"
                        "# (write it with: memgate policy schema > policy.schema.json)", 1)
    click.echo(text, nl=False)
