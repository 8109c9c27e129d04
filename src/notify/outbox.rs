//! The `outbox` table: queued messages and the worker's claims on them.
//!
//! A row moves `pending → sending → sent`, back to `pending` after a failed
//! attempt, or to `dead` after the last one. `sending` is a lease: the claim
//! names the worker (`locked_by`) and an expiry (`locked_until`); a row whose
//! lease ran out (its worker died) is claimed again. Claims commit before
//! anything is sent. On PostgreSQL they take row locks with `SKIP LOCKED`, so
//! workers of several replicas never claim the same row; on SQLite the write
//! transaction (`BEGIN IMMEDIATE`) already admits one claimer at a time.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::db::DbConnection;
use crate::db::schema::outbox;

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl Status {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Sending, Self::Sent, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub idempotency_key: String,
    pub recipient: String,
    pub language: String,
    pub template: String,
    pub params: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutboxRow<'a> {
    pub id: &'a str,
    pub idempotency_key: &'a str,
    pub recipient: &'a str,
    pub language: &'a str,
    pub template: &'a str,
    pub params: &'a str,
    pub status: &'a str,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Inserts `row` unless its idempotency key is already there; tells which.
/// `ON CONFLICT DO NOTHING` (both backends) also settles two concurrent
/// transactions with one key: the second waits for the first and inserts
/// nothing, instead of failing.
pub fn insert_if_new(conn: &mut DbConnection, row: &NewOutboxRow<'_>) -> QueryResult<bool> {
    let query = diesel::insert_into(outbox::table)
        .values(row)
        .on_conflict(outbox::idempotency_key)
        .do_nothing();
    let inserted = match conn {
        DbConnection::Postgresql(c) => query.execute(c)?,
        DbConnection::Sqlite(c) => query.execute(c)?,
    };
    Ok(inserted == 1)
}

/// One message by its idempotency key.
pub fn find_by_key(conn: &mut DbConnection, key: &str) -> QueryResult<Option<OutboxRow>> {
    outbox::table
        .filter(outbox::idempotency_key.eq(key))
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()
}

/// Every message, oldest first (for tests and tools; the table is pruned by
/// no one yet).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<OutboxRow>> {
    outbox::table
        .order((outbox::created_at, outbox::id))
        .select(OutboxRow::as_select())
        .load(conn)
}

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub dead: i64,
}

impl StatusCounts {
    pub fn get(&self, status: Status) -> i64 {
        match status {
            Status::Pending => self.pending,
            Status::Sending => self.sending,
            Status::Sent => self.sent,
            Status::Dead => self.dead,
        }
    }
}

pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<StatusCounts> {
    let rows: Vec<(String, i64)> = outbox::table
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .load(conn)?;
    let mut counts = StatusCounts::default();
    for (status, count) in rows {
        match status.as_str() {
            "pending" => counts.pending = count,
            "sending" => counts.sending = count,
            "sent" => counts.sent = count,
            "dead" => counts.dead = count,
            _ => {}
        }
    }
    Ok(counts)
}

/// A worker's claim, made by [`claim`].
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub worker: &'a str,
    pub now: NaiveDateTime,
    pub lease_until: NaiveDateTime,
    pub limit: i64,
    /// Rows that already had this many attempts are not tried again.
    pub max_attempts: i32,
}

/// What [`claim`] took.
#[derive(Debug, Default)]
pub struct Claimed {
    /// Rows now `sending` under this worker's lease, attempts counted.
    pub rows: Vec<OutboxRow>,
    /// Ids of rows whose last allowed attempt was interrupted (their lease
    /// ran out): now `dead`.
    pub expired: Vec<String>,
}

#[derive(QueryableByName)]
struct DueId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// What is due: pending and its time has come, or sending under a lease that
/// ran out (the worker holding it died or hung).
const PG_DUE: &str = "SELECT id FROM outbox \
     WHERE (status = 'pending' AND next_attempt_at <= $1) \
        OR (status = 'sending' AND locked_until <= $1) \
     ORDER BY next_attempt_at, id LIMIT $2 \
     FOR UPDATE SKIP LOCKED";

type IsDue = diesel::dsl::Or<
    diesel::dsl::And<
        diesel::dsl::Eq<outbox::status, &'static str>,
        diesel::dsl::LtEq<outbox::next_attempt_at, NaiveDateTime>,
    >,
    diesel::dsl::And<
        diesel::dsl::Eq<outbox::status, &'static str>,
        diesel::dsl::LtEq<diesel::dsl::AssumeNotNull<outbox::locked_until>, NaiveDateTime>,
    >,
>;

/// [`PG_DUE`]'s condition in the query builder.
fn is_due(now: NaiveDateTime) -> IsDue {
    let pending_due = outbox::status
        .eq(Status::Pending.as_str())
        .and(outbox::next_attempt_at.le(now));
    let lease_over = outbox::status
        .eq(Status::Sending.as_str())
        .and(outbox::locked_until.assume_not_null().le(now));
    pending_due.or(lease_over)
}

