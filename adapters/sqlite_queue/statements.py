"""The queue's SQL, all of it static text with bound parameters."""

# The claim is one statement: a job that is due, or whose lease expired (its worker died),
# becomes running for one more delivery.
CLAIM = """
UPDATE jobs SET state = 'running', attempt = attempt + 1, leased_until = :lease
WHERE id IN (
    SELECT id FROM jobs
    WHERE (state = 'queued' AND available_at <= :now)
       OR (state = 'running' AND leased_until <= :now)
    ORDER BY available_at, id
    LIMIT :limit
)
RETURNING id, task, payload, headers, dedup_key, attempt, enqueued_at, available_at
"""

NEXT_DUE = """
SELECT min(t) FROM (
    SELECT min(available_at) AS t FROM jobs WHERE state = 'queued'
    UNION ALL
    SELECT min(leased_until) FROM jobs WHERE state = 'running'
)
"""

# A duplicate dedup key stores nothing (rowcount 0).
INSERT = """
INSERT INTO jobs (id, task, payload, headers, dedup_key, state, attempt, available_at,
                  enqueued_at)
VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?)
ON CONFLICT (dedup_key) DO NOTHING
"""

# The same, already leased to a receiver of this queue instance (handoff.py): running, its
# first delivery, until ``leased_until``.
INSERT_LEASED = """
INSERT INTO jobs (id, task, payload, headers, dedup_key, state, attempt, available_at,
                  enqueued_at, leased_until)
VALUES (?, ?, ?, ?, ?, 'running', 1, ?, ?, ?)
ON CONFLICT (dedup_key) DO NOTHING
"""

FREE_DEDUP_KEY = "DELETE FROM jobs WHERE dedup_key = ? AND state = 'done' AND finished_at < ?"
# One batch: a purge runs on the loop's thread (in the fast claim), and one statement for
# a minute of 300 jobs/s held it for a tenth of a second (18,000 rows, 110 ms).
PURGE_DONE = """
DELETE FROM jobs WHERE rowid IN (
    SELECT rowid FROM jobs WHERE state = 'done' AND finished_at < ? LIMIT ?
)
"""

# Each of these touches a job only while it is held: still running under the attempt
# number its consumer received (the lease token).
ACK = """
UPDATE jobs SET state = 'done', leased_until = NULL, finished_at = ?
WHERE id = ? AND attempt = ? AND state = 'running'
"""
RETRY = """
UPDATE jobs SET state = 'queued', leased_until = NULL, available_at = ?, last_error = ?
WHERE id = ? AND attempt = ? AND state = 'running'
"""
EXTEND = """
UPDATE jobs SET leased_until = ?
WHERE id = ? AND attempt = ? AND state = 'running'
"""
# Undo a claim nobody received (its receive was cancelled), as if it never happened.
RELEASE = """
UPDATE jobs SET state = 'queued', attempt = attempt - 1, leased_until = NULL
WHERE id = ? AND attempt = ? AND state = 'running'
"""
TAKE_HELD = """
DELETE FROM jobs WHERE id = ? AND attempt = ? AND state = 'running'
RETURNING id, task, payload, headers, attempt, dedup_key
"""

INSERT_DEAD = """
INSERT INTO dead_letters (id, task, payload, headers, attempts, dedup_key, last_error, failed_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
LIST_DEAD = """
SELECT id, task, payload, attempts, last_error, failed_at, dedup_key
FROM dead_letters ORDER BY failed_at, id LIMIT ?
"""
TAKE_DEAD = "DELETE FROM dead_letters WHERE id = ? RETURNING task, payload, headers, dedup_key"
PURGE_DEAD = "DELETE FROM dead_letters"
COUNT_DEAD = "SELECT count(*) FROM dead_letters"
DEPTH = "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')"
