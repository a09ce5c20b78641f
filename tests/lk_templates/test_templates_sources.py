"""Template sources: embedded, user, workspace, legacy .core/linuxkit; precedence; plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lk_core.model import Template
from lk_core.plugins import new_plugins, set_plugins
from lk_core.template_source import TemplateSource
from lk_templates.directory import DirectorySource
from lk_templates.run_defaults import run_defaults
from lk_templates.run_defaults import template_defaults as defaults_of
from lk_templates.sources import EmbeddedSource, default_sources

from lk_core import hookimpl
from lk_templates import registry

# The registry takes the sources to consult: these tests consult the current
# plugins' (set_plugins() changes them).


def template_sources() -> list[TemplateSource]:
    from lk_core.plugins import get_plugins

    return get_plugins().template_sources()


def get_template(name: str) -> str:
    return registry.get_template(template_sources(), name)


def list_templates(include_shadowed: bool = False) -> list[registry.TemplateInfo]:
    return registry.list_templates(template_sources(), include_shadowed)


def template_variables(name: str) -> tuple[list[str], dict[str, str]]:
    return registry.template_variables(template_sources(), name)


def apply_template(name: str, variables: dict[str, str]) -> str:
    return registry.apply_template(template_sources(), name, variables)


def template_defaults(name: str) -> Any:
    return defaults_of(get_template(name), name=name)


SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMvalidlookingkeymaterial me@host"

CORE_DEV = "Development environment with Go, Node.js, PHP, Docker-in-LinuxKit, and SSH access"
SERVER_PHP = "Production PHP server with FrankenPHP, Caddy reverse proxy, and health checks"

MINIMAL = """\
# {description}
kernel:
  image: linuxkit/kernel:6.6.13
  cmdline: "console=ttyS0"
init:
  - linuxkit/init:493f0a88594f032e6af4804469934f8658ceefe6
