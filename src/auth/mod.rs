//! Credentials for the sources: OAuth2 refresh for Webex (and, later, HMAC for the legacy
//! API and bearer keys for Xima).

pub mod oauth;

pub use oauth::{AuthError, OAuthTokens, StoredToken, TokenStore};
