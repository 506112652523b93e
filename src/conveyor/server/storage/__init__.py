"""Object storage for archived logs (and later artifacts): an ``ObjectStore`` interface and its
backends. Filesystem by default; any URL ``obstore`` understands (s3://, file://) otherwise. And
``SegmentFiles``: append-only files in a local directory (live logs' sealed chunks).

May import obstore and the standard library only.
"""

from conveyor.server.storage.base import ObjectStore
from conveyor.server.storage.obstore_store import ObstoreObjectStore, open_store
from conveyor.server.storage.s3 import S3Options
from conveyor.server.storage.segments import SegmentFiles

__all__ = ["ObjectStore", "ObstoreObjectStore", "S3Options", "SegmentFiles", "open_store"]
