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

diesel::table! {
    users (id) {
        id -> Text,
        org_id -> Text,
        role -> Text,
        email -> Text,
        display_name -> Text,
        disabled_at -> Nullable<Timestamp>,
        tokens_not_before -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        language -> Text,
    }
}

diesel::table! {
    credentials (user_id) {
        user_id -> Text,
        password_hash -> Nullable<Text>,
        password_changed_at -> Nullable<Timestamp>,
        totp_secret -> Nullable<Binary>,
        totp_last_step -> Nullable<BigInt>,
        mfa_enrolled_at -> Nullable<Timestamp>,
        failed_logins -> Integer,
        throttled_until -> Nullable<Timestamp>,
        locked_at -> Nullable<Timestamp>,
        enrolment_token_hash -> Nullable<Text>,
        enrolment_expires_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        mfa_verified -> Bool,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        user_id -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        actor_user_id -> Nullable<Text>,
        actor_org_id -> Nullable<Text>,
        actor_role -> Nullable<Text>,
        action -> Text,
        outcome -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        details -> Text,
        prev_hash -> Text,
        entry_hash -> Text,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        entry_hash -> Text,
        signed_at -> Timestamp,
        key_id -> Text,
        signature -> Text,
    }
}

diesel::table! {
    cases (id) {
        id -> Text,
        school_id -> Text,
        status -> Text,
        risk_level -> Text,
        survivor_sex -> Text,
        age_band -> Nullable<Text>,
        under_16 -> Nullable<Bool>,
        under_18 -> Nullable<Bool>,
        disability -> Bool,
        school_level -> Text,
        version -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        legal_hold -> Bool,
        content_destroyed_at -> Nullable<Timestamp>,
        recorded_school_id -> Nullable<Text>,
        assigned_to -> Nullable<Text>,
    }
}

