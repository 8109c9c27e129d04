//! Attachments: images (JPEG, PNG) and PDF, sealed like every other
//! sensitive field. The declared type must match the file's first bytes;
//! nothing else is accepted (no SVG or HTML, which could carry script). The
//! name is sealed too and is never used as a path.

use super::{CaseContext, CaseError, FieldError, binding, case_event, case_key};
use crate::audit::action;
use crate::authz::Action;
use crate::authz::capability::Capability;
use crate::crypto::SecretBytes;
use crate::crypto::envelope::{DataKey, SecretText};
use crate::db::cases::{self as table, AttachmentMeta, AttachmentRow};
use crate::db::{DbConnection, write_transaction};

/// Accepted types and the bytes their files begin with.
pub const ACCEPTED: &[(&str, &[u8])] = &[
    ("image/jpeg", &[0xFF, 0xD8, 0xFF]),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("application/pdf", b"%PDF-"),
];

/// Checks that `bytes` really are a file of the declared type.
pub fn sniff(declared: &str, bytes: &[u8]) -> Result<&'static str, FieldError> {
    let declared = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, magic)) = ACCEPTED.iter().find(|(kind, _)| *kind == declared) else {
        return Err(FieldError::new(
            "Content-Type",
            format!(
                "must be one of: {}",
                ACCEPTED
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    if !bytes.starts_with(magic) {
        return Err(FieldError::new("body", format!("is not a {kind} file")));
    }
    Ok(kind)
}

/// Checks an attachment's name: a plain file name of at most 200
/// characters. Names are never used as paths here, but a name with a path
/// in it (`/`, `\`, `.` or `..`) is no file name and could mislead whoever
/// saves the download, so it is refused.
pub fn parse_name(raw: &str) -> Result<SecretText, FieldError> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > 200
        || name.chars().any(char::is_control)
        || name.contains(['/', '\\'])
        || name == "."
        || name == ".."
    {
        return Err(FieldError::new(
            "X-Attachment-Name",
            "must be a file name of 1 to 200 characters, without control characters or a path (`/`, `\\`, `..`)",
        ));
    }
    if name.chars().any(is_bidi_control) {
        return Err(FieldError::new(
            "X-Attachment-Name",
            "must not contain bidirectional control characters (such as U+202E), which can disguise a file's type",
        ));
    }
    let lower = name.trim_end_matches(['.', ' ']).to_lowercase();
    if MARKUP_EXTENSIONS.iter().any(|ext| lower.ends_with(ext)) {
        return Err(FieldError::new(
            "X-Attachment-Name",
            "must not end in .html, .htm, .xhtml, .svg or .xml: only JPEG, PNG and PDF files are accepted",
        ));
    }
    Ok(SecretText::new(name.to_owned()))
}

/// Name endings of markup a browser would run when the file is saved and
/// opened (the type check already keeps such content out).
const MARKUP_EXTENSIONS: &[&str] = &[".html", ".htm", ".xhtml", ".shtml", ".svg", ".xml"];

/// The Unicode bidirectional formatting characters (UAX #9): embeddings,
/// overrides, isolates and the implicit marks. `photo\u{202E}fdp.exe` shows
/// as `photoexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod name_tests {
    use super::parse_name;

    #[test]
    fn names_with_paths_or_control_characters_are_refused() {
        for bad in [
            "",
            " ",
            "..",
            ".",
            "../x.pdf",
            "a/b.pdf",
            "..\\x.pdf",
            "a\0b",
            "a\r\nb",
            "photo\u{202E}fdp.exe",
            "bi\u{2067}ên bản.pdf",
            "\u{200F}a.pdf",
            "page.html",
            "page.HTM",
            "page.html.",
            "x.pdf.svg",
            "a.xhtml ",
        ] {
            assert!(parse_name(bad).is_err(), "{bad:?}");
        }
        for good in ["Biên bản.pdf", "..hidden.pdf", "ảnh 1.png", "{{7*7}}.pdf"] {
            assert!(parse_name(good).is_ok(), "{good:?}");
        }
    }
}

/// Stores an attachment of the case.
pub fn upload(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    content_type: &'static str,
    name: Option<&SecretText>,
    bytes: &[u8],
) -> Result<String, CaseError> {
    if !by.allows_case(Action::CaseUpdate, case_id) {
        return Err(CaseError::NotFound);
    }
    let author = by.author();
    write_transaction(conn, |conn| {
        let dek = case_key(conn, context, case_id)?;
        let id = uuid::Uuid::now_v7().to_string();
        let now = context.clock.now_naive();
        table::insert_attachment(
            conn,
            &AttachmentRow {
                id: id.clone(),
                case_id: case_id.to_owned(),
                content_type: content_type.to_owned(),
                size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
                name_enc: name
                    .map(|n| {
                        dek.seal(
                            &binding("attachments", "name_enc", &id, case_id),
                            n.expose().as_bytes(),
                        )
                    })
                    .transpose()?,
                content_enc: dek
                    .seal(&binding("attachments", "content_enc", &id, case_id), bytes)?,
                uploaded_by: author.clone(),
                uploaded_at: now,
            },
        )?;
        table::touch(conn, case_id, now)?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_UPDATED, case_id)
                .detail("attachment_added", id.clone())
                .detail("content_type", content_type),
        )?;
        Ok(id)
    })
}

