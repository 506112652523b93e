"""Reading project repositories with git: resolve a ref to a commit, read a file at a commit.

Remote repositories are mirrored under the data directory. Runs git processes from threads of
its own (``git.py``), and reads a local repository's branch from its ref file (``refs.py``).
``GitIncludeResolver`` serves ``include:`` files to ``ciconfig.load`` (local, other projects,
remote over HTTP(S) with ``RemoteFetcher``, GitLab's templates from a ``TemplateDirectory``).
"""

from conveyor.server.sources.git import GitError, GitSources
from conveyor.server.sources.includes import GitIncludeResolver
from conveyor.server.sources.remote import RemoteFetcher
from conveyor.server.sources.templates import TemplateDirectory

__all__ = ["GitError", "GitIncludeResolver", "GitSources", "RemoteFetcher", "TemplateDirectory"]
