//! A case's one human reference (issue 20): the same short handle on the
//! school's pages, the agency's pages, the e-mails and the exports, safe to
//! read out on the phone.
//!
//! It is derived from the case id, not stored: the last 32 bits of a
//! UUIDv7 are random (the leading bits are its creation time, which a
//! reference must not show), written as eight decimal digits in two groups
//! of four ("0482-1937") — digits only, so nothing is misheard between
//! Vietnamese and English letter names. It says nothing about the pupil.
//! Eight digits are a label, not a key: two cases may share one (about one
//! pair in 20 000 among 2 000 cases of a school's lifetime), so lookups
//! always use the full id, which the case page also shows.

/// The reference of the case with id `case_id`.
pub fn case_reference(case_id: &str) -> String {
    let hex: String = case_id
        .chars()
        .rev()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let value = u32::from_str_radix(&hex, 16).unwrap_or(0) % 100_000_000;
    format!("{:04}-{:04}", value / 10_000, value % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_is_two_groups_of_four_digits_from_the_random_end() {
        let id = "0193a1b2-c3d4-7e5f-8a9b-0123456789ab";
        let value = 0x4567_89ab_u32 % 100_000_000;
        assert_eq!(
            case_reference(id),
            format!("{:04}-{:04}", value / 10_000, value % 10_000)
        );
        let r = case_reference(id);
        assert_eq!(r.len(), 9);
        assert!(r.chars().all(|c| c.is_ascii_digit() || c == '-'));
        // The time-ordered start does not change it; the random end does.
        assert_eq!(case_reference("0000aaaa-c3d4-7e5f-8a9b-0123456789ab"), r);
        assert_ne!(case_reference("0193a1b2-c3d4-7e5f-8a9b-0123456789ac"), r);
    }
}
