"""The README says what the code does: every setting is in its configuration table, every make target it names
exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from orchestrator.core.config import Settings as OrchestratorSettings
from receiver.core.config import Settings as ReceiverSettings
from sender.core.config import Settings as SenderSettings

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SERVICE_SETTINGS: tuple[type[BaseSettings], ...] = (SenderSettings, ReceiverSettings, OrchestratorSettings)

_BACKTICKED_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_MAKE_TARGET = re.compile(r"(?<![\w-])make ([a-z][a-z0-9_-]*)")
_RULE = re.compile(r"^([A-Za-z0-9_.-]+(?: [A-Za-z0-9_.-]+)*)\s*:(?!=)", re.MULTILINE)
_COMPOSE_VARIABLE = re.compile(r"\$\{(OBM_[A-Z0-9_]+)")
_RELATIVE_LINK = re.compile(r"\]\((?!https?:|#)([^)#\s]+)")


def environment_names(settings: type[BaseSettings]) -> list[str]:
    """The variable each field of ``settings`` is read from: its alias, or the prefix and its name."""
    prefix = settings.model_config.get("env_prefix", "")
    return [
        field.validation_alias if isinstance(field.validation_alias, str) else f"{prefix}{name}".upper()
        for name, field in settings.model_fields.items()
    ]


def section(markdown: str, title: str) -> str:
    """The text under the level-2 heading ``title``, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match is not None, f"the README has no '## {title}' section"
    return match.group(1)


def configuration_table(markdown: str) -> set[str]:
    """The variables the configuration table's first column names (a row may name several)."""
    rows = [line for line in section(markdown, "Configuration").splitlines() if line.startswith("|")]
    return {name for row in rows for name in _BACKTICKED_NAME.findall(row.split("|")[1])}


def make_targets_named(markdown: str) -> set[str]:
    """The make targets the README names in code (inline or in blocks), where a command is written."""
    return {target for code in _CODE.findall(markdown) for target in _MAKE_TARGET.findall(code)}


def makefile_targets(makefile: str) -> set[str]:
    """The targets the Makefile defines rules for (pattern and special targets aside)."""
    return {target for rule in _RULE.findall(makefile) for target in rule.split() if "%" not in target}


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


@pytest.mark.parametrize("settings", SERVICE_SETTINGS, ids=lambda cls: cls.__module__.split(".")[0])
def test_every_setting_of_every_service_is_in_the_configuration_table(
    readme: str, settings: type[BaseSettings]
) -> None:
    documented = configuration_table(readme)
    missing = [name for name in environment_names(settings) if name not in documented]
    assert not missing, f"README's configuration table lacks {', '.join(missing)}"


def test_the_configuration_table_names_no_setting_the_services_do_not_have(readme: str) -> None:
    prefixes = tuple(str(cls.model_config.get("env_prefix")) for cls in SERVICE_SETTINGS)
    known = {name for cls in SERVICE_SETTINGS for name in environment_names(cls)}
    stale = sorted(
        name for name in configuration_table(readme) if name.startswith(prefixes) and name not in known
    )
    assert not stale, f"README's configuration table names settings no service reads: {', '.join(stale)}"


def test_every_variable_compose_reads_is_in_the_configuration_table(readme: str) -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    missing = sorted(set(_COMPOSE_VARIABLE.findall(compose)) - configuration_table(readme))
    assert not missing, f"README's configuration table lacks {', '.join(missing)}, which compose reads"


def test_every_make_target_the_readme_names_exists(readme: str) -> None:
    named = make_targets_named(readme)
    assert {"up", "test"} <= named, "the README names its two commands, make up and make test"
    missing = sorted(named - makefile_targets((REPO / "Makefile").read_text()))
    assert not missing, f"the README names make targets the Makefile lacks: {', '.join(missing)}"


def test_every_file_the_readme_links_to_exists(readme: str) -> None:
    missing = sorted(link for link in _RELATIVE_LINK.findall(readme) if not (REPO / link).exists())
    assert not missing, f"the README links to files that do not exist: {', '.join(missing)}"


def test_a_row_taken_out_of_the_table_is_missed(readme: str) -> None:
    row = next(line for line in readme.splitlines() if line.startswith("| `RECEIVER_OUTPUT_DEPTH`"))
    assert "RECEIVER_OUTPUT_DEPTH" not in configuration_table(readme.replace(row + "\n", ""))
