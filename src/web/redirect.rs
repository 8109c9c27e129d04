//! Where a redirect may send the browser when the request names the target
//! (the language switch's `back`). The one gate for every user-supplied
//! redirect target: only a path of this service passes, judged the way a
//! browser will read it (the WHATWG URL rules, through the `url` crate), so
//! `/\t/evil.example/`, `/\evil.example` or `//evil.example` can never leave
//! the site. Everything else goes to the start page.

use url::Url;

/// A fixed origin to resolve against; only its sameness matters.
const BASE: &str = "https://caseguard.invalid/";

/// Longest target kept (a page address with its query fits easily).
const MAX_LEN: usize = 2048;

/// The target as a same-origin path (with its query, never a fragment),
/// normalised as a browser would resolve it, or `None` when it could lead
/// anywhere else. Control characters (a browser strips tab, CR and LF
/// before parsing; CR/LF would also split the header) and backslashes (a
/// browser reads them as `/`) are refused outright rather than normalised.
pub fn local_path(raw: &str) -> Option<String> {
    if raw.len() > MAX_LEN
        || !raw.starts_with('/')
        || raw.chars().any(|c| c.is_control() || c == '\\')
    {
        return None;
    }
    let base = Url::parse(BASE).ok()?;
    let joined = base.join(raw).ok()?;
    if joined.origin() != base.origin() || joined.username() != "" || joined.password().is_some() {
        return None;
    }
    let mut path = joined.path().to_owned();
    // A path that normalises to `//…` would be read as another host when
    // sent back as a relative Location.
    if !path.starts_with('/') || path.starts_with("//") {
        return None;
    }
    if let Some(query) = joined.query() {
        path.push('?');
        path.push_str(query);
    }
    Some(path)
}

/// The target, or the start page when it is not one of ours.
pub fn local_or_home(raw: Option<&str>) -> String {
    raw.and_then(local_path).unwrap_or_else(|| "/".to_owned())
}

/// Known open-redirect shapes (after the OWASP and PortSwigger lists), for
/// the tests here and the integration test that sends them to the server.
#[doc(hidden)]
pub const KNOWN_OPEN_REDIRECTS: &[&str] = &[
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r\nLocation: https://evil.example/",
    "/\r\nSet-Cookie: a=b",
    "/ /evil.example",
    "https://evil.example",
    "http:evil.example",
    "http:/evil.example",
    "https:/\\evil.example",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "/.//evil.example",
    "/..//evil.example",
    "/../..//evil.example",
    "/%2e%2e//evil.example",
    "/./%2e//evil.example",
    "/@evil.example",
    "//user@evil.example",
    "/\u{3000}/evil.example",
    "/\u{0}/evil.example",
    "/\u{7f}/evil.example",
    "/\u{85}/evil.example",
    "\u{feff}//evil.example",
    " //evil.example",
];

#[cfg(test)]
mod tests {
    use super::{KNOWN_OPEN_REDIRECTS, local_or_home, local_path};

    #[test]
    fn known_payloads_stay_on_the_site() {
        let base = url::Url::parse("https://caseguard.example/").unwrap();
        for payload in KNOWN_OPEN_REDIRECTS {
            let target = local_or_home(Some(payload));
            let resolved = base.join(&target).unwrap();
            assert_eq!(
                resolved.host_str(),
                Some("caseguard.example"),
                "{payload:?} → {target:?}"
            );
        }
    }

    #[test]
    fn our_own_paths_pass_normalised() {
        assert_eq!(local_path("/").as_deref(), Some("/"));
        assert_eq!(
            local_path("/cases?status=open").as_deref(),
            Some("/cases?status=open")
        );
        assert_eq!(local_path("/cases/../stats").as_deref(), Some("/stats"));
        assert_eq!(
            local_path("/trường").as_deref(),
            Some("/tr%C6%B0%E1%BB%9Dng")
        );
        assert_eq!(local_path("/a#frag").as_deref(), Some("/a"));
        assert_eq!(local_path(""), None);
        assert_eq!(local_path(&format!("/{}", "a".repeat(3000))), None);
    }
}
