//! The OpenAPI 3.1 document at `/api/v1/openapi.json`, generated at start
//! from the loaded taxonomy: every coded field lists its allowed codes, every
//! request body has an example, every error response is described — an
//! agency's developer can build a client from it alone.

use actix_web::web::{self, Json};
use serde_json::{Map, Value, json};

use crate::domain::taxonomy::Taxonomy;
use crate::web::AppState;

fn codes(taxonomy: &Taxonomy, category: &str) -> Value {
    let codes: Vec<&str> = taxonomy
        .terms(category)
        .iter()
        .map(|t| t.code.as_str())
        .collect();
    let labels: Vec<String> = taxonomy
        .terms(category)
        .iter()
        .map(|t| format!("`{}`: {} / {}", t.code, t.vi, t.en))
        .collect();
    json!({"type": "string", "enum": codes, "description": labels.join("; ")})
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn body(schema: Value, example: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema, "example": example}}})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Responses every authenticated operation may give.
fn common(mut responses: Map<String, Value>) -> Value {
    responses.insert(
        "400".into(),
        error("The body is not valid JSON, or a query parameter or header (such as `Idempotency-Key`) is malformed."),
    );
    responses.insert(
        "401".into(),
        error("Missing, invalid, expired or revoked credentials."),
    );
    responses.insert(
        "403".into(),
        error("A browser request without the CSRF token or from another origin."),
    );
    responses.insert(
        "404".into(),
        error("Not found — or outside the caller's reach, which looks the same."),
    );
    responses.insert(
        "413".into(),
        error("The body is larger than the configured limit."),
    );
    responses.insert("415".into(), error("The body is not JSON."));
    responses.insert("422".into(), error("A field is missing, of the wrong type, unknown or out of vocabulary; the message names it."));
    responses.insert(
        "503".into(),
        error("The database is unavailable or the service is saturated; retry."),
    );
    responses.insert(
        "507".into(),
        error("The server's storage is full; nothing was saved."),
    );
    Value::Object(responses)
}

