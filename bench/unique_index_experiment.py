#!/usr/bin/env python3
"""What a UNIQUE index on a random digest costs a store that appends rows in batches (issue 17's store).

The verifier's store.db keeps `attestations.envelope_digest` UNIQUE (schema 1): SQLite indexes it, and since the
digest is random each insert lands on a random leaf of that index. Once the index is larger than a batch, nearly
every insert dirties one more 4 KiB page, written to the WAL at commit and again to the database at checkpoint.
This synthetic run inserts ROWS rows shaped like an attestation (a 2,600-byte envelope, a `sha256:` digest, a node
id, a commit) in transactions of 2,048 with the store's settings (WAL, synchronous=FULL, a checkpoint every eight
transactions), into a table WITH or WITHOUT that index, and prints the bytes written. Run both through
bench/compare.py (bench/README.md, "The unique envelope digest index").

usage: unique_index_experiment.py unique|none ROWS DIR
"""
import hashlib
import os
import resource
import sqlite3
import sys


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("unique", "none"):
        sys.exit(__doc__.strip().splitlines()[-1])
    variant, rows, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, variant + ".db")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    unique = "UNIQUE" if variant == "unique" else ""
    db.execute(f"CREATE TABLE attestations(id INTEGER PRIMARY KEY, envelope_digest TEXT NOT NULL {unique}, "
               "envelope BLOB NOT NULL, node_id TEXT NOT NULL, commit_id TEXT NOT NULL)")
    envelope = bytes(range(256)) * 10 + bytes(40)  # 2,600 bytes; the content does not matter to SQLite
    before = resource.getrusage(resource.RUSAGE_SELF)
    batch = 2048
    for start in range(0, rows, batch):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO attestations(envelope_digest, envelope, node_id, commit_id) VALUES(?, ?, ?, ?)",
            (("sha256:" + hashlib.sha256(str(i).encode()).hexdigest(), envelope, "node-%d" % (i % 50),
              "%040x" % (i // 50)) for i in range(start, min(rows, start + batch))))
        db.execute("COMMIT")
        if (start // batch) % 8 == 7:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    written = (after.ru_oublock - before.ru_oublock) * 512
    print(f"{variant}: {rows} rows, {written / 1e6:.0f} MB written, database {os.path.getsize(path) / 1e6:.0f} MB")
    os.remove(path)


if __name__ == "__main__":
    main()
