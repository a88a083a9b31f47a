//! Credentials for the sources: the OAuth2 authorization-code login (`ccetl auth login`,
//! for any source whose `Source::login` says how) and refresh, the token store workers
//! share, and the HMAC-SHA1 signature of the legacy reporting API.

pub mod hmac;
pub mod login;
pub mod oauth;
pub mod shared;

pub use hmac::LegacyAuth;
pub use oauth::{AuthError, OAuthTokens, StoredToken, TokenStore, Tokens};
