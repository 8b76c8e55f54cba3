"""The export-log rows ``logs stats`` reports and ``logs cleanup`` removes.

Rows are walked by keyset on the id (``id > last ORDER BY id LIMIT n``), and a batch is
deleted by its id range (``id > last AND id <= max_of_batch AND created_at < cutoff``),
which measured about twice as fast on PostgreSQL as ``DELETE ... USING (SELECT ... LIMIT)``
and never re-reads the dead index entries earlier batches left behind. Each batch is its own
short transaction, so the application writing the table never waits on a cleanup for long.

Connections are kept for the whole run, since with no pool a fresh connection per batch
would cost more than the batch: the run connection (counts, archived deletes), plus one for
the batch reader of an archive run, or two autocommit ones (one picks the next batch, one
deletes the current) for a delete-only run. Close the repository when the run is over.

An archived batch is deleted only in the versions that were read and archived (see
``log_lines``): the delete returns what it removed, compares it with the batch inside its
own transaction (on SQLite only when another connection has committed since the read:
see ``sqlite``), and rolls back on any difference; the catalog row of its object is
written in that same transaction, so a catalogued object always holds rows that are gone
and a crash never leaves a catalogue row for rows still in the table.

Statistics are one statement: the min/max of ``created_at`` are two index probes and the
eligible count an index-only range scan of the ``created_at`` index. The total is an exact
``count(*)``: PostgreSQL has no cheaper exact answer, and it runs as a parallel index-only
scan of that same index, about 0.2 s per million rows (an estimate would be instant but
is what people misread in an incident).
"""

from opsctl.adapters.db.old_logs.repository import OldLogsRepository

__all__ = ["OldLogsRepository"]
