"""lk-example-hypervisor: the worked example of lk's plugin author guide.

The entry point (group ``lk``, name ``example``) is :mod:`lk_example_hypervisor.plugin`.
"""

__version__ = "0.1.0"