fn responses(pairs: &[(&str, Value)]) -> Value {
    common(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn case_example() -> Value {
    json!({
        "risk_level": "high",
        "pupil": {"name": "Nguyễn Thị A", "date_of_birth": "2014-05-02", "sex": "female", "class": "6A",
                  "disability": false, "guardian": "Nguyễn Văn B (father)", "contact": "0912 000 000"},
        "incident": {"type": "sexual_assault", "csa_subtype": "dam_o", "contexts": ["sexual_harassment", "on_premises"],
                     "date": "2026-10-28", "location_type": "school_premises",
                     "perpetrator_relation": "teacher_or_staff", "narrative": "What the pupil said, in her words."}
    })
}

/// Builds the document.
pub fn document(taxonomy: &Taxonomy, server: &str) -> Value {
    let bearer = json!([{"bearer": []}, {"session": []}]);
    let id_param = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    let enrolment_sent = json!({"type": "object", "required": ["enrolment", "enrolment_valid_until", "notified"], "properties": {"enrolment": {"enum": ["sent_to_account_email"]}, "enrolment_valid_until": {"type": "string", "format": "date-time"}, "notified": {"type": "integer", "minimum": 0}}});
    let code_param =
        json!([{"name": "code", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let consent_schema = json!({"type": "object", "required": ["given_by", "services", "reporting", "disclosure", "legal_basis"], "additionalProperties": false, "properties": {
        "given_by": codes(taxonomy, "consent_giver"), "services": {"type": "boolean"}, "reporting": {"type": "boolean", "description": "Consent to non-identifiable reporting."},
        "disclosure": {"type": "boolean"}, "disclosure_to": {"type": "array", "items": {"type": "string", "enum": ["police", "health", "social_protection", "womens_union", "legal_aid", "hotline", "other"]}},
        "legal_basis": codes(taxonomy, "legal_basis"), "withheld": {"type": "string", "maxLength": 2000, "description": "What must be withheld from whom (sealed)."}}});
    let consent_path = json!({"post": {
        "summary": "Record the consent in force (the previous one stays in the history)",
        "security": bearer.clone(),
        "parameters": id_param.clone(),
        "requestBody": body(consent_schema, json!({"given_by": "pupil_and_guardian", "services": true, "reporting": true, "disclosure": true, "disclosure_to": ["health"], "legal_basis": "consent"})),
        "responses": responses(&[("201", ok("Recorded.", json!({"type": "object"})))])
    }});
    let incidents_path = json!({"post": {
        "summary": "Add a further incident to a case",
        "security": bearer.clone(),
        "parameters": id_param.clone(),
        "requestBody": body(reference("NewIncident"), case_example().get("incident").cloned().unwrap_or_default()),
        "responses": responses(&[("201", ok("Added.", json!({"type": "object", "properties": {"id": {"type": "string"}}})))])
    }});
    let perpetrator_schema = json!({"type": "object", "required": ["relation", "sex", "age_group"], "additionalProperties": false, "properties": {
        "incident_id": {"type": "string"}, "relation": codes(taxonomy, "perpetrator_relation"), "sex": codes(taxonomy, "sex"),
        "age_group": codes(taxonomy, "perpetrator_age_group"), "identity": {"type": "string", "maxLength": 500}, "description": {"type": "string", "maxLength": 5000}}});
    let perpetrators_path = json!({"post": {
        "summary": "Record an alleged perpetrator (identity and description are sealed)",
        "security": bearer.clone(),
        "parameters": id_param.clone(),
        "requestBody": body(perpetrator_schema, json!({"relation": "peer_pupil", "sex": "male", "age_group": "12_17"})),
        "responses": responses(&[("201", ok("Recorded.", json!({"type": "object", "properties": {"id": {"type": "string"}}})))])
    }});
    // Account life (issues 19, 21): kept apart, the document's literal is at
    // the json! macro's recursion limit.
    let account_paths = json!({
        "/users/{id}/password-reset": {"post": {"summary": "Send the person a link to choose a new password (the second factor stays)", "security": bearer.clone(), "parameters": id_param.clone(), "responses": responses(&[("200", ok("That the link was sent (never the link).", enrolment_sent.clone())), ("409", error("The account is disabled."))])}},
        "/users/{id}/enable": {"post": {"summary": "Enable a disabled account (its old sessions and tokens stay void)", "security": bearer.clone(), "parameters": id_param.clone(), "responses": responses(&[("204", json!({"description": "Enabled."}))])}}
    });
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "caseguard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Confidential case management for schools. Every error is {\"error\": {\"code\", \"message\"}}. Sign in with POST /auth/token; send the token as `Authorization: Bearer`. Browser sessions use the `__Host-caseguard_session` cookie and must send `x-csrf-token` on every state change."
        },
        "servers": [{"url": format!("{}/api/v1", server.trim_end_matches('/'))}],
        "paths": {
            "/auth/token": {
                "post": {
                    "summary": "Sign in and get an access token (15 minutes)",
                    "requestBody": body(reference("SignIn"), json!({"email": "daumoi@example.org", "password": "a long passphrase", "totp": "123456"})),
                    "responses": responses(&[("200", ok("The token.", reference("Token"))), ("429", error("Too many attempts from this address."))])
                },
                "delete": {"summary": "Revoke the token used for this request", "security": bearer, "responses": responses(&[("204", json!({"description": "Revoked."}))])}
            },
            "/auth/session": {
                "post": {
                    "summary": "Sign in and get a browser session cookie and its CSRF token",
                    "requestBody": body(reference("SignIn"), json!({"email": "daumoi@example.org", "password": "a long passphrase", "totp": "123456"})),
                    "responses": responses(&[("200", ok("Session created; the cookie is set.", reference("Session")))])
                },
                "delete": {"summary": "Sign out of this session", "security": bearer, "responses": responses(&[("204", json!({"description": "Signed out."}))])}
            },
            "/auth/logout-everywhere": {"post": {"summary": "End every session and token of the caller", "security": bearer, "responses": responses(&[("204", json!({"description": "Done."}))])}},
            "/auth/password": {"post": {
                "summary": "Change the caller's password (ends every session and token)", "security": bearer,
                "requestBody": body(json!({"type": "object", "required": ["current_password", "new_password"], "additionalProperties": false,
                    "properties": {"current_password": {"type": "string"}, "new_password": {"type": "string", "minLength": 12, "maxLength": 256}}}),
                    json!({"current_password": "the old one", "new_password": "mây trắng bay qua cánh đồng"})),
                "responses": responses(&[("204", json!({"description": "Changed."}))])
            }},
            "/auth/recovery-codes": {"post": {"summary": "Make a new set of 10 one-time recovery codes (shown once)", "security": bearer,
                "responses": responses(&[("200", ok("The codes.", json!({"type": "object", "properties": {"recovery_codes": {"type": "array", "items": {"type": "string"}}}})))])}},
            "/auth/enrol/start": {"post": {"summary": "Open an enrolment link: the authenticator to scan",
                "requestBody": body(json!({"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}), json!({"token": "from the enrolment link"})),
                "responses": responses(&[("200", ok("The otpauth URI and an SVG QR code.", json!({"type": "object", "properties": {"totp_uri": {"type": "string"}, "qr_svg": {"type": "string"}}})))])}},
            "/auth/enrol": {"post": {"summary": "Finish enrolment: choose a password, confirm the authenticator",
                "requestBody": body(json!({"type": "object", "required": ["token", "password", "totp"], "properties": {"token": {"type": "string"}, "password": {"type": "string"}, "totp": {"type": "string"}}}),
                    json!({"token": "from the enrolment link", "password": "nắng vàng trên mái ngói rêu", "totp": "123456"})),
                "responses": responses(&[("204", json!({"description": "Enrolled; sign in now."}))])}},
            "/me": {"get": {"summary": "Who is calling", "security": bearer, "responses": responses(&[("200", ok("The caller.", reference("Me")))])},
                "patch": {"summary": "Change your own language (of the interface and of the messages sent to you)", "security": bearer,
                    "requestBody": body(json!({"type": "object", "required": ["language"], "additionalProperties": false, "properties": {"language": {"enum": ["vi", "en"]}}}), json!({"language": "en"})),
                    "responses": responses(&[("200", ok("The caller.", reference("Me")))])}},
            "/organisations/{code}": {"get": {"summary": "An organisation in the caller's reach", "security": bearer, "parameters": code_param,
                "responses": responses(&[("200", ok("The organisation.", reference("Organisation")))])}},
            "/organisations/{code}/users": {
                "get": {"summary": "Accounts of an organisation (admins of its area)", "security": bearer, "parameters": code_param,
                    "responses": responses(&[("200", ok("The accounts.", json!({"type": "array", "items": reference("User")})))])},
                "post": {"summary": "Create an account; the activation link goes by e-mail to the person only (never in this answer), and the organisation's other focal points or officers (else the area's auditors) are told", "security": bearer, "parameters": code_param,
                    "requestBody": body(json!({"type": "object", "required": ["role", "email", "name"], "additionalProperties": false,
                        "properties": {"role": reference("Role"), "email": {"type": "string", "format": "email"}, "name": {"type": "string", "maxLength": 200}}}),
                        json!({"role": "focal_point", "email": "lan@example.org", "name": "Nguyễn Thị Lan"})),
                    "responses": responses(&[("201", ok("Created; the activation link was e-mailed.", enrolment_sent.clone())), ("409", error("An account with this email exists."))])}
            },
            "/users/{id}/disable": {"post": {"summary": "Disable an account (its sessions and tokens end at once)", "security": bearer, "parameters": id_param, "responses": responses(&[("204", json!({"description": "Disabled."}))])}},
            "/users/{id}/reset-mfa": {"post": {"summary": "Replace an account's authenticator; a link to set it up again goes by e-mail to the person only", "security": bearer, "parameters": id_param, "responses": responses(&[("200", ok("That the link was sent (never the link or the secret).", enrolment_sent.clone())), ("409", error("The account is disabled."))])}},
            "/audit": {"get": {"summary": "Audit entries of the caller's area, newest first (auditors)", "security": bearer,
                "parameters": [{"name": "before", "in": "query", "schema": {"type": "integer"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "action", "in": "query", "description": "An action code or its beginning (`case` finds `case.read`)", "schema": {"type": "string", "pattern": "^[a-z0-9_][a-z0-9._]{0,63}$"}},
                    {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": ["success", "failure", "denied"]}},
                    {"name": "target", "in": "query", "description": "The id of a case, referral or account", "schema": {"type": "string", "format": "uuid"}},
                    {"name": "from", "in": "query", "description": "From the start of this day (UTC)", "schema": {"type": "string", "format": "date"}},
                    {"name": "until", "in": "query", "description": "To the end of this day (UTC)", "schema": {"type": "string", "format": "date"}}],
                "responses": responses(&[("200", ok("Entries.", json!({"type": "array", "items": {"type": "object"}})))])}},
            "/audit/verify": {"get": {"summary": "Verify the audit chain and its signed checkpoints (auditors)", "security": bearer, "responses": responses(&[("200", ok("The verdict.", json!({"type": "object"})))])}},
            "/cases": {
                "post": {
                    "summary": "Record a case for the caller's school",
                    "security": bearer,
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 128},
                        "description": "Send a fresh UUID per case and repeat it when retrying: a retry returns the first case (header `Idempotency-Replayed: true`)."}],
                    "requestBody": body(reference("NewCase"), case_example()),
                    "responses": responses(&[("201", ok("Recorded. `open_cases_for_pupil` lists other open cases of the same pupil at this school (always empty for a caller who may not list the school's cases, such as a reporter).", reference("CaseSummary")))])
                },
                "get": {
                    "summary": "The caller's school's cases (coded fields only)",
                    "security": bearer,
                    "parameters": [
                        {"name": "status", "in": "query", "schema": reference("Status")},
                        {"name": "risk_level", "in": "query", "schema": codes(taxonomy, "risk_level")},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}}
                    ],
                    "responses": responses(&[("200", ok("Cases.", json!({"type": "array", "items": reference("CaseSummary")})))])
                }
            },
            "/cases/{id}": {"get": {"summary": "A case, decrypted (the read is audited)", "security": bearer, "parameters": id_param, "responses": responses(&[("200", ok("The case.", json!({"type": "object"})))])}},
            "/cases/{id}/transitions": {"post": {
                "summary": "Move a case through its lifecycle", "security": bearer, "parameters": id_param,
                "requestBody": body(json!({"type": "object", "required": ["to", "version"], "additionalProperties": false, "properties": {
                    "to": reference("Status"), "version": {"type": "integer", "description": "The version you read; a stale one is refused with 409."},
                    "note": {"type": "string", "maxLength": 10000}, "closure_reason": codes(taxonomy, "closure_reason")}}),
                    json!({"to": "assessing", "version": 1})),
                "responses": responses(&[("200", ok("The case after the change.", reference("CaseSummary"))), ("409", error("The case changed since you read it; nothing was changed."))])
            }},
            "/cases/{id}/notes": {"post": {"summary": "Add a note to the chronology", "security": bearer, "parameters": id_param,
                "requestBody": body(json!({"type": "object", "required": ["note"], "properties": {"note": {"type": "string", "maxLength": 10000}}}), json!({"note": "Met the parents."})),
                "responses": responses(&[("201", json!({"description": "Added."}))])}},
            "/cases/{id}/consent": consent_path,
            "/cases/{id}/incidents": incidents_path,
            "/cases/{id}/perpetrators": perpetrators_path,
            "/cases/{id}/break-glass": {"post": {"summary": "District officers: open one case of the area for the protocol's break-glass hours (`[break_glass]`, 2 by default), with a reason (audited; the school's focal points and the area's auditors are told)", "security": bearer, "parameters": id_param,
                "requestBody": body(json!({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 20, "maxLength": 2000}}}),
                    json!({"reason": "The focal point is on leave and the police asked about an urgent risk."})),
                "responses": responses(&[("201", ok("Granted until `expires_at`.", json!({"type": "object"})))])}}
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "__Host-caseguard_session"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "SignIn": {"type": "object", "required": ["email", "password"], "additionalProperties": false, "properties": {
                    "email": {"type": "string"}, "password": {"type": "string"}, "totp": {"type": "string", "pattern": "^[0-9]{6}$"}, "recovery_code": {"type": "string"}}},
                "Token": {"type": "object", "required": ["access_token", "token_type", "expires_in"], "properties": {
                    "access_token": {"type": "string"}, "token_type": {"const": "Bearer"}, "expires_in": {"type": "integer"}}},
                "Session": {"type": "object", "properties": {"csrf_token": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}, "idle_timeout_secs": {"type": "integer"}}},
                "Me": {"type": "object", "properties": {"user_id": {"type": "string"}, "role": reference("Role"), "org": {"type": "string"}, "org_id": {"type": "string"}, "display_name": {"type": "string"}, "language": {"enum": ["vi", "en"]}}},
                "Role": {"type": "string", "enum": ["reporter", "focal_point", "agency_officer", "district_officer", "monitor", "admin", "auditor"]},
                "Status": {"type": "string", "enum": crate::cases::lifecycle::STATUSES},
                "Organisation": {"type": "object", "properties": {"id": {"type": "string"}, "code": {"type": "string"}, "kind": {"type": "string", "enum": ["area", "school", "agency"]},
                    "name": {"type": "string"}, "parent_id": {"type": ["string", "null"]}, "area_level": {"type": ["string", "null"]},
                    "school_level": codes(taxonomy, "school_level"), "agency_type": {"type": ["string", "null"], "enum": ["police", "health", "social_protection", "womens_union", "legal_aid", "hotline", "other", null]}}},
                "User": {"type": "object", "properties": {"user_id": {"type": "string"}, "email": {"type": "string"}, "display_name": {"type": "string"}, "role": reference("Role"), "disabled": {"type": "boolean"}, "activated": {"type": "boolean"}, "last_sign_in_at": {"type": ["string", "null"], "format": "date-time"}}},
                "NewCase": {"type": "object", "required": ["risk_level", "pupil", "incident"], "additionalProperties": false, "properties": {
                    "risk_level": codes(taxonomy, "risk_level"),
                    "pupil": {"type": "object", "required": ["name", "date_of_birth", "sex"], "additionalProperties": false, "properties": {
                        "name": {"type": "string", "maxLength": 200}, "date_of_birth": {"type": "string", "format": "date"}, "sex": codes(taxonomy, "sex"),
                        "class": {"type": "string", "maxLength": 40}, "disability": {"type": "boolean"},
                        "guardian": {"type": "string", "maxLength": 500}, "contact": {"type": "string", "maxLength": 500}}},
                    "incident": {"type": "object", "required": ["type", "date", "location_type", "perpetrator_relation", "narrative"], "additionalProperties": false, "properties": {
                        "type": codes(taxonomy, "incident_type"), "csa_subtype": codes(taxonomy, "csa_subtype"),
                        "contexts": {"type": "array", "maxItems": 10, "items": codes(taxonomy, "context")},
                        "date": {"type": "string", "format": "date"}, "location_type": codes(taxonomy, "location_type"),
                        "perpetrator_relation": codes(taxonomy, "perpetrator_relation"), "narrative": {"type": "string", "maxLength": 20000}}}}},
                "CaseSummary": {"type": "object", "properties": {
                    "id": {"type": "string"}, "status": reference("Status"), "version": {"type": "integer"}, "risk_level": codes(taxonomy, "risk_level"),
                    "survivor_sex": codes(taxonomy, "sex"), "age_band": codes(taxonomy, "age_band"), "under_16": {"type": "boolean"}, "under_18": {"type": "boolean"},
                    "disability": {"type": "boolean"}, "school_level": codes(taxonomy, "school_level"),
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                    "open_cases_for_pupil": {"type": "array", "items": {"type": "string"}}}}
            }
        }
    });
    add_derived_schemas(&mut doc);
    let patch = json!({
        "summary": "Change coded fields of a case (the version you read; a stale one is refused with 409)",
        "security": [{"bearer": []}, {"session": []}],
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
        "requestBody": body(
            json!({"type": "object", "required": ["version"], "additionalProperties": false, "properties": {
                "version": {"type": "integer"}, "risk_level": codes(taxonomy, "risk_level"), "disability": {"type": "boolean"}}}),
            json!({"version": 3, "risk_level": "immediate_danger"})
        ),
        "responses": responses(&[("200", ok("The case after the change.", reference("CaseSummary"))), ("409", error("The case changed since you read it; nothing was changed."))])
    });
    if let Some(item) = doc
        .pointer_mut("/paths/~1cases~1{id}")
        .and_then(Value::as_object_mut)
    {
        item.insert("patch".to_owned(), patch);
    }
    add_list_filters(&mut doc, taxonomy);
    add_case_finding(&mut doc);
    add_casework(&mut doc, taxonomy);
    add_attachments(&mut doc);
    add_transfers(&mut doc);
    add_referrals(&mut doc);
    add_stats(&mut doc);
    add_break_glass_review(&mut doc);
    add_unit_indicators(&mut doc);
    if let (Some(paths), Value::Object(added)) = (
        doc.get_mut("paths").and_then(Value::as_object_mut),
        account_paths,
    ) {
        paths.extend(added);
    }
    doc
}

