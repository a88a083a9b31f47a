//! What every source kind's config shares: `${ENV}` expansion, secrets, URLs, durations
//! and rates, each checked the same way and each error naming its key. A kind's
//! `validate()` (in `source/<system>/config.rs`) uses these; the key is prefixed with
//! `source[N].` by the caller, which knows where the source sits in the file.

use std::time::Duration;

use crate::secret::Secret;

use crate::units::{format_duration, parse_duration};

/// A problem with one key of a source: the key (relative to the source, e.g. `tenant` or
/// `search.ani`) and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key, relative to its source.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl KeyError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyError {
            key: key.into(),
            message: printable(&message.into()),
        }
    }
}

/// `s` on one line: a control character (a newline inside a quoted value the message
/// echoes) is written as its escape, so an error stays one line.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

impl From<(&'static str, String)> for KeyError {
    fn from((key, message): (&'static str, String)) -> Self {
        KeyError::new(key, message)
    }
}

/// What a source's `validate()` needs from outside its own table.
pub struct Fields<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// `[pipeline] concurrency`, the default of a source's own.
    pub concurrency: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(env: &'a dyn Fn(&str) -> Option<String>, concurrency: usize) -> Self {
        Fields { env, concurrency }
    }

    /// `value` with every `${NAME}` replaced by the environment variable's value.
    pub fn expand(&self, key: &str, value: &str) -> Result<String, KeyError> {
        expand_env(value, self.env).map_err(|e| KeyError::new(key, e.to_string()))
    }

    /// A secret this kind requires.
    pub fn secret(&self, key: &str, value: Option<&str>) -> Result<Secret, KeyError> {
        let value = value.ok_or_else(|| KeyError::new(key, "is required for this source kind"))?;
        self.expand(key, value).map(Secret::new)
    }

    /// A secret this kind may go without.
    pub fn optional_secret(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Option<Secret>, KeyError> {
        value.map(|v| self.secret(key, Some(v))).transpose()
    }

    /// An API URL: https, or http on loopback unless `allow_insecure_http`.
    pub fn url(&self, key: &str, value: &str, allow_insecure: bool) -> Result<url::Url, KeyError> {
        let v = self.expand(key, value)?;
        let u = url::Url::parse(&v)
            .map_err(|e| KeyError::new(key, format!("'{v}' is not a URL: {e}")))?;
        check_scheme(&u, allow_insecure).map_err(|e| KeyError::new(key, e.to_string()))?;
        Ok(u)
    }

    /// A duration, `default` when unset, refused under `min` (the message names the default).
    pub fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
        min: Duration,
    ) -> Result<Duration, KeyError> {
        let d = match value {
            Some(v) => parse_duration(v).map_err(|e| KeyError::new(key, e.to_string()))?,
            None => default,
        };
        if d < min {
            return Err(KeyError::new(
                key,
                format!(
                    "must be at least {} ({} is the default)",
                    format_duration(min),
                    format_duration(default)
                ),
            ));
        }
        Ok(d)
    }

    /// How long a read may wait for a byte before the request counts as stalled.
    pub fn read_timeout(&self, value: Option<&str>) -> Result<Duration, KeyError> {
        self.duration(
            "read_timeout",
            value,
            Duration::from_secs(60),
            Duration::from_millis(100),
        )
    }

    /// A requests-per-minute budget, `default` when unset.
    pub fn rate(
        &self,
        key: &'static str,
        value: Option<u32>,
        default: u32,
    ) -> Result<u32, KeyError> {
        value
            .map(|n| check_rate(key, n))
            .transpose()
            .map(|n| n.unwrap_or(default))
            .map_err(KeyError::from)
    }
}

/// A requests-per-minute setting, checked; errors are (key, message).
pub fn check_rate(key: &'static str, n: u32) -> Result<u32, (&'static str, String)> {
    if (1..=1_000_000).contains(&n) {
        Ok(n)
    } else {
        Err((key, "must be between 1 and 1000000".into()))
    }
}

/// A value that cannot be used as written; [`KeyError`] adds its key.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// `${` without its `}`.
    #[error("unterminated ${{…}}; write ${{NAME}}")]
    UnterminatedVariable,
    /// A `${NAME}` that is not set.
    #[error("environment variable {0} is not set; export it or put the value in the file")]
    UnsetVariable(String),
    #[error(
        "'{0}' uses plain http to a non-loopback host; use https or set allow_insecure_http = true"
    )]
    /// Plain http to a host that is not loopback.
    PlainHttp(String),
    /// A URL scheme other than https (or loopback http).
    #[error("scheme '{0}' is not supported; use https")]
    UrlScheme(String),
    /// A warehouse scheme object_store does not serve here.
    #[error("scheme '{0}' is not supported; use file://, s3://, gs:// or az://")]
    WarehouseScheme(String),
    /// A local path that cannot be made absolute.
    #[error("cannot resolve '{path}': {source}")]
    #[allow(missing_docs)] // the message names them
    Unresolvable {
        path: String,
        source: std::io::Error,
    },
    /// A path that is not a directory.
    #[error("'{0}' is not a usable directory path")]
    NotADirectory(String),
}

/// Replaces every `${NAME}` with the environment variable's value.
fn expand_env(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ValueError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(ValueError::UnterminatedVariable)?;
        let name = &after[..end];
        let val = lookup(name).ok_or_else(|| ValueError::UnsetVariable(name.to_string()))?;
        out.push_str(&val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Only https, or http on a loopback host (the simulator, a local proxy).
fn check_scheme(u: &url::Url, allow_insecure: bool) -> Result<(), ValueError> {
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback || allow_insecure {
                Ok(())
            } else {
                Err(ValueError::PlainHttp(u.to_string()))
            }
        }
        s => Err(ValueError::UrlScheme(s.to_string())),
    }
}

/// The keys a config struct accepts, read from its `Deserialize` impl (serde hands a
/// struct's field names to `deserialize_struct`), so a kind's key list is never written
/// twice.
pub fn struct_keys<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    use serde::forward_to_deserialize_any;

    struct Probe<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probed"))
        }

        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut keys: &'static [&'static str] = &[];
    // The probe always errs: it only records the names.
    let _ = T::deserialize(Probe(&mut keys));
    keys
}

/// A source's table as `T`; an error names the key it is about.
pub fn deserialize<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T, KeyError> {
    T::deserialize(table).map_err(|e| {
        // toml appends "in `key.path`" on a line of its own when it knows the key.
        let text = e.to_string();
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let message = lines.next().unwrap_or("invalid").to_string();
        let key = lines
            .find_map(|l| l.strip_prefix("in `").and_then(|l| l.strip_suffix('`')))
            .unwrap_or("")
            .to_string();
        KeyError { key, message }
    })
}
