// The tables as diesel sees them. Kept by hand to match both `migrations/`
// folders; the `schema_matches_migrations` integration test compares this file
// with what the migrations produce on SQLite and PostgreSQL.

diesel::table! {
    organisations (id) {
        id -> Text,
        code -> Text,
        kind -> Text,
        name -> Text,
        parent_id -> Nullable<Text>,
        area_level -> Nullable<Text>,
        school_level -> Nullable<Text>,
        agency_type -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