/// Statistics without disclosure (DESIGN §5).
fn add_stats(doc: &mut Value) {
    let security = json!([{"bearer": []}, {"session": []}]);
    let uuid = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let query = |name: &str, required: bool, schema: Value, description: &str| json!({"name": name, "in": "query", "required": required, "schema": schema, "description": description});
    let area = query(
        "area",
        true,
        json!({"type": "string"}),
        "Code of an area (never a school).",
    );
    let period = query(
        "period",
        true,
        json!({"type": "string"}),
        "`<kind>-<year>`, e.g. `six_month-2026` (kinds in policies/reporting.toml).",
    );
    let lang = query(
        "lang",
        false,
        json!({"enum": ["vi", "en"]}),
        "Labels' language (default vi).",
    );
    let format = query(
        "format",
        true,
        json!({"enum": ["csv", "xlsx"]}),
        "File format.",
    );
    let cell = json!({"oneOf": [{"type": "integer"}, {"type": "string", "description": "The policy's mark: hidden (1 to k−1, or hidden so that such a count cannot be worked out)."}]});
    let table = json!({"type": "object", "properties": {
        "code": {"type": "string", "description": format!("The table, in this order: {}. A report released before a table existed does not carry it; `cases_by_area` is left out when its rows would single out a school.", crate::stats::report::TABLE_CODES.join(", "))},
        "vi": {"type": "string"}, "en": {"type": "string"}, "unit": {"enum": ["cases", "incidents", "referrals"]},
        "rows": {"type": "array"}, "columns": {"type": "array"},
        "cells": {"type": "array", "items": {"type": "array", "items": cell.clone()}},
        "row_totals": {"type": "array", "items": cell.clone()}, "column_totals": {"type": "array", "items": cell.clone()}, "total": cell}});
    let report = json!({"type": "object", "properties": {
        "area": {"type": "object"}, "period": {"type": "object"}, "min_count": {"type": "integer"}, "suppressed_mark": {"type": "string"},
        "tables": {"type": "array", "items": table}, "kpis": {"type": "array"}, "schools": {"type": "array"},
        "indicators": {"type": "array"}, "notes": {"type": "array"}}});
    let file = |description: &str| {
        json!({"description": description, "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}}}})
    };
    let paths = [
        (
            "/stats/periods",
            json!({"get": {
            "summary": "Report periods whose window is open or ended within a year, with due dates",
            "security": security.clone(),
            "responses": responses(&[("200", ok("Periods.", json!({"type": "array", "items": {"type": "object"}})))])}}),
        ),
        (
            "/stats/report",
            json!({"get": {
            "summary": "Monitors and district officers: the area's report for the period after disclosure control — the released one if any, else computed now (`released: false`)",
            "security": security.clone(), "parameters": [area.clone(), period.clone()],
            "responses": responses(&[("200", ok("The report.", report.clone()))])}}),
        ),
        (
            "/stats/report/export",
            json!({"get": {
            "summary": "The same report as CSV or XLSX, laid out like the office's tables (audited)",
            "security": security.clone(), "parameters": [area.clone(), period.clone(), format.clone(), lang.clone()],
            "responses": responses(&[("200", file("The file."))])}}),
        ),
        (
            "/stats/chart",
            json!({"get": {
            "summary": "One table of the report as an SVG bar chart (published cells only)",
            "security": security.clone(),
            "parameters": [area.clone(), period.clone(), lang.clone(), query("table", true, json!({"type": "string"}), "A table code, e.g. incidents_by_type.")],
            "responses": responses(&[("200", json!({"description": "The chart.", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}))])}}),
        ),
        (
            "/stats/ad-hoc",
            json!({"get": {
            "summary": "District officers: an ad-hoc report (báo cáo đột xuất) of the area over local days `from`–`to` (both included, at most 1096 days, ending today at the latest), under the same disclosure control as a live view: counts rounded to a multiple of at least k, compared with every stored report of overlapping scope (`released: false`)",
            "security": security.clone(),
            "parameters": [area.clone(), query("from", true, json!({"type": "string", "format": "date"}), "First local day, YYYY-MM-DD."), query("to", true, json!({"type": "string", "format": "date"}), "Last local day, YYYY-MM-DD."), lang.clone()],
            "responses": responses(&[("200", ok("The report.", report.clone())), ("422", error("`invalid_window`: the window is not two dates in order, ends after today or is too long; `not_an_area`, `too_few_schools`."))])}}),
        ),
        (
            "/stats/ad-hoc/export",
            json!({"get": {
            "summary": "The same ad-hoc report as CSV or XLSX (audited)",
            "security": security.clone(),
            "parameters": [area.clone(), query("from", true, json!({"type": "string", "format": "date"}), "First local day, YYYY-MM-DD."), query("to", true, json!({"type": "string", "format": "date"}), "Last local day, YYYY-MM-DD."), format.clone(), lang.clone()],
            "responses": responses(&[("200", file("The file."))])}}),
        ),
        (
            "/stats/reports",
            json!({
            "post": {
                "summary": "District officers: compute and store a draft of the area's report for review (audited)",
                "security": security.clone(),
                "requestBody": body(json!({"type": "object", "required": ["area", "period"], "additionalProperties": false, "properties": {"area": {"type": "string"}, "period": {"type": "string"}}}), json!({"area": "SX-AL", "period": "six_month-2026"})),
                "responses": responses(&[("201", ok("The draft.", report.clone()))])},
            "get": {
                "summary": "Released reports of the area and below",
                "security": security.clone(), "parameters": [area],
                "responses": responses(&[("200", ok("Released reports.", json!({"type": "array", "items": {"type": "object"}})))])}}),
        ),
        (
            "/stats/reports/{id}",
            json!({"get": {
            "summary": "A stored report: released (statistics readers) or draft (district officers); a released report never changes",
            "security": security.clone(), "parameters": [uuid.clone()],
            "responses": responses(&[("200", ok("The report.", report.clone()))])}}),
        ),
        (
            "/stats/reports/{id}/export",
            json!({"get": {
            "summary": "A stored report as CSV or XLSX (audited)",
            "security": security.clone(), "parameters": [uuid.clone(), format, lang],
            "responses": responses(&[("200", file("The file."))])}}),
        ),
        (
            "/stats/reports/{id}/release",
            json!({"post": {
            "summary": "District officers: release a reviewed draft once its period is over; from then on it never changes (audited)",
            "security": security.clone(), "parameters": [uuid],
            "responses": responses(&[("200", ok("Released.", report)), ("409", error("Already released for this area and period, the period is not over, or a report of overlapping scope was released after this draft was computed (compute a new draft)."))])}}),
        ),
        (
            "/stats/indicators",
            json!({"post": {
            "summary": "Focal points: the school's staff figures by sex for the plan's indicators, once per period",
            "security": security,
            "requestBody": body(json!({"type": "object", "required": ["period", "figures"], "additionalProperties": false, "properties": {
                "period": {"type": "string"},
                "figures": {"type": "object", "additionalProperties": {"type": "object", "required": ["women", "men"], "additionalProperties": false,
                    "properties": {"women": {"type": "integer", "minimum": 0}, "men": {"type": "integer", "minimum": 0}}}}}}),
                json!({"period": "year_end-2026", "figures": {
                    "leadership_planning": {"women": 3, "men": 2}, "planning_trained": {"women": 3, "men": 1},
                    "key_leadership": {"women": 1, "men": 1}, "masters": {"women": 4, "men": 3}, "st_task_leads": {"women": 1, "men": 2}}})),
            "responses": responses(&[("201", json!({"description": "Stored."})), ("409", error("Already entered for this period."))])}}),
        ),
    ];
    if let Some(map) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
}

/// The plan's non-count targets each unit answers (`[[unit_indicator]]`).
fn add_unit_indicators(doc: &mut Value) {
    let security = json!([{"bearer": []}, {"session": []}]);
    let query = |name: &str, description: &str| json!({"name": name, "in": "query", "required": true, "schema": {"type": "string"}, "description": description});
    let area = query("area", "Code of an area.");
    let period = query(
        "period",
        "`<kind>-<year>` of a kind the unit indicators are collected for, e.g. `six_month-2026`.",
    );
    let paths = [
        (
            "/stats/unit-indicators",
            json!({
            "get": {
                "summary": "Monitors, district officers: each unit indicator of the area and its areas against its target, with the three earlier periods of the same kind (a value only where two or more units answered)",
                "security": security.clone(), "parameters": [area.clone(), period.clone()],
                "responses": responses(&[("200", ok("Per area: units, and per indicator the value, target, met and trend.", json!({"type": "array", "items": {"type": "object"}})))])},
            "post": {
                "summary": "Focal points: the unit's answers (yes/no or a percentage, with an evidence note), once per period (audited)",
                "security": security.clone(),
                "requestBody": body(json!({"type": "object", "required": ["period", "answers"], "additionalProperties": false, "properties": {
                    "period": {"type": "string"},
                    "unit": {"type": "string", "description": "The unit's code; the caller's own organisation when left out."},
                    "answers": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": false, "properties": {
                        "value": {"oneOf": [{"type": "boolean"}, {"type": "number", "minimum": 0, "maximum": 100}, {"type": "string"}]},
                        "evidence": {"type": "string", "maxLength": 300}}}}}}),
                    json!({"period": "year_end-2026", "answers": {
                        "staff_trained_on_abuse": {"value": true, "evidence": "Biên bản tập huấn số 12/BB ngày 15/3"},
                        "website_gender_column": {"value": true, "evidence": "https://thcs.example.edu.vn/binh-dang-gioi"},
                        "women_in_management": {"value": 42.5}}})),
                "responses": responses(&[("201", json!({"description": "Stored."})), ("409", error("Already entered for this period.")), ("422", error("Every problem, each naming its indicator and rule; nothing stored."))])}}),
        ),
        (
            "/stats/unit-indicators/answers",
            json!({"get": {
            "summary": "Focal points: the unit's own answers for the period, with their evidence notes (sealed at rest; each read audited)",
            "security": security.clone(),
            "parameters": [period.clone(), {"name": "unit", "in": "query", "required": false, "schema": {"type": "string"}, "description": "The unit's code; the caller's own organisation when left out."}],
            "responses": responses(&[("200", ok("The answers as entered; empty before the unit answered.", json!({"type": "object", "properties": {
                "period": {"type": "string"}, "unit": {"type": "string"}, "submitted_at": {"type": ["string", "null"], "format": "date-time"},
                "answers": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                    "value": {"oneOf": [{"type": "boolean"}, {"type": "number"}]}, "evidence": {"type": "string"}}}}}})))])}}),
        ),
        (
            "/stats/indicators/status",
            json!({"get": {
            "summary": "Monitors, district officers: every unit under the area, answered, late or pending for the period, with the reminders sent",
            "security": security, "parameters": [area, period],
            "responses": responses(&[("200", ok("One row per unit.", json!({"type": "array", "items": {"type": "object", "properties": {
                "code": {"type": "string"}, "name": {"type": "string"}, "state": {"enum": ["submitted", "late", "pending"]},
                "at": {"type": "string", "format": "date-time"}, "late": {"type": "boolean"}, "reminders": {"type": "integer"}}}})))])}}),
        ),
    ];
    if let Some(map) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
}

