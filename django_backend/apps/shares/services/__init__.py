"""Every state change of a share, by concern.

- lifecycle: create, open, revoke, purge one;
- claims: claim a download (authorize, open the bytes, take the download, open its session);
- sessions: the download session a claim opens (ranges, budget, completion, its window);
- moderation: report, quarantine, release, remove, resolve a report;
- maintenance: the periodic jobs, purge all and reconcile storage;
- events: the timeline every change writes to.

Reads live in apps.shares.selectors and the ShareQuerySet. Views, the API, admin actions,
tasks and commands translate their input to one of these calls and its result (or an
exception from apps.shares.exceptions) to their output. Storage I/O stays outside database
transactions: a crash between the two leaves an orphan in one direction or the other,
which the reconciler removes, never a reachable half-file.
"""
