//! The outside probe's findings 4–8 of issue 21, each with the test that
//! would have caught it: open redirects before sign-in, connection
//! exhaustion, file modes of the store, what an agency keeps seeing of a
//! closed referral, and the smaller ones (CSV cells, the session cookie,
//! older sessions, attachment names, partner-link answers).

use reqwest::StatusCode;
use url::Url;

use crate::helpers::{Backend, TestApp};

/// 4. The language switch before sign-in sends the browser only to our
/// own pages, whatever `back` says: every known open-redirect payload
/// resolves, as a browser resolves the `Location`, to this server; none
/// answers 500 (CR/LF used to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_never_redirects_off_site() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let origin = Url::parse(&app.url("/")).unwrap();
    let mut raw_queries: Vec<String> = caseguard::web::redirect::KNOWN_OPEN_REDIRECTS
        .iter()
        .map(|payload| {
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("back", payload)
                .finish()
        })
        .collect();
    // The probe's own request, exactly as sent.
    raw_queries.push("back=/%09/evil.example/".to_owned());
    raw_queries.push("back=/%0d%0aSet-Cookie:%20a=b".to_owned());
    for query in &raw_queries {
        let response = app.get(&format!("/lang/en?{query}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{query}");
        let location = response
            .headers()
            .get("location")
            .expect("a Location")
            .to_str()
            .expect("an ASCII Location");
        let resolved = origin.join(location).unwrap();
        assert_eq!(resolved.origin(), origin.origin(), "{query} → {location}");
    }
    // Our own pages still come back, normalised.
    let response = app.get("/lang/en?back=/login%3Fx%3D1").await;
    assert_eq!(response.headers()["location"], "/login?x=1");
}