/// Referrals, partner links and escalations (DESIGN §3).
fn add_referrals(doc: &mut Value) {
    let uuid = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let security = json!([{"bearer": []}, {"session": []}]);
    let agencies = json!([
        "police",
        "health",
        "social_protection",
        "womens_union",
        "legal_aid",
        "hotline",
        "other"
    ]);
    let referral = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "case_id": {"type": "string"}, "agency_id": {"type": "string"}, "agency_type": {"type": "string"},
        "kind": {"enum": ["statutory_report", "service_referral"]}, "need": {"enum": ["required", "recommended", "added"]},
        "legal_basis": {"enum": ["statutory_report", "consent", "override"]}, "profile": {"type": "string"},
        "status": {"enum": ["sent", "acknowledged", "accepted", "declined", "in_service", "completed", "withdrawn"]},
        "version": {"type": "integer"}, "sent_at": {"type": "string", "format": "date-time"}, "acknowledge_by": {"type": "string", "format": "date-time"}}});
    let text = |max: u32| json!({"type": "string", "maxLength": max});
    let paths = [
        (
            "/cases/{id}/suggestions",
            json!({"get": {
            "summary": "The referrals the protocol requires or recommends for this case, with deadlines, the fields each agency would see, and what was done",
            "security": security.clone(), "parameters": [uuid("id")],
            "responses": responses(&[("200", ok("Suggestions.", json!({"type": "array", "items": {"type": "object"}})))])}}),
        ),
        (
            "/cases/{id}/suggestions/{agency_type}/skip",
            json!({"post": {
            "summary": "Decide not to make a suggested referral (a required one needs a reason of at least 10 characters; audited)",
            "security": security.clone(),
            "parameters": [uuid("id"), {"name": "agency_type", "in": "path", "required": true, "schema": {"type": "string", "enum": agencies}}],
            "requestBody": body(json!({"type": "object", "additionalProperties": false, "properties": {"reason": text(4000)}}), json!({"reason": "The family took her to the district hospital this morning."})),
            "responses": responses(&[("204", json!({"description": "Skipped."}))])}}),
        ),
        (
            "/cases/{id}/referrals",
            json!({"post": {
            "summary": "Send a referral. Statutory reports go without consent; a service referral needs consent to services and disclosure to the agency type, or `override_reason` from a role allowed to override (children only)",
            "security": security.clone(), "parameters": [uuid("id")],
            "requestBody": body(json!({"type": "object", "required": ["agency_id"], "additionalProperties": false, "properties": {
                "agency_id": {"type": "string"}, "note": text(4000), "override_reason": text(4000)}}), json!({"agency_id": "0193a000-0000-7000-8000-000000000000", "note": "Please call the school before visiting."})),
            "responses": responses(&[("201", ok("Sent.", referral.clone()))])}}),
        ),
        (
            "/referrals",
            json!({"get": {
            "summary": "Agency officers: the inbox of the agency, the most urgent first",
            "security": security.clone(),
            "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["open", "all"]}}],
            "responses": responses(&[("200", ok("Referrals.", json!({"type": "array", "items": referral.clone()})))])}}),
        ),
        (
            "/referrals/{id}",
            json!({"get": {
            "summary": "Agency officers: the referral and the case's fields in its profile, nothing else (audited)",
            "security": security.clone(), "parameters": [uuid("id")],
            "responses": responses(&[("200", ok("The referral.", json!({"type": "object"})))])}}),
        ),
        (
            "/referrals/{id}/answers",
            json!({"post": {
            "summary": "Agency officers: acknowledge, accept, decline (reason), start the service, complete (feedback); text goes to the school's chronology, sealed",
            "security": security.clone(), "parameters": [uuid("id")],
            "requestBody": body(json!({"type": "object", "required": ["to", "version"], "additionalProperties": false, "properties": {
                "to": {"enum": ["acknowledged", "accepted", "declined", "in_service", "completed"]}, "version": {"type": "integer"}, "text": text(4000),
                "reason": {"type": "string", "description": "A decline's coded reason (taxonomy `decline_reason`); optional"}}}), json!({"to": "acknowledged", "version": 1})),
            "responses": responses(&[("200", ok("Moved.", referral.clone()))])}}),
        ),
        (
            "/referrals/{id}/notes",
            json!({"post": {
            "summary": "Agency officers: a service note for the school's chronology (sealed)",
            "security": security.clone(), "parameters": [uuid("id")],
            "requestBody": body(json!({"type": "object", "required": ["note"], "additionalProperties": false, "properties": {"note": text(4000)}}), json!({"note": "First counselling session held."})),
            "responses": responses(&[("201", json!({"description": "Added."}))])}}),
        ),
        (
            "/referrals/{id}/withdraw",
            json!({"post": {
            "summary": "The sending school withdraws a referral (reason required); its links stop working",
            "security": security.clone(), "parameters": [uuid("id")],
            "requestBody": body(json!({"type": "object", "required": ["version", "reason"], "additionalProperties": false, "properties": {"version": {"type": "integer"}, "reason": text(4000)}}), json!({"version": 1, "reason": "Sent to the wrong health centre."})),
            "responses": responses(&[("200", ok("Withdrawn.", referral.clone()))])}}),
        ),
        (
            "/referrals/{id}/links",
            json!({"post": {
            "summary": "A one-time link for a partner without an account (72 hours, single use); the answer holds the code, shown once, to pass on by phone or SMS",
            "security": security.clone(), "parameters": [uuid("id")],
            "requestBody": body(json!({"type": "object", "required": ["email"], "additionalProperties": false, "properties": {"email": text(254)}}), json!({"email": "tiepnhan@tramyte.example.invalid"})),
            "responses": responses(&[("201", ok("Made.", json!({"type": "object", "properties": {"id": {"type": "string"}, "code": {"type": "string"}, "expires_at": {"type": "string"}}})))])}}),
        ),
        (
            "/referrals/{id}/links/{link_id}",
            json!({"delete": {
            "summary": "Revoke a partner link",
            "security": security.clone(), "parameters": [uuid("id"), uuid("link_id")],
            "responses": responses(&[("204", json!({"description": "Revoked."}))])}}),
        ),
        (
            "/partner-links/open",
            json!({"post": {
            "summary": "A partner opens a one-time link with its code: the profile-trimmed referral; counts as acknowledgement (no account needed)",
            "requestBody": body(json!({"type": "object", "required": ["token", "code"], "additionalProperties": false, "properties": {"token": text(200), "code": text(32)}}), json!({"token": "…", "code": "12345678"})),
            "responses": responses(&[("200", ok("The referral.", json!({"type": "object"}))), ("404", error("The link and code did not open a referral: one answer (`invalid_link`) for an unknown, expired, used or revoked link and for a wrong code."))])}}),
        ),
        (
            "/escalations",
            json!({"get": {
            "summary": "Missed deadlines escalated in an area (district officers) or about a school (focal points)",
            "security": security,
            "parameters": [{"name": "org_id", "in": "query", "schema": {"type": "string"}}, {"name": "status", "in": "query", "schema": {"enum": ["open", "all"]}}],
            "responses": responses(&[("200", ok("Escalations.", json!({"type": "array", "items": {"type": "object"}})))])}}),
        ),
    ];
    if let Some(map) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
}