/// Claims up to `limit` due messages for `worker`. Run it in a write
/// transaction of its own and commit before sending anything.
///
/// The updates repeat the due condition: should a row slip through the
/// row locks (another worker's claim committed between our read and our
/// write), it is left alone instead of being taken twice.
pub fn claim(conn: &mut DbConnection, claim: &Claim<'_>) -> QueryResult<Claimed> {
    let due: Vec<String> = match conn {
        // Rows another worker is claiming right now are skipped, not waited for.
        DbConnection::Postgresql(c) => diesel::sql_query(PG_DUE)
            .bind::<Timestamp, _>(claim.now)
            .bind::<BigInt, _>(claim.limit)
            .load::<DueId>(c)?
            .into_iter()
            .map(|row| row.id)
            .collect(),
        DbConnection::Sqlite(c) => outbox::table
            .filter(is_due(claim.now))
            .order((outbox::next_attempt_at, outbox::id))
            .limit(claim.limit)
            .select(outbox::id)
            .load(c)?,
    };
    if due.is_empty() {
        return Ok(Claimed::default());
    }
    let expired: Vec<String> = outbox::table
        .filter(outbox::id.eq_any(&due))
        .filter(is_due(claim.now))
        .filter(outbox::attempts.ge(claim.max_attempts))
        .select(outbox::id)
        .load(conn)?;
    if !expired.is_empty() {
        diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(&expired))
                .filter(is_due(claim.now)),
        )
        .set((
            outbox::status.eq(Status::Dead.as_str()),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::locked_by.eq(None::<String>),
            outbox::last_error.eq("interrupted"),
        ))
        .execute(conn)?;
    }
    let take: Vec<&String> = due.iter().filter(|id| !expired.contains(id)).collect();
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(&take))
            .filter(is_due(claim.now)),
    )
    .set((
        outbox::status.eq(Status::Sending.as_str()),
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::locked_until.eq(claim.lease_until),
        outbox::locked_by.eq(claim.worker),
    ))
    .execute(conn)?;
    let rows = outbox::table
        .filter(outbox::id.eq_any(&take))
        .filter(outbox::status.eq(Status::Sending.as_str()))
        .filter(outbox::locked_by.eq(claim.worker))
        .filter(outbox::locked_until.eq(claim.lease_until))
        .order((outbox::next_attempt_at, outbox::id))
        .select(OutboxRow::as_select())
        .load(conn)?;
    Ok(Claimed { rows, expired })
}

type ById<'a> = diesel::dsl::Filter<outbox::table, diesel::dsl::Eq<outbox::id, &'a str>>;
type Held<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<ById<'a>, diesel::dsl::Eq<outbox::status, &'static str>>,
    diesel::dsl::Eq<outbox::locked_by, &'a str>,
>;

/// The row `id` while `worker` still holds it.
fn held<'a>(id: &'a str, worker: &'a str) -> Held<'a> {
    outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::status.eq(Status::Sending.as_str()))
        .filter(outbox::locked_by.eq(worker))
}

/// Records a delivery. `false` when `worker` no longer held the row (its
/// lease ran out and another worker took it).
pub fn mark_sent(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    now: NaiveDateTime,
    forget_params: bool,
) -> QueryResult<bool> {
    let changes = (
        outbox::status.eq(Status::Sent.as_str()),
        outbox::sent_at.eq(Some(now)),
        outbox::locked_until.eq(None::<NaiveDateTime>),
        outbox::locked_by.eq(None::<String>),
        outbox::last_error.eq(None::<String>),
    );
    let updated = if forget_params {
        diesel::update(held(id, worker))
            .set((changes, outbox::params.eq("{}")))
            .execute(conn)?
    } else {
        diesel::update(held(id, worker))
            .set(changes)
            .execute(conn)?
    };
    Ok(updated == 1)
}

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    At(NaiveDateTime),
    GiveUp,
}

/// Records a failed attempt: back to `pending` until `retry`, or `dead`.
/// `error` is a short error kind, never message content.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    retry: Retry,
    error: &str,
    forget_params: bool,
) -> QueryResult<bool> {
    let release = (
        outbox::locked_until.eq(None::<NaiveDateTime>),
        outbox::locked_by.eq(None::<String>),
        outbox::last_error.eq(Some(error)),
    );
    let updated = match retry {
        Retry::At(at) => diesel::update(held(id, worker))
            .set((
                release,
                outbox::status.eq(Status::Pending.as_str()),
                outbox::next_attempt_at.eq(at),
            ))
            .execute(conn)?,
        Retry::GiveUp if forget_params => diesel::update(held(id, worker))
            .set((
                release,
                outbox::status.eq(Status::Dead.as_str()),
                outbox::params.eq("{}"),
            ))
            .execute(conn)?,
        Retry::GiveUp => diesel::update(held(id, worker))
            .set((release, outbox::status.eq(Status::Dead.as_str())))
            .execute(conn)?,
    };
    Ok(updated == 1)
}
