//! Credentials for the sources: OAuth2 refresh for Webex, the HMAC-SHA1 signature of the
//! legacy reporting API (and, later, bearer keys for Xima).

pub mod hmac;
pub mod oauth;

pub use hmac::LegacyAuth;
pub use oauth::{AuthError, OAuthTokens, StoredToken, TokenStore};