/// Filters of `GET /cases` beyond status and risk.
fn add_list_filters(doc: &mut Value, taxonomy: &Taxonomy) {
    let more = [
        json!({"name": "incident_type", "in": "query", "schema": codes(taxonomy, "incident_type")}),
        json!({"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "Recorded on or after."}),
        json!({"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "Recorded on or before."}),
    ];
    if let Some(parameters) = doc
        .pointer_mut("/paths/~1cases/get/parameters")
        .and_then(Value::as_array_mut)
    {
        parameters.extend(more);
    }
}

/// Finding cases (issue 16): the list's paging and `open` status, and a
/// pupil's chronology across cases.
fn add_case_finding(doc: &mut Value) {
    if let Some(parameters) = doc
        .pointer_mut("/paths/~1cases/get/parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters.iter_mut() {
            if parameter["name"] == "status" {
                parameter["description"] =
                    json!("A status, or `open` for every status but `closed`.");
                parameter["schema"] = json!({"type": "string", "enum": ["open", "reported", "assessing", "action_planned", "in_progress", "resolved", "closed", "reopened"]});
            }
        }
        parameters.push(json!({"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
            "description": "The page (from 1) of `limit` cases, newest first. The total is in `X-Total-Count`; the next page's URL in `Link` (`rel=\"next\"`)."}));
    }
    if let Some(ok) = doc.pointer_mut("/paths/~1cases/get/responses/200") {
        ok["headers"] = json!({
            "X-Total-Count": {"description": "How many cases pass the filters.", "schema": {"type": "integer"}},
            "Link": {"description": "The next page, as `</api/v1/cases?…&page=N>; rel=\"next\"` (absent on the last page).", "schema": {"type": "string"}}
        });
    }
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let path = json!({"get": {
        "summary": "The chronology across every case of this case's pupil at the school (found by the blind index), oldest first; only for callers who may read every one of the cases (each read is audited)",
        "security": [{"bearer": []}],
        "parameters": [id],
        "responses": responses(&[("200", ok("The pupil's cases and their merged chronology.", json!({"type": "object", "properties": {
            "cases": {"type": "array", "items": reference("CaseSummary")},
            "entries": {"type": "array", "items": {"type": "object", "properties": {
                "case_id": {"type": "string"}, "kind": {"type": "string"}, "from_status": {"type": ["string", "null"]},
                "to_status": {"type": ["string", "null"]}, "note": {"type": ["string", "null"]}, "author_id": {"type": "string"},
                "at": {"type": "string", "format": "date-time"}}}}}})))])
    }});
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        paths.insert("/cases/{id}/pupil-chronology".to_owned(), path);
    }
}

/// Case-work (issue 16): assignment, approval of closure, legal hold; and
/// the `mine` filter and the case summary's new fields.
fn add_casework(doc: &mut Value, taxonomy: &Taxonomy) {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    let security = json!([{"bearer": []}, {"session": []}]);
    let summary = || ok("The case after the change.", reference("CaseSummary"));
    let stale = || error("The case changed since you read it; nothing was changed.");
    let decision = |required: &[&str]| {
        json!({"type": "object", "required": required, "additionalProperties": false, "properties": {
        "request_id": {"type": "string", "format": "uuid", "description": "`casework.closure_request.id` of the case: the request you saw."},
        "version": {"type": "integer"}, "note": {"type": "string", "maxLength": 10000}}})
    };
    let own = || {
        error(
            "You asked for this closure (`own_closure_request`): another focal point of the school decides on it.",
        )
    };
    let paths = [
        (
            "/cases/{id}/assignment",
            json!({"post": {
            "summary": "Assign the case to a focal point of its school, or to no one (null)", "security": security.clone(), "parameters": id.clone(),
            "requestBody": body(json!({"type": "object", "required": ["assignee", "version"], "additionalProperties": false, "properties": {
                "assignee": {"type": ["string", "null"], "format": "uuid", "description": "The user id of an active focal point of the case's school."},
                "version": {"type": "integer"}}}), json!({"assignee": "0193a000-0000-7000-8000-000000000001", "version": 2})),
            "responses": responses(&[("200", summary()), ("409", stale())])}}),
        ),
        (
            "/cases/{id}/closure-request",
            json!({"post": {
            "summary": "Ask for the closure of a case that needs a second person's approval (high risk, or a statutory report)", "security": security.clone(), "parameters": id.clone(),
            "requestBody": body(json!({"type": "object", "required": ["version", "closure_reason", "note"], "additionalProperties": false, "properties": {
                "version": {"type": "integer"}, "closure_reason": codes(taxonomy, "closure_reason"), "note": {"type": "string", "maxLength": 10000}}}),
                json!({"version": 4, "closure_reason": "needs_met", "note": "Support plan completed; the family agrees."})),
            "responses": responses(&[("201", ok("Requested: the case shows a closure awaiting approval.", json!({"type": "object"}))),
                ("409", error("Stale version, or a closure already awaits approval (`closure_awaiting_approval`)."))])}}),
        ),
        (
            "/cases/{id}/closure-request/approve",
            json!({"post": {
            "summary": "Approve the pending closure (another focal point of the school than the one who asked): the case closes", "security": security.clone(), "parameters": id.clone(),
            "requestBody": body(decision(&["request_id", "version"]), json!({"request_id": "0193a000-0000-7000-8000-000000000002", "version": 4})),
            "responses": responses(&[("200", summary()), ("403", own()), ("409", stale())])}}),
        ),
        (
            "/cases/{id}/closure-request/return",
            json!({"post": {
            "summary": "Return the pending closure with a note: the case stays open", "security": security.clone(), "parameters": id.clone(),
            "requestBody": body(decision(&["request_id", "version", "note"]), json!({"request_id": "0193a000-0000-7000-8000-000000000002", "version": 4, "note": "Wait for the health centre's feedback."})),
            "responses": responses(&[("200", summary()), ("403", own()), ("409", stale())])}}),
        ),
        (
            "/cases/{id}/legal-hold",
            json!({
            "get": {"summary": "Whether a case is under a legal hold (district officers of its area, admins; no case content)", "security": security.clone(), "parameters": id.clone(),
                "responses": responses(&[("200", ok("The hold.", json!({"type": "object"})))])},
            "post": {"summary": "Set (`held: true`) or lift a legal hold, with a coded reason and a note (sealed); retention keeps a held case", "security": security, "parameters": id,
                "requestBody": body(json!({"type": "object", "required": ["held", "reason", "note"], "additionalProperties": false, "properties": {
                    "held": {"type": "boolean"},
                    "reason": {"type": "string", "description": format!("A code of `legal_hold_reason` when setting ({}), of `legal_hold_lift_reason` when lifting ({}).",
                        taxonomy.terms("legal_hold_reason").iter().map(|t| t.code.as_str()).collect::<Vec<_>>().join(", "),
                        taxonomy.terms("legal_hold_lift_reason").iter().map(|t| t.code.as_str()).collect::<Vec<_>>().join(", "))},
                    "note": {"type": "string", "minLength": 10, "maxLength": 2000}}}),
                    json!({"held": true, "reason": "court_proceedings", "note": "Provincial court, hearing set for March."})),
                "responses": responses(&[("200", ok("The hold after the change.", json!({"type": "object"}))),
                    ("409", error("Already held, or not held (`legal_hold_unchanged`); nothing was changed.")),
                    ("410", error("The case's content was already destroyed under the retention policy."))])}}),
        ),
    ];
    if let Some(all) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        for (path, item) in paths {
            all.insert(path.to_owned(), item);
        }
    }
    if let Some(parameters) = doc
        .pointer_mut("/paths/~1cases/get/parameters")
        .and_then(Value::as_array_mut)
    {
        parameters.push(json!({"name": "mine", "in": "query", "schema": {"type": "boolean"}, "description": "Only the cases assigned to the caller."}));
    }
    if let Some(properties) = doc
        .pointer_mut("/components/schemas/CaseSummary/properties")
        .and_then(Value::as_object_mut)
    {
        properties.insert("assigned_to".to_owned(), json!({"type": ["string", "null"], "description": "The assigned focal point's user id."}));
        properties.insert("legal_hold".to_owned(), json!({"type": "boolean"}));
    }
}

/// Transfer of a case to another school (`cases::transfer`).
fn add_transfers(doc: &mut Value) {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}]);
    let security = json!([{"bearer": []}, {"session": []}]);
    let state = json!({"type": "object", "properties": {
        "id": {"type": "string"}, "status": {"enum": ["pending", "viewed", "accepted", "refused", "cancelled"]},
        "version": {"type": "integer"}, "requested_at": {"type": "string", "format": "date-time"},
        "answer_by": {"type": "string", "format": "date-time"}, "viewed_at": {"type": ["string", "null"], "format": "date-time"},
        "answered_at": {"type": ["string", "null"], "format": "date-time"}}});
    let reason = json!({"type": "object", "required": ["reason"], "additionalProperties": false,
        "properties": {"reason": {"type": "string", "minLength": 10, "maxLength": 2000}}});
    let not_open = error("The transfer was already answered or cancelled; nothing was changed.");
    let paths = [
        (
            "/cases/{id}/transfers",
            json!({
            "post": {"summary": "Start a transfer of the case to another school of the tree, with a reason (focal points of the case's school)",
                "security": security.clone(), "parameters": id.clone(),
                "requestBody": body(json!({"type": "object", "required": ["to_school_id", "reason"], "additionalProperties": false,
                    "properties": {"to_school_id": {"type": "string"}, "reason": {"type": "string", "minLength": 10, "maxLength": 2000}}}),
                    json!({"to_school_id": "0190f3a2-7c1e-7abc-8def-0123456789ab", "reason": "The family moved; the pupil starts at the new school on Monday."})),
                "responses": responses(&[("201", ok("Started; the receiving school's focal points are told.", state.clone())),
                    ("409", error("The case already has an open transfer, or it is closed."))])},
            "get": {"summary": "The transfers of a case, reasons and answers decrypted (the read is audited)",
                "security": security.clone(), "parameters": id.clone(),
                "responses": responses(&[("200", ok("Transfers, newest first.", json!({"type": "array", "items": state.clone()})))])}}),
        ),
        (
            "/transfers/incoming",
            json!({"get": {"summary": "Open transfers to the caller's school (reference, incident types, risk; no reason)",
            "security": security.clone(), "responses": responses(&[("200", ok("Transfers, the most urgent first.", json!({"type": "array", "items": state.clone()})))])}}),
        ),
        (
            "/transfers/outgoing",
            json!({"get": {"summary": "Transfers the caller's school started, with their state",
            "security": security.clone(), "responses": responses(&[("200", ok("Transfers, newest first.", json!({"type": "array", "items": state.clone()})))])}}),
        ),
        (
            "/transfers/{id}",
            json!({"get": {"summary": "Open a transfer to the caller's school: the reason too; the first opening marks it viewed (audited)",
            "security": security.clone(), "parameters": id.clone(), "responses": responses(&[("200", ok("The transfer.", state.clone()))])}}),
        ),
        (
            "/transfers/{id}/accept",
            json!({"post": {"summary": "Accept: the case, its file and open referrals move to the caller's school; its data key is re-bound to it",
            "security": security.clone(), "parameters": id.clone(),
            "responses": responses(&[("200", ok("Accepted; `case` is where it is now.", state.clone())), ("409", not_open.clone())])}}),
        ),
        (
            "/transfers/{id}/refuse",
            json!({"post": {"summary": "Refuse with a reason: the case stays where it is",
            "security": security.clone(), "parameters": id.clone(),
            "requestBody": body(reason, json!({"reason": "The pupil has not enrolled at our school."})),
            "responses": responses(&[("200", ok("Refused.", state.clone())), ("409", not_open.clone())])}}),
        ),
        (
            "/transfers/{id}/cancel",
            json!({"post": {"summary": "Cancel an open transfer (focal points of the sending school)",
            "security": security, "parameters": id, "responses": responses(&[("200", ok("Cancelled.", state)), ("409", not_open)])}}),
        ),
    ];
    if let Some(map) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
}

