//! Credentials for the sources: OAuth2 refresh for Webex (and the authorization-code login
//! that obtains the first tokens), the HMAC-SHA1 signature of the legacy reporting API (and,
//! later, bearer keys for Xima).

pub mod hmac;
pub mod login;
pub mod oauth;
pub mod shared;
pub mod status;

pub use hmac::LegacyAuth;
pub use oauth::{AuthError, OAuthTokens, StoredToken, TokenStore};
