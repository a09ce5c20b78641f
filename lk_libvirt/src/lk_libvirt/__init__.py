"""lk-libvirt: run lk containers as libvirt domains, locally and on remote hosts.

The low-level layer, one concept a module:

* :mod:`lk_libvirt.binding` -- the only module that imports ``libvirt`` (lazily);
  a missing library becomes a one-line :class:`~lk_core.errors.HypervisorError`.
* :mod:`lk_libvirt.uri` -- libvirt connection URIs parsed into :class:`~lk_libvirt.uri.LibvirtURI`.
* :mod:`lk_libvirt.connection` -- opening a connection with a deadline.
* :mod:`lk_libvirt.domain_xml` -- the domain XML, built from plain parameters (pure), and
  lk's metadata element read back.
* :mod:`lk_libvirt.domains` -- define, start (paused), stop, undefine, list lk's domains.
* :mod:`lk_libvirt.storage` -- the ``lk`` storage pool and content-addressed volume uploads.
* :mod:`lk_libvirt.console` -- the serial console over the connection, and the local log file.
* :mod:`lk_libvirt.ports` -- host port forwards added to a running domain (HMP ``hostfwd_add``).

Importing this package imports none of ``libvirt``: ``lk --help`` pays nothing for it.
"""

from __future__ import annotations

__all__: list[str] = []
