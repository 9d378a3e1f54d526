-- aligndata feedback service, schema 1 (SQLite). Keep in step with postgres_0001.sql: only the
-- identity columns differ. Timestamps are milliseconds since the Unix epoch (server clock).
CREATE TABLE decisions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    cell            TEXT NOT NULL,
    arm             TEXT NOT NULL,
    propensity      DOUBLE PRECISION NOT NULL,
    probabilities   TEXT NOT NULL,
    policy_version  TEXT NOT NULL,
    key_id          BIGINT,
    server_ts       BIGINT NOT NULL
);

CREATE TABLE turns (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id  TEXT NOT NULL,
    user_message     TEXT NOT NULL,
    agent_response   TEXT NOT NULL,
    policy_version   TEXT,
    cell             TEXT NOT NULL,
    arm              TEXT,
    propensity       DOUBLE PRECISION,
    decision_id      BIGINT UNIQUE REFERENCES decisions(id),
    candidates       TEXT NOT NULL,
    client_ts        TEXT,
    server_ts        BIGINT NOT NULL,
    idempotency_key  TEXT UNIQUE,
    request_hash     TEXT NOT NULL,
    key_id           BIGINT
);
CREATE INDEX turns_conversation ON turns (conversation_id);

CREATE TABLE feedback (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id          BIGINT NOT NULL REFERENCES turns(id),
    kind             TEXT NOT NULL CHECK (kind IN ('thumb', 'rating', 'comment', 'correction', 'pairwise')),
    value            DOUBLE PRECISION,
    rejected         BIGINT,
    text             TEXT,
    reward           BIGINT,
    idempotency_key  TEXT UNIQUE,
    request_hash     TEXT NOT NULL,
    key_id           BIGINT,
    server_ts        BIGINT NOT NULL
);
CREATE INDEX feedback_turn ON feedback (turn_id);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_ts  BIGINT NOT NULL,
    revoked_ts  BIGINT
);

CREATE TABLE arm_stats (
    cell       TEXT NOT NULL,
    arm        TEXT NOT NULL,
    successes  BIGINT NOT NULL DEFAULT 0,
    failures   BIGINT NOT NULL DEFAULT 0,
    turns      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (cell, arm)
);
