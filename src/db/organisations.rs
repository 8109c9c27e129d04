//! The `organisations` table: row, insert and update structs, queries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::organisations;
use crate::domain::org::{OrgDetails, OrgSpec};

/// One stored organisation.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = organisations)]
pub struct OrganisationRow {
    pub id: String,
    pub code: String,
    pub kind: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub area_level: Option<String>,
    pub school_level: Option<String>,
    pub agency_type: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The coded columns a spec sets, in column order: kind, area level, school
/// level, agency type.
fn coded_columns(
    details: &OrgDetails,
) -> (&'static str, Option<String>, Option<String>, Option<String>) {
    match details {
        OrgDetails::Area { level } => ("area", Some(level.as_str().to_owned()), None, None),
        OrgDetails::School { level } => ("school", None, Some(level.as_str().to_owned()), None),
        OrgDetails::Agency { agency_type } => {
            ("agency", None, None, Some(agency_type.as_str().to_owned()))
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organisations)]
pub struct NewOrganisation {
    pub id: String,
    pub code: String,
    pub kind: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub area_level: Option<String>,
    pub school_level: Option<String>,
    pub agency_type: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl NewOrganisation {
    pub fn from_spec(
        spec: &OrgSpec,
        id: String,
        parent_id: Option<String>,
        now: NaiveDateTime,
    ) -> Self {
        let (kind, area_level, school_level, agency_type) = coded_columns(&spec.details);
        Self {
            id,
            code: spec.code.as_str().to_owned(),
            kind: kind.to_owned(),
            name: spec.name.as_str().to_owned(),
            parent_id,
            area_level,
            school_level,
            agency_type,
            created_at: now,
            updated_at: now,
        }
    }
}

/// What an import may change on an existing organisation: its name, its
/// level and its place in the tree (communes merge; schools move with them).
#[derive(Debug, AsChangeset)]
#[diesel(table_name = organisations, treat_none_as_null = true)]
pub struct OrganisationChanges {
    pub name: String,
    pub parent_id: Option<String>,
    pub area_level: Option<String>,
    pub school_level: Option<String>,
    pub agency_type: Option<String>,
    pub updated_at: NaiveDateTime,
}

impl OrganisationChanges {
    pub fn from_spec(spec: &OrgSpec, parent_id: Option<String>, now: NaiveDateTime) -> Self {
        let (_, area_level, school_level, agency_type) = coded_columns(&spec.details);
        Self {
            name: spec.name.as_str().to_owned(),
            parent_id,
            area_level,
            school_level,
            agency_type,
            updated_at: now,
        }
    }

    /// True when applying these changes would leave `row` as it is.
    pub fn is_noop_for(&self, row: &OrganisationRow) -> bool {
        self.name == row.name
            && self.parent_id == row.parent_id
            && self.area_level == row.area_level
            && self.school_level == row.school_level
            && self.agency_type == row.agency_type
    }
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<OrganisationRow>> {
    organisations::table
        .select(OrganisationRow::as_select())
        .order(organisations::code.asc())
        .load(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    organisations::table.count().get_result(conn)
}

pub fn insert(conn: &mut DbConnection, row: &NewOrganisation) -> QueryResult<()> {
    diesel::insert_into(organisations::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update(conn: &mut DbConnection, id: &str, changes: &OrganisationChanges) -> QueryResult<()> {
    diesel::update(organisations::table.find(id))
        .set(changes)
        .execute(conn)
        .map(drop)
}

pub fn find_by_code(conn: &mut DbConnection, code: &str) -> QueryResult<Option<OrganisationRow>> {
    organisations::table
        .filter(organisations::code.eq(code))
        .select(OrganisationRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OrganisationRow>> {
    organisations::table
        .find(id)
        .select(OrganisationRow::as_select())
        .first(conn)
        .optional()
}

/// The first area without a parent, by code.
pub fn root_area(conn: &mut DbConnection) -> QueryResult<Option<OrganisationRow>> {
    organisations::table
        .filter(organisations::kind.eq("area"))
        .filter(organisations::parent_id.is_null())
        .order(organisations::code.asc())
        .select(OrganisationRow::as_select())
        .first(conn)
        .optional()
}

/// The ids of `root_id` and every organisation below it.
pub fn subtree_ids(conn: &mut DbConnection, root_id: &str) -> QueryResult<Vec<String>> {
    let all: Vec<(String, Option<String>)> = organisations::table
        .select((organisations::id, organisations::parent_id))
        .load(conn)?;
    let mut ids = vec![root_id.to_owned()];
    let mut index = 0;
    while let Some(current) = ids.get(index).cloned() {
        ids.extend(
            all.iter()
                .filter(|(_, parent)| parent.as_deref() == Some(current.as_str()))
                .map(|(id, _)| id.clone()),
        );
        index += 1;
    }
    Ok(ids)
}

/// One organisation of a chain (see [`chain`]).
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ChainRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub parent_id: Option<String>,
}

/// `org_id` and its ancestors, nearest first, at most `max` of them, in one
/// query (an authorization decision needs two such chains; walking them a
/// row at a time was a third of an intake's queries).
pub fn chain(conn: &mut DbConnection, org_id: &str, max: i64) -> QueryResult<Vec<ChainRow>> {
    diesel::sql_query(
        "WITH RECURSIVE up (id, kind, parent_id, depth) AS ( \
             SELECT id, kind, parent_id, 0 FROM organisations WHERE id = $1 \
             UNION ALL \
             SELECT o.id, o.kind, o.parent_id, up.depth + 1 \
             FROM organisations o JOIN up ON o.id = up.parent_id \
             WHERE up.depth + 1 < $2) \
         SELECT id, kind, parent_id FROM up ORDER BY depth",
    )
    .bind::<diesel::sql_types::Text, _>(org_id)
    .bind::<diesel::sql_types::BigInt, _>(max)
    .load(conn)
}