/// An attachment's metadata with its name opened.
#[derive(Debug, Clone)]
pub struct AttachmentView {
    pub meta: AttachmentMeta,
    pub name: Option<SecretText>,
}

pub fn list(
    conn: &mut DbConnection,
    dek: &DataKey,
    case_id: &str,
) -> Result<Vec<AttachmentView>, CaseError> {
    table::attachments_of(conn, case_id)?
        .into_iter()
        .map(|meta| {
            let name = meta
                .name_enc
                .as_deref()
                .map(|stored| {
                    dek.open_text(
                        &binding("attachments", "name_enc", &meta.id, case_id),
                        stored,
                    )
                })
                .transpose()?;
            Ok(AttachmentView { meta, name })
        })
        .collect()
}

/// A downloaded attachment.
pub struct Download {
    pub content_type: String,
    pub name: Option<SecretText>,
    pub content: SecretBytes,
}

/// Opens one attachment; the read is audited in the same transaction.
pub fn download(
    conn: &mut DbConnection,
    context: &CaseContext<'_>,
    by: &Capability,
    case_id: &str,
    attachment_id: &str,
) -> Result<Download, CaseError> {
    if !by.allows_case(Action::CaseRead, case_id) {
        return Err(CaseError::NotFound);
    }
    write_transaction(conn, |conn| {
        let case = table::find(conn, case_id)?.ok_or(CaseError::NotFound)?;
        if case.content_destroyed_at.is_some() {
            return Err(CaseError::ContentDestroyed);
        }
        let row = table::attachment(conn, case_id, attachment_id)?.ok_or(CaseError::NotFound)?;
        let dek = case_key(conn, context, case_id)?;
        let content = dek.open(
            &binding("attachments", "content_enc", &row.id, case_id),
            &row.content_enc,
        )?;
        let name = row
            .name_enc
            .as_deref()
            .map(|stored| {
                dek.open_text(
                    &binding("attachments", "name_enc", &row.id, case_id),
                    stored,
                )
            })
            .transpose()?;
        context.auditor.append(
            conn,
            context.clock,
            &case_event(by, action::CASE_READ, case_id)
                .detail("fields", "attachment.content,attachment.name")
                .detail("attachment_id", row.id.clone())
                .detail(
                    "via",
                    if by.via_break_glass() {
                        "break_glass"
                    } else {
                        "role"
                    },
                ),
        )?;
        Ok(Download {
            content_type: row.content_type,
            name,
            content,
        })
    })
}
