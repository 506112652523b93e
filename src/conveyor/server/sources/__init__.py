"""Reading project repositories with git: resolve a ref to a commit, read a file at a commit.

Remote repositories are mirrored under the data directory. Uses only asyncio subprocesses.
"""

from conveyor.server.sources.git import GitError, GitSources

__all__ = ["GitError", "GitSources"]
