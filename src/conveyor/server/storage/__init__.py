"""Object storage for archived logs (and later artifacts): an ``ObjectStore`` interface and its
backends. Filesystem by default; any URL ``obstore`` understands (s3://, file://) otherwise.

May import obstore and the standard library only.
"""

from conveyor.server.storage.base import ObjectStore
from conveyor.server.storage.obstore_store import ObstoreObjectStore, open_store
from conveyor.server.storage.s3 import S3Options

__all__ = ["ObjectStore", "ObstoreObjectStore", "S3Options", "open_store"]