/// Upload and download of attachments (binary bodies).
fn add_attachments(doc: &mut Value) {
    let id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let security = json!([{"bearer": []}, {"session": []}]);
    let binary = |kind: &str| json!({"schema": {"type": "string", "contentMediaType": kind}});
    let files = json!({"image/jpeg": binary("image/jpeg"), "image/png": binary("image/png"), "application/pdf": binary("application/pdf")});
    let upload = json!({"post": {
        "summary": "Attach a JPEG, PNG or PDF (the declared type must match the file; content and name are sealed)",
        "security": security.clone(),
        "parameters": [id.clone(), {"name": "X-Attachment-Name", "in": "header", "schema": {"type": "string"}, "description": "The file name, percent-encoded UTF-8."}],
        "requestBody": {"required": true, "content": files.clone()},
        "responses": responses(&[("201", ok("Attached.", json!({"type": "object", "properties": {"id": {"type": "string"}}})))])
    }});
    let download = json!({"get": {
        "summary": "Download an attachment (always as a download; the read is audited)",
        "security": security,
        "parameters": [id, {"name": "attachment_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
        "responses": responses(&[("200", json!({"description": "The file.", "content": files}))])
    }});
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        paths.insert("/cases/{id}/attachments".to_owned(), upload);
        paths.insert(
            "/cases/{id}/attachments/{attachment_id}".to_owned(),
            download,
        );
    }
}

/// Break-glass review (issue 16): the grants of a case and of a part of
/// the tree, with their reasons.
fn add_break_glass_review(doc: &mut Value) {
    let security = json!([{"bearer": []}, {"session": []}]);
    let grants = json!({"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "case_id": {"type": "string"}, "school_id": {"type": "string"},
        "officer": {"type": "object", "properties": {"id": {"type": "string"}, "display_name": {"type": "string"}}},
        "granted_at": {"type": "string", "format": "date-time"}, "expires_at": {"type": "string", "format": "date-time"},
        "reason": {"type": ["string", "null"], "description": "Null when the case's content was destroyed under retention."}}}});
    let of_case = json!({
        "summary": "The break-glass grants of a case: officer, time, expiry, reason (the school's focal points and the area's auditors; each read audited)",
        "security": security.clone(),
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
        "responses": responses(&[("200", ok("The grants, newest first.", grants.clone()))])
    });
    let in_org = json!({"get": {
        "summary": "The break-glass grants on cases of a part of the tree (auditors: their area; focal points: their school; each read audited)",
        "security": security,
        "parameters": [{"name": "org_id", "in": "query", "schema": {"type": "string"}}],
        "responses": responses(&[("200", ok("The grants, newest first.", grants))])
    }});
    if let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) {
        if let Some(item) = paths
            .get_mut("/cases/{id}/break-glass")
            .and_then(Value::as_object_mut)
        {
            item.insert("get".to_owned(), of_case);
        }
        paths.insert("/break-glass".to_owned(), in_org);
    }
}

