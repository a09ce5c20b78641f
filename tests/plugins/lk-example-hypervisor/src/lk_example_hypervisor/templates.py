"""The ``example`` template source: one LinuxKit template shipped inside the plugin."""

from __future__ import annotations

from lk_core.model import Template

HELLO = """\
# A minimal LinuxKit VM that prints a greeting on its serial console
kernel:
  image: linuxkit/kernel:6.6.13
  cmdline: "console=ttyS0"
init:
  - linuxkit/init:493f0a88594f032e6af4804469934f8658ceefe6
  - linuxkit/runc:8b5af3365fc7d015db4e44113d93c7b1f8e2d2ab
onboot:
  - name: hello
    image: alpine:3.20
    command: ["echo", "${GREETING:-hello from lk}"]
"""


# --8<-- [start:source]
class ExampleTemplates:
    """A :class:`lk_core.template_source.TemplateSource` with one built-in template."""

    name = "example"
    priority = 5  # above lk-templates' embedded (0), below user (30) and workspace (40)

    def list_templates(self) -> list[Template]:
        """Every template this source offers, sorted by name."""
        description = HELLO.splitlines()[0].lstrip("# ")
        return [Template("example-hello", description, self.name, "lk_example_hypervisor")]

    def read_template(self, name: str) -> str | None:
        """The YAML of ``name``, or None: another source may have it."""
        return HELLO if name == "example-hello" else None


# --8<-- [end:source]