"""


def write(folder: Path, filename: str, description: str = "A template") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(MINIMAL.format(description=description))
    return path


def render(name: str, **variables: str) -> dict[str, Any]:
    document = yaml.safe_load(apply_template(name, {"SSH_KEY": SSH_KEY, **variables}))
    assert isinstance(document, dict)
    return document


def file_entry(document: dict[str, Any], path: str) -> dict[str, Any]:
    matches = [f for f in document["files"] if f["path"] == path]
    assert len(matches) == 1, path
    entry: dict[str, Any] = matches[0]
    return entry


def service(document: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    matches = [s for s in document[section] if s["name"] == name]
    assert len(matches) == 1, name
    entry: dict[str, Any] = matches[0]
    return entry


# ---------------------------------------------------------------------------
# embedded
# ---------------------------------------------------------------------------


def test_embedded_templates_and_descriptions(workspace: Path) -> None:
    embedded = {t.name: t for t in EmbeddedSource().list_templates()}
    assert sorted(embedded) == ["core-dev", "server-php"]
    assert embedded["core-dev"].description == CORE_DEV
    assert embedded["server-php"].description == SERVER_PHP
    assert all(t.source == "embedded" for t in embedded.values())
    listed = {t.name: t for t in list_templates()}
    assert listed["core-dev"].description == CORE_DEV
    assert listed["core-dev"].source == "embedded"


def test_embedded_templates_are_package_data(workspace: Path) -> None:
    from importlib import resources

    folder = resources.files("lk_templates").joinpath("templates")
    names = sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".yml"))
    assert names == ["core-dev.yml", "server-php.yml"]
    assert EmbeddedSource().read_template("core-dev") == folder.joinpath("core-dev.yml").read_text(
        encoding="utf-8"
    )
    assert EmbeddedSource().read_template("nope") is None


def test_embedded_variables_match_the_reference(workspace: Path) -> None:
    assert template_variables("core-dev") == (
        ["SSH_KEY"],
        {"MEMORY": "2048", "CPUS": "2", "DATA_SIZE": "10G", "HOSTNAME": "core-dev"},
    )
    required, optional = template_variables("server-php")
    assert required == ["SSH_KEY"]
    assert optional == {
        "MEMORY": "512",
        "CPUS": "1",
        "APP_NAME": "app",
        "HOSTNAME": "php-server",
        "DOMAIN": "localhost",
        "PHP_MEMORY": "128M",
    }


@pytest.mark.parametrize("name", ["core-dev", "server-php"])
def test_embedded_templates_are_linuxkit_yaml(workspace: Path, name: str) -> None:
    document = render(name)
    assert set(document) <= {"kernel", "init", "onboot", "onshutdown", "services", "files", "trust"}
    assert document["kernel"]["image"].startswith("linuxkit/kernel:6.6.")
    assert "console=ttyS0" in document["kernel"]["cmdline"]
    init = [image.split(":")[0] for image in document["init"]]
    assert init == [
        "linuxkit/init",
        "linuxkit/runc",
        "linuxkit/containerd",
        "linuxkit/ca-certificates",
    ]
    assert all(":" in image for image in document["init"])  # pinned
    for section in ("onboot", "services"):
        for entry in document[section]:
            assert set(entry) >= {"name", "image"}
            assert ":" in entry["image"], entry  # every image is pinned to a tag
    onboot = [entry["name"] for entry in document["onboot"]]
    assert "dhcpcd" in onboot and "metadata" in onboot
    assert service(document, "services", "sshd")["image"].startswith("linuxkit/sshd:")
    assert document["trust"] == {"org": ["linuxkit"]}
    for entry in document["files"]:
        assert not entry["path"].startswith("/"), "LinuxKit file paths are relative"


@pytest.mark.parametrize("name", ["core-dev", "server-php"])
def test_ssh_key_lands_where_linuxkit_sshd_expects_it(workspace: Path, name: str) -> None:
    document = render(name)
    keys = file_entry(document, "root/.ssh/authorized_keys")
    assert keys["contents"] == SSH_KEY + "\n"
    assert keys["mode"] == "0600"
    assert file_entry(document, "root/.ssh")["mode"] == "0700"
    sshd = service(document, "services", "sshd")
    assert "/root/.ssh:/root/.ssh" in sshd["binds.add"]


def test_core_dev_variables_take_effect(workspace: Path) -> None:
    document = render("core-dev", HOSTNAME="devbox")
    assert file_entry(document, "etc/hostname")["contents"] == "devbox"
    assert file_entry(render("core-dev"), "etc/hostname")["contents"] == "core-dev"
    # The data disk: formatted with a label, mounted where Docker keeps its data.
    assert service(document, "onboot", "format")["command"][-2:] == ["-label", "lkdata"]
    mount = service(document, "onboot", "mount")["command"]
    assert mount[-3:] == ["-label", "lkdata", "/var/lib/docker"]
    docker = service(document, "services", "docker")
    assert "/var/lib/docker:/var/lib/docker" in docker["binds"]
    for tool in ("go", "node", "php"):
        assert "/workspace:/workspace" in service(document, "services", tool)["binds"]
    # MEMORY, CPUS and DATA_SIZE are what lk reads as the VM's defaults.
    content = get_template("core-dev")
    assert run_defaults(content, {"SSH_KEY": SSH_KEY}) == {
        "memory": 2048,
        "cpus": 2,
        "disk_size": "10G",
    }
    given = {"SSH_KEY": SSH_KEY, "MEMORY": "4G", "CPUS": "4", "DATA_SIZE": "20G"}
    assert run_defaults(content, given) == {"memory": 4096, "cpus": 4, "disk_size": "20G"}


def test_server_php_variables_take_effect(workspace: Path) -> None:
    document = render("server-php", APP_NAME="shop", DOMAIN="shop.example.com", PHP_MEMORY="256M")
    caddyfile = file_entry(document, "etc/caddy/Caddyfile")["contents"]
    assert "\nshop.example.com {\n" in caddyfile
    assert "health_uri /healthz" in caddyfile
    assert "reverse_proxy 127.0.0.1:8080" in caddyfile
    assert "memory_limit = 256M\n" in file_entry(document, "etc/frankenphp/php.ini")["contents"]
    frankenphp = service(document, "services", "frankenphp")
    assert "/srv/shop:/app" in frankenphp["binds"]
    assert "APP_NAME=shop" in frankenphp["env"]
    file_entry(document, "srv/shop/public/index.php")
    assert file_entry(document, "etc/hostname")["contents"] == "php-server"
    assert "respond /healthz" in file_entry(document, "etc/frankenphp/Caddyfile")["contents"]
    assert template_defaults("server-php") == {"memory": 512, "cpus": 1}


# ---------------------------------------------------------------------------
# user, workspace and legacy folders
# ---------------------------------------------------------------------------


def test_user_templates_both_extensions(user_templates: Path) -> None:
    write(user_templates, "alpha.yml", "Alpha box")
    write(user_templates, "beta.yaml", "Beta box")
    found = {t.name: t for t in list_templates()}
    assert found["alpha"].source == "user" and found["alpha"].description == "Alpha box"
    assert found["beta"].source == "user" and found["beta"].description == "Beta box"
    assert found["beta"].path == str(user_templates / "beta.yaml")
    assert get_template("alpha").startswith("# Alpha box")
    assert get_template("beta").startswith("# Beta box")  # .yaml loads (reference defect)
    rendered = yaml.safe_load(apply_template("beta", {}))
    assert rendered["kernel"]["image"] == "linuxkit/kernel:6.6.13"


def test_user_template_default_description(user_templates: Path) -> None:
    (user_templates / "plain.yml").write_text("kernel:\n  image: k\ninit: []\n")
    (user_templates / "late.yml").write_text("kernel:\n  image: k # not a description\n")
    (user_templates / "blank.yml").write_text("\n#\n#   \n  # Indented title\nkernel: {}\n")
    found = {t.name: t.description for t in list_templates()}
    assert found["plain"] == "User-defined template"
    assert found["late"] == "User-defined template"
    assert found["blank"] == "Indented title"


def test_yml_wins_over_yaml_in_one_folder(user_templates: Path) -> None:
    write(user_templates, "dup.yml", "From yml")
    write(user_templates, "dup.yaml", "From yaml")
    infos = [t for t in list_templates(include_shadowed=True) if t.name == "dup"]
    assert [(t.source, t.description) for t in infos] == [("user", "From yml")]
    assert get_template("dup").startswith("# From yml")


def test_folders_ignore_other_files(user_templates: Path) -> None:
    write(user_templates, "good.yml")
    write(user_templates, ".hidden.yml")
    write(user_templates, "has space.yml")
    write(user_templates, "notes.txt")
    write(user_templates, "UPPER.YML")
    (user_templates / "folder.yml").mkdir()
    names = [t.name for t in list_templates() if t.source == "user"]
    assert names == ["good"]


def test_workspace_templates(workspace_templates: Path) -> None:
    write(workspace_templates, "project.yml", "Project VM")
    write(workspace_templates, "other.yaml", "Other VM")
    found = {t.name: t for t in list_templates()}
    assert found["project"].source == "workspace"
    assert found["other"].source == "workspace"
    assert found["project"].path == str(workspace_templates / "project.yml")


def test_legacy_core_linuxkit_folders(workspace: Path, tmp_path: Path) -> None:
    write(workspace / ".core" / "linuxkit", "legacy-ws.yml", "Legacy workspace")
    write(tmp_path / "home" / ".core" / "linuxkit", "legacy-home.yaml", "Legacy home")
    found = {t.name: t for t in list_templates()}
    assert found["legacy-ws"].source == "legacy-workspace"
    assert found["legacy-home"].source == "legacy-home"
    assert get_template("legacy-home").startswith("# Legacy home")


def test_sources_follow_the_current_directory(tmp_path: Path, workspace: Path) -> None:
    write(workspace / ".lk" / "templates", "here.yml")
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert "here" in [t.name for t in list_templates()]
    import os

    os.chdir(other)
    assert "here" not in [t.name for t in list_templates()]


# ---------------------------------------------------------------------------
# precedence
# ---------------------------------------------------------------------------


def test_precedence_order_is_documented_and_strict(workspace: Path) -> None:
    sources = default_sources()
    assert [s.name for s in sources] == [
        "workspace",
        "user",
        "legacy-workspace",
        "legacy-home",
        "embedded",
    ]
    priorities = [s.priority for s in sources]
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) == 5
    assert [s.name for s in template_sources()][-5:] == [s.name for s in sources]


def test_precedence_and_shadowing(
    workspace: Path, user_templates: Path, workspace_templates: Path, tmp_path: Path
) -> None:
    write(workspace_templates, "core-dev.yml", "From workspace")
    write(user_templates, "core-dev.yaml", "From user")
    write(workspace / ".core" / "linuxkit", "core-dev.yml", "From legacy workspace")
    write(tmp_path / "home" / ".core" / "linuxkit", "core-dev.yml", "From legacy home")
    assert get_template("core-dev").startswith("# From workspace")
    everything = [t for t in list_templates(include_shadowed=True) if t.name == "core-dev"]
    assert [(t.source, t.shadowed_by) for t in everything] == [
        ("workspace", ""),
        ("user", "workspace"),
        ("legacy-workspace", "workspace"),
        ("legacy-home", "workspace"),
        ("embedded", "workspace"),
    ]
    assert [t.shadowed for t in everything] == [False, True, True, True, True]
    visible = [t for t in list_templates() if t.name == "core-dev"]
    assert [(t.source, t.description) for t in visible] == [("workspace", "From workspace")]
    # Remove the winner: the next one takes over.
    (workspace_templates / "core-dev.yml").unlink()
    assert get_template("core-dev").startswith("# From user")


def test_user_template_overrides_builtin(user_templates: Path) -> None:
    write(user_templates, "server-php.yml", "My PHP server")
    assert get_template("server-php").startswith("# My PHP server")
    assert template_variables("server-php") == ([], {})
    rows = [(t.source, t.shadowed_by) for t in list_templates(True) if t.name == "server-php"]
    assert rows == [("user", ""), ("embedded", "user")]


def test_list_is_sorted_and_unique(user_templates: Path) -> None:
    write(user_templates, "zeta.yml")
    write(user_templates, "alpha.yml")
    names = [t.name for t in list_templates()]
    assert names == sorted(names) and len(names) == len(set(names))


# ---------------------------------------------------------------------------
# third-party sources through the hook
# ---------------------------------------------------------------------------


class DictSource:
    """A tiny third-party source, as the docs show."""

    name = "company"
    priority = 35

    def __init__(self, templates: dict[str, str]) -> None:
        self.templates = templates

    def list_templates(self) -> list[Template]:
        return [Template(n, "Company template", self.name) for n in sorted(self.templates)]

    def read_template(self, name: str) -> str | None:
        return self.templates.get(name)


class CompanyPlugin:
    @hookimpl
    def register_template_sources(self) -> list[Any]:
        return [
            DictSource({"core-dev": MINIMAL.format(description="Company dev box")}),
            DirectorySource("team", lambda: Path.cwd() / "team-templates", priority=5),
        ]


def test_third_party_source_through_the_hook(
    workspace: Path, user_templates: Path, workspace_templates: Path
) -> None:
    set_plugins(new_plugins(extra=[("company", CompanyPlugin())]))
    names = [s.name for s in template_sources()]
    assert names == [
        "workspace",
        "company",
        "user",
        "legacy-workspace",
        "legacy-home",
        "team",
        "embedded",
    ]
    assert get_template("core-dev").startswith("# Company dev box")
    write(user_templates, "core-dev.yml", "User dev box")
    assert get_template("core-dev").startswith("# Company dev box")  # 35 > 30
    write(workspace_templates, "core-dev.yml", "Workspace dev box")
    assert get_template("core-dev").startswith("# Workspace dev box")  # 40 > 35
    write(workspace / "team-templates", "team-only.yml", "Team box")
    assert {t.name: t.source for t in list_templates()}["team-only"] == "team"


def test_plugin_entry_point_registers_the_sources(workspace: Path) -> None:
    from lk_core.plugins import get_plugins

    plugins = get_plugins()
    assert "templates" in plugins.infos
    assert plugins.infos["templates"].hooks == (
        "container_removed",
        "prepare_run",
        "register_commands",
        "register_options",
        "register_template_sources",
    )
    assert plugins.infos["templates"].distribution == "lk-templates"


def _python_blocks() -> list[str]:
    docs = Path(__file__).resolve().parents[2] / "docs" / "templates.md"
    text = docs.read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_docs_plugin_examples_work(workspace: Path) -> None:
    import types

    blocks = _python_blocks()
    plugins = [b for b in blocks if "@hookimpl" in b]
    assert len(plugins) == 2
    extra = []
    for index, code in enumerate(plugins):
        module = types.ModuleType(f"doc_example_{index}")
        exec(compile(code, f"docs/templates.md#{index}", "exec"), module.__dict__)
        extra.append((module.__name__, module))
    set_plugins(new_plugins(extra=extra))
    names = [s.name for s in template_sources()]
    assert names.index("workspace") < names.index("company") < names.index("user")
    assert names.index("legacy-home") < names.index("catalogue") < names.index("embedded")
    assert {t.name: t.source for t in list_templates()}["redis"] == "catalogue"
    assert get_template("redis").startswith("# Redis server")
    assert [t.description for t in list_templates() if t.name == "redis"] == ["Redis server"]


def test_docs_api_listing_names_real_functions() -> None:
    (api,) = [b for b in _python_blocks() if "from lk_templates.linuxkit import" in b]
    exec(compile(api, "docs/templates.md#api", "exec"), {})
