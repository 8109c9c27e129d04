-- The organisation tree: areas (province, district, commune, … at any depth),
-- schools and partner agencies. Every column is operational or coded; an
-- organisation's name is public information, never a pupil's.
CREATE TABLE organisations (
    id TEXT NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    code TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 64),
    kind TEXT NOT NULL CHECK (kind IN ('area', 'school', 'agency')),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_id TEXT REFERENCES organisations (id) ON DELETE RESTRICT,
    area_level TEXT,
    school_level TEXT,
    agency_type TEXT CHECK (agency_type IN (
        'police', 'health', 'social_protection', 'womens_union', 'legal_aid', 'hotline', 'other'
    )),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (parent_id IS NULL OR parent_id <> id),
    CHECK (
        (kind = 'area' AND area_level IS NOT NULL AND school_level IS NULL AND agency_type IS NULL)
        OR (kind = 'school' AND parent_id IS NOT NULL AND school_level IS NOT NULL
            AND area_level IS NULL AND agency_type IS NULL)
        OR (kind = 'agency' AND parent_id IS NOT NULL AND agency_type IS NOT NULL
            AND area_level IS NULL AND school_level IS NULL)
    )
);

CREATE INDEX organisations_parent_idx ON organisations (parent_id);
CREATE INDEX organisations_kind_idx ON organisations (kind);
