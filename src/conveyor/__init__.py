"""Conveyor: a self-hostable CI/CD system that speaks GitLab CI.

Packages, in the direction imports flow:
``protocol`` (wire contract) <- ``ciconfig`` (YAML -> config) <- ``pipeline`` (config -> jobs)
<- ``server``; and ``protocol`` <- ``runner``. ``cli`` wires the parts into commands.
"""

__version__ = "0.1.0"
