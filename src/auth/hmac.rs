//! The legacy 1.0 reporting API's request signature.
//!
//! `Authorization: base64(HMAC-SHA1(key = API key, message = user id))` and `From: user id`.
//! The signature depends on nothing per request, so it is computed once per source.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::secret::Secret;

/// The two headers every legacy request carries.
#[derive(Debug, Clone)]
pub struct LegacyAuth {
    /// `From`: the portal user the key belongs to.
    pub from: String,
    /// `Authorization`: the HMAC-SHA1 signature with its key id (a secret).
    pub authorization: Secret,
}

impl LegacyAuth {
    /// Signs `user_id` with `api_key`; `tenant_id` adds the `;tenantId=` suffix newer tenants need.
    pub fn new(user_id: &str, api_key: &Secret, tenant_id: Option<&str>) -> Self {
        let signature = sign(api_key.expose(), user_id);
        let authorization = match tenant_id {
            Some(t) => format!("{signature};tenantId={t}"),
            None => signature,
        };
        LegacyAuth {
            from: user_id.to_string(),
            authorization: Secret::new(authorization),
        }
    }

    /// What a 401/403 most likely means, from the shape of what was configured.
    /// Never mentions the key itself.
    pub fn diagnose(&self, status: u16, api_key: &Secret) -> String {
        let key = api_key.expose();
        if !self.from.contains('@') {
            return format!(
                "user_id '{}' does not look like the API user's e-mail (the From header); set user_id to the portal user the key was generated for",
                self.from
            );
        }
        if key.trim() != key || key.len() < 8 {
            return "api_key looks malformed (too short or with surrounding whitespace); paste the key exactly as the portal shows it".into();
        }
        if status == 403 {
            format!(
                "user '{}' is not allowed to read reports in this tenant; give the user reporting access, or check tenant_id",
                self.from
            )
        } else {
            format!(
                "the signature was refused: api_key does not belong to user '{}'; regenerate the key for that user or fix user_id",
                self.from
            )
        }
    }
}

/// base64(HMAC-SHA1(key, message)).
pub fn sign(key: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc2202_vector() {
        // RFC 2202 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap());
        assert_eq!(sign("Jefe", "what do ya want for nothing?"), expected);
    }

    #[test]
    fn tenant_suffix_and_diagnosis_never_show_key() {
        let key = Secret::new("myRandomApiKeY");
        let a = LegacyAuth::new("userID@portal-controlhub.com", &key, Some("42"));
        assert!(a.authorization.expose().ends_with(";tenantId=42"));
        for status in [401, 403] {
            assert!(!a.diagnose(status, &key).contains("myRandomApiKeY"));
        }
        let b = LegacyAuth::new("not-an-email", &key, None);
        assert!(b.diagnose(401, &key).contains("user_id"));
    }
}