/// The request schemas that reuse parts of others.
fn add_derived_schemas(doc: &mut Value) {
    let incident = doc
        .pointer("/components/schemas/NewCase/properties/incident")
        .cloned()
        .unwrap_or_default();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert("NewIncident".to_owned(), incident);
    }
}

pub async fn serve(state: web::Data<AppState>) -> Json<Value> {
    Json(document(
        &state.taxonomy,
        state.settings.public_url.as_str(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_coded_field_lists_the_taxonomy() {
        let taxonomy = Taxonomy::default_shipped().unwrap();
        let doc = document(&taxonomy, "https://caseguard.example");
        let incident =
            &doc["components"]["schemas"]["NewCase"]["properties"]["incident"]["properties"];
        assert_eq!(incident["type"]["enum"].as_array().unwrap().len(), 6);
        assert!(
            incident["contexts"]["items"]["enum"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "trafficking")
        );
        assert_eq!(doc["servers"][0]["url"], "https://caseguard.example/api/v1");
        let list = doc["paths"]["/cases"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            list.iter().any(|p| p["name"] == "incident_type"),
            "list filters missing"
        );
        assert!(doc["paths"]["/cases/{id}/attachments"]["post"].is_object());
        assert!(list.iter().any(|p| p["name"] == "page"), "paging missing");
        assert!(doc["paths"]["/cases"]["get"]["responses"]["200"]["headers"]["Link"].is_object());
        assert!(doc["paths"]["/cases/{id}/pupil-chronology"]["get"].is_object());
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    ["400", "401", "422"]
                        .iter()
                        .all(|code| responses.contains_key(*code)),
                    "{method} {path}"
                );
                // JSON bodies carry an example; file uploads carry files.
                if let Some(json_body) = operation
                    .get("requestBody")
                    .and_then(|b| b["content"].get("application/json"))
                {
                    assert!(
                        json_body["example"].is_object(),
                        "{method} {path} has no example"
                    );
                }
            }
        }
    }
}
