//! Credentials for the sources: OAuth2 refresh (Webex; its authorization-code login is in
//! `source::webex::login`), the token store workers share, and the HMAC-SHA1 signature of
//! the legacy reporting API.

pub mod hmac;
pub mod oauth;
pub mod shared;

pub use hmac::LegacyAuth;
pub use oauth::{AuthError, OAuthTokens, StoredToken, TokenStore, Tokens};
