"""The annotation project store: one SQLite database per project folder, or a team project in
PostgreSQL at a ``postgresql://`` URL (never imports torch).

Public API: :class:`Project` and its records (:class:`ClassInfo`, :class:`ImageRecord`,
:class:`CandidateRecord`, :class:`AnnotationRecord`, :class:`ImageSummary`, :class:`HistoryStep`,
:class:`ImageBatch`), the error types it raises beyond
:class:`~text2seg_widgets.errors.InputError`, :func:`restore_backup`, and the constants.

Where each part lives (each is a class :class:`Project` builds with the database and the other
parts it needs; no mixins): :mod:`.images` (adding, records, relinking), :mod:`.classes`,
:mod:`.states` (image states and the review invariant: done only when no candidate is proposed),
:mod:`.navigation` (image list, go-to, next/previous), :mod:`.review` (candidates and
annotations), :mod:`.effort` (origin, edit actions, time), :mod:`.runs` (batch runs),
:mod:`.claims` (images held by one worker), :mod:`.backup` (online backups, restore),
:mod:`.history` (undo/redo), :mod:`.sessions` (who has the project open), :mod:`.schema`
(Alembic versions and migrations), :mod:`.db` (the connection of either dialect, transactions,
the change log), :mod:`.people` (members, roles, the write guard), :mod:`.assignments`
(assignment, leases, Next), :mod:`.reviewstage` (approve / return), :mod:`.agreement`
(consensus and honeypots), :mod:`.feed` (other sessions' changes), :mod:`.copy` and
:mod:`.projectcopy` (moving a project between the two databases), :mod:`.integrity`,
:mod:`.pgconnect` and :mod:`.localpg` (reaching and running PostgreSQL).
"""

from __future__ import annotations

from text2seg_widgets.errors import UnreviewedError
from text2seg_widgets.store.adding import BadImage, ImageBatch
from text2seg_widgets.store.backup import restore_backup
from text2seg_widgets.store.db import ConflictError, ConnectionLostError, ProjectBusyError
from text2seg_widgets.store.history import HistoryStep
from text2seg_widgets.store.people import NotAllowedError
from text2seg_widgets.store.project import DB_NAME, Project
from text2seg_widgets.store.records import (AnnotationRecord, CandidateRecord, ClassInfo,
                                            ImageRecord, ImageSummary, MaskRow)
from text2seg_widgets.store.schema import CANDIDATE_STATUSES, IMAGE_STATES, ORIGINS, SCHEMA_VERSION

__all__ = ["Project", "ClassInfo", "ImageRecord", "CandidateRecord", "AnnotationRecord",
           "ImageSummary", "MaskRow", "HistoryStep", "ImageBatch", "BadImage", "restore_backup",
           "ConflictError", "ProjectBusyError", "UnreviewedError", "ConnectionLostError",
           "NotAllowedError",
           "IMAGE_STATES", "CANDIDATE_STATUSES", "ORIGINS", "SCHEMA_VERSION", "DB_NAME"]
