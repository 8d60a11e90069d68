"""The SQLite index's schema, one migration per version; ``PRAGMA user_version`` records the applied one."""

from .click_values import SQLITE_FROM_CLICKS

MIGRATIONS: list[str] = [
    # 1: replays, segments, errors, issues and their links
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    CREATE TABLE replays (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        started_at REAL,
        ended_at REAL,
        segment_count INTEGER NOT NULL DEFAULT 0,
        raw_bytes INTEGER NOT NULL DEFAULT 0,
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        urls TEXT NOT NULL DEFAULT '[]',
        user TEXT NOT NULL DEFAULT '{}',
        user_label TEXT NOT NULL DEFAULT '',
        browser TEXT NOT NULL DEFAULT '',
        os TEXT NOT NULL DEFAULT '',
        device TEXT NOT NULL DEFAULT '',
        replay_type TEXT NOT NULL DEFAULT 'session',
        environment TEXT NOT NULL DEFAULT '',
        release TEXT NOT NULL DEFAULT '',
        sdk TEXT NOT NULL DEFAULT '',
        click_count INTEGER NOT NULL DEFAULT 0,
        rage_click_count INTEGER NOT NULL DEFAULT 0,
        scrub_report TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (project_id, replay_id)
    );
    CREATE INDEX replays_by_start ON replays (project_id, started_at DESC, replay_id DESC);
    CREATE INDEX replays_by_update ON replays (updated_at);

    CREATE TABLE segments (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        segment_id INTEGER NOT NULL,
        blob_key TEXT NOT NULL,
        codec TEXT NOT NULL,
        started_at REAL,
        ended_at REAL,
        event_count INTEGER NOT NULL,
        raw_bytes INTEGER NOT NULL,
        stored_bytes INTEGER NOT NULL,
        has_full_snapshot INTEGER NOT NULL,
        click_count INTEGER NOT NULL DEFAULT 0,
        rage_click_count INTEGER NOT NULL DEFAULT 0,
        scrub_report TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        PRIMARY KEY (project_id, replay_id, segment_id)
    );

    CREATE TABLE replay_state (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (project_id, replay_id)
    );

    CREATE TABLE issues (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        title TEXT NOT NULL,
        culprit TEXT NOT NULL DEFAULT '',
        level TEXT NOT NULL DEFAULT 'error',
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        count INTEGER NOT NULL DEFAULT 0,
        UNIQUE (project_id, fingerprint)
    );

    CREATE TABLE errors (
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        issue_id INTEGER NOT NULL,
        timestamp REAL NOT NULL,
        level TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT '',
        value TEXT NOT NULL DEFAULT '',
        message TEXT NOT NULL DEFAULT '',
        url TEXT NOT NULL DEFAULT '',
        browser TEXT NOT NULL DEFAULT '',
        os TEXT NOT NULL DEFAULT '',
        replay_id TEXT,
        data TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (project_id, event_id)
    );
    CREATE INDEX errors_by_issue ON errors (issue_id, timestamp DESC);

    CREATE TABLE replay_errors (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (project_id, replay_id, event_id)
    );
    CREATE INDEX replay_errors_by_event ON replay_errors (project_id, event_id);
    """,
    # 2: where a segment's blob is: the blob store, or still in the local spool
    """
    ALTER TABLE segments ADD COLUMN location TEXT NOT NULL DEFAULT 'store';
    """,
    # 3: the scrubber state's version, compared and bumped by every segment stored (a state kept
    # before this counts as version 1; no row at all is version 0)
    """
    ALTER TABLE replay_state ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    """,
    # 4: clicks (search by what was clicked, dead and rage clicks), per-replay counts, the erase audit
    """
    ALTER TABLE replays ADD COLUMN dead_click_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE replays ADD COLUMN console_error_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE replays ADD COLUMN url_count INTEGER NOT NULL DEFAULT 0;
    UPDATE replays SET url_count = json_array_length(urls) WHERE json_valid(urls);
    ALTER TABLE segments ADD COLUMN console_error_count INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE clicks (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        segment_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        timestamp REAL NOT NULL,
        node_id INTEGER,
        tag TEXT NOT NULL DEFAULT '',
        elem_id TEXT NOT NULL DEFAULT '',
        classes TEXT NOT NULL DEFAULT '',
        role TEXT NOT NULL DEFAULT '',
        label TEXT NOT NULL DEFAULT '',
        testid TEXT NOT NULL DEFAULT '',
        alt TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        selector TEXT NOT NULL DEFAULT '',
        is_dead INTEGER NOT NULL DEFAULT 0,
        is_rage INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project_id, replay_id, segment_id, seq)
    );
    -- click.textContent: the project's distinct click texts are few (a site's labels), its clicks
    -- many: a search reads the texts (LIKE), then the clicks with those texts by index
    CREATE TABLE click_texts (project_id INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (project_id, text))
        WITHOUT ROWID;
    CREATE INDEX clicks_by_text ON clicks (project_id, text, replay_id);
    CREATE INDEX clicks_dead ON clicks (project_id, selector) WHERE is_dead;
    CREATE INDEX clicks_rage ON clicks (project_id, selector) WHERE is_rage;
    CREATE INDEX replays_by_dead ON replays (project_id, dead_click_count) WHERE dead_click_count > 0;
    CREATE INDEX replays_by_rage ON replays (project_id, rage_click_count) WHERE rage_click_count > 0;
    CREATE INDEX replays_by_user_email ON replays (project_id, json_extract(user, '$.email'));
    CREATE INDEX replays_by_user_id ON replays (project_id, json_extract(user, '$.id'));

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        project_id INTEGER NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 5: activity (records.activity_score) as an indexed column, so activity: searches and sorts read an
    # index, not an expression per row. It needs the error count in the row: a column the links'
    # triggers keep (a replay row written after its links counts them when inserted).
    """
    ALTER TABLE replays ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
    UPDATE replays SET error_count = (SELECT COUNT(*) FROM replay_errors e WHERE e.project_id = replays.project_id
        AND e.replay_id = replays.replay_id);
    CREATE TRIGGER replay_errors_counted AFTER INSERT ON replay_errors BEGIN
        UPDATE replays SET error_count = error_count + 1
        WHERE project_id = NEW.project_id AND replay_id = NEW.replay_id;
    END;
    CREATE TRIGGER replay_errors_uncounted AFTER DELETE ON replay_errors BEGIN
        UPDATE replays SET error_count = error_count - 1
        WHERE project_id = OLD.project_id AND replay_id = OLD.replay_id;
    END;
    CREATE TRIGGER replays_count_errors AFTER INSERT ON replays BEGIN
        UPDATE replays SET error_count = (SELECT COUNT(*) FROM replay_errors e WHERE e.project_id = NEW.project_id
            AND e.replay_id = NEW.replay_id) WHERE rowid = NEW.rowid;
    END;
    ALTER TABLE replays ADD COLUMN activity INTEGER GENERATED ALWAYS AS (
        CASE WHEN (error_count * 25 + url_count * 5 + dead_click_count * 10 + rage_click_count * 15) / 10 > 10 THEN 10
             WHEN (error_count * 25 + url_count * 5 + dead_click_count * 10 + rage_click_count * 15) / 10 < 1 THEN 1
             ELSE (error_count * 25 + url_count * 5 + dead_click_count * 10 + rage_click_count * 15) / 10 END) VIRTUAL;
    CREATE INDEX replays_by_activity ON replays (project_id, activity);
    """,
    # 6: compaction (server/compaction.py): where a compacted segment is in its replay's compacted object,
    # the loose segments compaction looks for, and the objects it has replaced but not deleted yet
    """
    ALTER TABLE segments ADD COLUMN chunk_start INTEGER;
    ALTER TABLE segments ADD COLUMN chunk_end INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE segments ADD COLUMN chunk_offset INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE segments ADD COLUMN chunk_length INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX segments_loose ON segments (project_id, replay_id) WHERE chunk_start IS NULL;
    CREATE TABLE blob_garbage (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        blob_key TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (project_id, replay_id, blob_key)
    );
    """,
    # 7: each replay's distinct clicked values per field (server/index/click_values.py), so click.tag, .id,
    # .class, .role, .label, .testid, .alt, .title and click.selector read a few rows a replay, not every
    # click (2–10 s → ms on 2,000,000 clicks); user.username gets the expression index email and id have
    """
    CREATE TABLE click_values (
        project_id INTEGER NOT NULL,
        replay_id TEXT NOT NULL,
        field TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (project_id, replay_id, field, value)
    ) WITHOUT ROWID;
    """ + SQLITE_FROM_CLICKS + """
    CREATE INDEX click_values_by_value ON click_values (project_id, field, value, replay_id);
    CREATE INDEX replays_by_user_username ON replays (project_id, json_extract(user, '$.username'));
    """,
]
