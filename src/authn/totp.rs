//! Time-based one-time passwords (RFC 6238): 6 digits, 30-second steps, one
//! step of clock drift either way, each code accepted once (ASVS 6.5.1,
//! 6.5.5). The secret is 160 random bits, sealed at rest.

use totp_rs::{Algorithm, TOTP};

use crate::crypto::{SecretBytes, constant_time_eq, random_bytes};

pub const STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;
pub const ISSUER: &str = "caseguard";

#[derive(Debug, thiserror::Error)]
#[error("invalid TOTP secret")]
pub struct TotpError;

fn totp(secret: &[u8], account: &str) -> Result<TOTP, TotpError> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|_| TotpError)
}

/// A new random secret.
pub fn new_secret() -> Result<SecretBytes, TotpError> {
    Ok(SecretBytes::new(
        random_bytes::<20>().map_err(|_| TotpError)?.to_vec(),
    ))
}

/// The `otpauth://` URI an authenticator app enrols from.
pub fn otpauth_uri(secret: &SecretBytes, account: &str) -> Result<String, TotpError> {
    Ok(totp(secret.expose(), account)?.get_url())
}

/// The enrolment QR code as an SVG document (no external requests, inline in
/// the page).
pub fn qr_svg(uri: &str) -> Result<String, TotpError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|_| TotpError)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The code for a given time step (for tests and the demo).
pub fn code_at_step(secret: &SecretBytes, step: u64) -> Result<String, TotpError> {
    Ok(totp(secret.expose(), "")?.generate(step * STEP_SECONDS))
}

/// Checks `code` at `unix_seconds`, allowing one step either way. Returns
/// the matched step when it is later than `last_used_step`: a code, once
/// accepted, is refused the second time.
pub fn verify(
    secret: &SecretBytes,
    code: &str,
    unix_seconds: u64,
    last_used_step: Option<i64>,
) -> Result<Option<i64>, TotpError> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let generator = totp(secret.expose(), "")?;
    let now = unix_seconds / STEP_SECONDS;
    let mut matched = None;
    // Check every candidate so the time taken does not depend on which matched.
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = generator.generate(step * STEP_SECONDS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
            matched = i64::try_from(step).ok();
        }
    }
    Ok(matched.filter(|step| last_used_step.is_none_or(|last| *step > last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> SecretBytes {
        SecretBytes::new(b"12345678901234567890".to_vec())
    }

    #[test]
    fn matches_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, truncated to 6 digits.
        assert_eq!(
            totp(rfc_secret().expose(), "").unwrap().generate(59),
            "287082"
        );
        assert_eq!(
            totp(rfc_secret().expose(), "")
                .unwrap()
                .generate(1_111_111_109),
            "081804"
        );
    }

    #[test]
    fn one_step_of_drift_and_no_replay() {
        let secret = rfc_secret();
        let now = 1_111_111_109;
        let step = i64::try_from(now / STEP_SECONDS).unwrap();
        let code = totp(secret.expose(), "").unwrap().generate(now);
        assert_eq!(verify(&secret, &code, now, None).unwrap(), Some(step));
        assert_eq!(verify(&secret, &code, now + 30, None).unwrap(), Some(step));
        assert_eq!(verify(&secret, &code, now + 90, None).unwrap(), None);
        assert_eq!(
            verify(&secret, &code, now, Some(step)).unwrap(),
            None,
            "replayed code accepted"
        );
        assert_eq!(verify(&secret, "12345", now, None).unwrap(), None);
    }

    #[test]
    fn enrolment_uri_and_qr() {
        let uri = otpauth_uri(&rfc_secret(), "lan@example.org").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/caseguard:lan%40example.org?"),
            "{uri}"
        );
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"));
    }
}