diesel::table! {
    case_requests (idempotency_key) {
        idempotency_key -> Text,
        case_id -> Text,
        request_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    case_keys (case_id) {
        case_id -> Text,
        kek_id -> Text,
        wrapped_dek -> Binary,
        created_at -> Timestamp,
        rewrapped_at -> Nullable<Timestamp>,
        bound_school_id -> Nullable<Text>,
    }
}

diesel::table! {
    case_transfers (id) {
        id -> Text,
        case_id -> Text,
        from_school_id -> Text,
        to_school_id -> Text,
        status -> Text,
        reason_enc -> Binary,
        answer_enc -> Nullable<Binary>,
        requested_by -> Text,
        requested_at -> Timestamp,
        answer_by -> Timestamp,
        viewed_at -> Nullable<Timestamp>,
        answered_by -> Nullable<Text>,
        answered_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    pupils (case_id) {
        case_id -> Text,
        name_enc -> Binary,
        date_of_birth_enc -> Binary,
        class_enc -> Nullable<Binary>,
        guardian_enc -> Nullable<Binary>,
        contact_enc -> Nullable<Binary>,
        blind_index -> Text,
    }
}

diesel::table! {
    incidents (id) {
        id -> Text,
        case_id -> Text,
        incident_type -> Text,
        csa_subtype -> Nullable<Text>,
        contexts -> Text,
        location_type -> Text,
        perpetrator_relation -> Text,
        incident_month -> Text,
        reporting_delay -> Text,
        incident_date_enc -> Binary,
        narrative_enc -> Binary,
        created_by -> Text,
        created_at -> Timestamp,
        school_id -> Nullable<Text>,
        survivor_sex -> Nullable<Text>,
        survivor_age_band -> Nullable<Text>,
    }
}

diesel::table! {
    intake_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        user_id -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
        case_id -> Nullable<Text>,
    }
}

diesel::table! {
    legal_holds (id) {
        id -> Text,
        case_id -> Text,
        held -> Bool,
        reason -> Text,
        note_enc -> Nullable<Binary>,
        decided_by -> Text,
        decided_at -> Timestamp,
    }
}

diesel::table! {
    chronology (id) {
        id -> Text,
        case_id -> Text,
        kind -> Text,
        from_status -> Nullable<Text>,
        to_status -> Nullable<Text>,
        note_enc -> Nullable<Binary>,
        author_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    closure_requests (id) {
        id -> Text,
        case_id -> Text,
        closure_reason -> Text,
        note_enc -> Binary,
        requested_by -> Text,
        requested_at -> Timestamp,
        status -> Text,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_note_enc -> Nullable<Binary>,
    }
}

diesel::table! {
    break_glass (id) {
        id -> Text,
        case_id -> Text,
        user_id -> Text,
        reason_enc -> Binary,
        granted_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        case_id -> Text,
        given_by -> Text,
        services -> Bool,
        reporting -> Bool,
        disclosure -> Bool,
        disclosure_to -> Text,
        legal_basis -> Text,
        withheld_enc -> Nullable<Binary>,
        recorded_by -> Text,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    perpetrators (id) {
        id -> Text,
        case_id -> Text,
        incident_id -> Nullable<Text>,
        relation -> Text,
        sex -> Text,
        age_group -> Text,
        identity_enc -> Nullable<Binary>,
        description_enc -> Nullable<Binary>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    attachments (id) {
        id -> Text,
        case_id -> Text,
        content_type -> Text,
        size_bytes -> BigInt,
        name_enc -> Nullable<Binary>,
        content_enc -> Binary,
        uploaded_by -> Text,
        uploaded_at -> Timestamp,
    }
}

diesel::table! {
    referrals (id) {
        id -> Text,
        case_id -> Text,
        school_id -> Text,
        agency_id -> Text,
        agency_type -> Text,
        kind -> Text,
        need -> Text,
        profile -> Text,
        rules -> Text,
        legal_basis -> Text,
        status -> Text,
        note_enc -> Nullable<Binary>,
        override_reason_enc -> Nullable<Binary>,
        acknowledge_by -> Timestamp,
        version -> Integer,
        sent_by -> Text,
        sent_at -> Timestamp,
        acknowledged_at -> Nullable<Timestamp>,
        answered_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        recorded_school_id -> Nullable<Text>,
    }
}

diesel::table! {
    suggestion_skips (case_id, agency_type) {
        case_id -> Text,
        agency_type -> Text,
        need -> Text,
        reason_enc -> Nullable<Binary>,
        skipped_by -> Text,
        skipped_at -> Timestamp,
    }
}

diesel::table! {
    deadline_reminders (deadline_id, point) {
        deadline_id -> Text,
        point -> Text,
        case_id -> Text,
        remind_at -> Timestamp,
        outcome -> Text,
        recipients -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    deadlines (id) {
        id -> Text,
        case_id -> Text,
        school_id -> Text,
        referral_id -> Nullable<Text>,
        kind -> Text,
        subject -> Text,
        rule -> Text,
        source -> Text,
        started_at -> Timestamp,
        due_at -> Timestamp,
        met_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        level -> Integer,
        next_check_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    escalations (id) {
        id -> Text,
        deadline_id -> Text,
        case_id -> Text,
        school_id -> Text,
        area_id -> Text,
        level -> Integer,
        reason -> Text,
        raised_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    partner_links (id) {
        id -> Text,
        referral_id -> Text,
        token_hash -> Text,
        code_hash -> Text,
        recipient -> Text,
        failed_codes -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        opened_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    partner_sessions (id) {
        id -> Text,
        link_id -> Text,
        referral_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        ended_reason -> Nullable<Text>,
    }
}

diesel::table! {
    drafts (user_id) {
        user_id -> Text,
        kek_id -> Text,
        wrapped_dek -> Binary,
        payload_enc -> Binary,
        saved_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(users -> organisations (org_id));
diesel::joinable!(attachments -> cases (case_id));
diesel::joinable!(perpetrators -> cases (case_id));
diesel::joinable!(consents -> cases (case_id));
diesel::joinable!(cases -> organisations (school_id));
diesel::joinable!(case_requests -> cases (case_id));
diesel::joinable!(case_keys -> cases (case_id));
diesel::joinable!(case_transfers -> cases (case_id));
diesel::joinable!(pupils -> cases (case_id));
diesel::joinable!(incidents -> cases (case_id));
diesel::joinable!(chronology -> cases (case_id));
diesel::joinable!(closure_requests -> cases (case_id));
diesel::joinable!(legal_holds -> cases (case_id));
diesel::joinable!(break_glass -> cases (case_id));
diesel::joinable!(referrals -> cases (case_id));
diesel::joinable!(deadlines -> cases (case_id));
diesel::joinable!(deadline_reminders -> deadlines (deadline_id));
diesel::joinable!(escalations -> deadlines (deadline_id));
diesel::joinable!(partner_links -> referrals (referral_id));
diesel::joinable!(partner_sessions -> partner_links (link_id));
diesel::joinable!(partner_sessions -> referrals (referral_id));
diesel::joinable!(break_glass -> users (user_id));
diesel::joinable!(credentials -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    organisations,
    users,
    credentials,
    recovery_codes,
    sessions,
    revoked_tokens,
    audit_log,
    audit_checkpoints,
    cases,
    case_requests,
    case_keys,
    case_transfers,
    pupils,
    incidents,
    intake_tokens,
    chronology,
    closure_requests,
    legal_holds,
    break_glass,
    consents,
    perpetrators,
    attachments,
    referrals,
    suggestion_skips,
    deadline_reminders,
    deadlines,
    escalations,
    partner_links,
    partner_sessions,
    outbox,
    drafts,
    stats_reports,
    indicator_entries,
    stats_counts,
);

diesel::table! {
    outbox (id) {
        id -> Text,
        idempotency_key -> Text,
        recipient -> Text,
        language -> Text,
        template -> Text,
        params -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        locked_by -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    stats_reports (id) {
        id -> Text,
        area_id -> Text,
        period -> Text,
        window_start -> Timestamp,
        window_end -> Timestamp,
        status -> Text,
        body -> Text,
        body_sha256 -> Text,
        computed_by -> Text,
        computed_at -> Timestamp,
        released_by -> Nullable<Text>,
        released_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    indicator_entries (id) {
        id -> Text,
        school_id -> Text,
        period -> Text,
        figure -> Text,
        women -> Integer,
        men -> Integer,
        submitted_by -> Text,
        submitted_at -> Timestamp,
    }
}

diesel::table! {
    stats_counts (grain, bucket, school_id, measure, a, b) {
        grain -> Text,
        bucket -> Text,
        school_id -> Text,
        measure -> Text,
        a -> Text,
        b -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    unit_indicator_entries (id) {
        id -> Text,
        school_id -> Text,
        period -> Text,
        indicator -> Text,
        kind -> Text,
        value -> Integer,
        evidence_unsealed -> Text,
        submitted_by -> Text,
        submitted_at -> Timestamp,
        kek_id -> Nullable<Text>,
        wrapped_dek -> Nullable<Binary>,
        evidence_enc -> Nullable<Binary>,
    }
}

diesel::table! {
    indicator_reminders (school_id, period, point) {
        school_id -> Text,
        period -> Text,
        point -> Text,
        remind_at -> Timestamp,
        outcome -> Text,
        recipients -> Integer,
        created_at -> Timestamp,
    }
}
