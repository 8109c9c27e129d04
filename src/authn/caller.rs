//! Who is making a request: [`Caller`], checked on every request against the
//! database so that disabling an account, logging out everywhere or revoking
//! a token acts at once (ASVS 8.3.2, 7.4).
//!
//! API clients send `Authorization: Bearer <token>`; browsers send the
//! session cookie, and every state-changing request from a browser must also
//! carry the CSRF token and come from our own origin (ASVS 3.5).
//!
//! Framework-free: these functions take the plain values a request carries
//! (the token, the header values that matter); `web::extract` reads them off
//! the request and turns the outcome into a response. Nothing here knows of
//! HTTP status codes.

use super::Authn;
use super::sessions;
use super::tokens;
use crate::audit::{Actor, RequestContext};
use crate::clock::Clock;
use crate::crypto::constant_time_eq;
use crate::db::users::{self, UserRow};
use crate::db::{Db, DbError};
use crate::domain::user::Role;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVia {
    Token { jti: String, exp: i64 },
    Session { id: String },
}

/// An authenticated caller, as stored now (not as when the token was made).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserRow,
    pub role: Role,
    pub via: AuthVia,
    pub request: RequestContext,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.id.clone(),
            org_id: self.user.org_id.clone(),
            role: self.user.role.clone(),
        }
    }
}

/// Why a request has no caller.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that do not hold (now).
    #[error("valid credentials are required")]
    Unauthenticated,
    /// A browser's state change without the session's CSRF token, or from
    /// another origin.
    #[error("the request did not come from a caseguard page")]
    CsrfFailed,
    /// The database could not tell.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The `Authorization: Bearer` token of a header value, if that is its scheme.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Where a request says it comes from: its `Origin` and `Sec-Fetch-Site`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provenance<'a> {
    pub origin: Option<&'a str>,
    pub fetch_site: Option<&'a str>,
}

impl Provenance<'_> {
    /// Origin and Fetch Metadata: a state change must come from our own pages.
    pub fn same_origin(&self, public_url: &url::Url) -> bool {
        if let Some(site) = self.fetch_site
            && !matches!(site, "same-origin" | "none")
        {
            return false;
        }
        match self.origin {
            None => true,
            // Our pages send `Referrer-Policy: no-referrer`, under which
            // browsers send `Origin: null` even for our own forms; Fetch
            // Metadata then says where the form came from.
            Some("null") => self.fetch_site == Some("same-origin"),
            Some(origin) => {
                url::Url::parse(origin).is_ok_and(|o| o.origin() == public_url.origin())
            }
        }
    }
}

/// The one CSRF rule, for the API's header and the pages' form field alike:
/// the token `sent` is the one derived from the session's, and the request
/// came from our own origin.
pub fn csrf_holds(
    session_token: Option<&str>,
    sent: &str,
    provenance: Provenance<'_>,
    public_url: &url::Url,
) -> bool {
    let Some(session_token) = session_token else {
        return false;
    };
    let expected = sessions::csrf_token(session_token);
    constant_time_eq(sent.as_bytes(), expected.as_bytes()) && provenance.same_origin(public_url)
}

/// What the authentication checks read from the service.
#[derive(Clone, Copy)]
pub struct AuthnContext<'a> {
    pub db: &'a Db,
    pub authn: &'a std::sync::Arc<Authn>,
    pub clock: &'a dyn Clock,
}

impl Caller {
    /// The caller of an API bearer token.
    pub async fn from_token(
        cx: AuthnContext<'_>,
        token: &str,
        request: RequestContext,
    ) -> Result<Self, AuthError> {
        let claims =
            tokens::verify(cx.authn, cx.clock, token).map_err(|_| AuthError::Unauthenticated)?;
        let jti = claims.jti.clone();
        let exp = claims.exp;
        let user = cx
            .db
            .read_short(move |conn| {
                let Some(user) = users::find(conn, &claims.sub)? else {
                    return Ok(None);
                };
                let void = user.disabled_at.is_some()
                    || claims.iat_us <= user.tokens_not_before.and_utc().timestamp_micros()
                    || users::token_revoked(conn, &claims.jti)?;
                Ok((!void).then_some(user))
            })
            .await?
            .ok_or(AuthError::Unauthenticated)?;
        let role = Role::parse(&user.role).map_err(|_| AuthError::Unauthenticated)?;
        Ok(Self {
            user,
            role,
            via: AuthVia::Token { jti, exp },
            request,
        })
    }

    /// The caller of a browser session, without the CSRF check (which the
    /// caller of this function makes: [`csrf_holds`]).
    pub async fn from_session(
        cx: AuthnContext<'_>,
        token: &str,
        request: RequestContext,
    ) -> Result<Self, AuthError> {
        let token = token.to_owned();
        let authn = cx.authn.clone();
        let now = cx.clock.now_naive();
        let found = cx
            .db
            .write(move |conn| -> Result<_, DbError> {
                let session = match sessions::check(conn, &authn, now, &token)? {
                    Ok(session) => session,
                    Err(_) => return Ok(None),
                };
                let Some(user) = users::find(conn, &session.user_id)? else {
                    return Ok(None);
                };
                if user.disabled_at.is_some() || session.created_at <= user.tokens_not_before {
                    return Ok(None);
                }
                Ok(Some((session, user)))
            })
            .await?;
        let (session, user) = found.ok_or(AuthError::Unauthenticated)?;
        let role = Role::parse(&user.role).map_err(|_| AuthError::Unauthenticated)?;
        if role.requires_mfa() && !session.mfa_verified {
            return Err(AuthError::Unauthenticated);
        }
        Ok(Self {
            user,
            role,
            via: AuthVia::Session { id: session.id },
            request,
        })
    }
}
