//! Fault injection: `--faults "tasks:429x3,captures:503x2,audio:expire,tasks:401,cars:badvalue"`.
//!
//! Each entry names a route (`token`, `tasks`, `captures`, `audio`, `csrs`, `cars`, `xima`
//! for Xima's metadata, `xima_audio`), a fault
//! (an HTTP status, `429date` for a 429 whose Retry-After is an HTTP-date, `expire` for a
//! pre-signed URL refused as expired, or for the legacy CSV routes one of the awkward bodies
//! `bom`, `newcol`, `dropcol`, `badvalue`, `truncate`, `badutf8`) and how many consecutive
//! requests it hits (default 1).

use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    Status(u16),
    /// 429 with `Retry-After` as an HTTP-date.
    ThrottleDate,
    /// 403 "Request has expired" on a pre-signed download.
    Expire,
    /// CSV that starts with a UTF-8 byte-order mark.
    Bom,
    /// CSV with a column the connector does not know.
    NewColumn,
    /// CSV without the `teamName` column.
    DropColumn,
    /// CSV with a `cstts` that is not a number.
    BadValue,
    /// CSV cut off in the middle of its last row.
    Truncate,
    /// CSV with a byte that is not UTF-8.
    BadUtf8,
}

impl FaultKind {
    /// Faults that change a CSV body rather than the response status.
    pub fn is_csv_quirk(&self) -> bool {
        matches!(
            self,
            FaultKind::Bom
                | FaultKind::NewColumn
                | FaultKind::DropColumn
                | FaultKind::BadValue
                | FaultKind::Truncate
                | FaultKind::BadUtf8
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub route: String,
    pub kind: FaultKind,
    pub remaining: u32,
}

pub const ROUTES: [&str; 8] = [
    "token",
    "tasks",
    "captures",
    "audio",
    "csrs",
    "cars",
    "xima",
    "xima_audio",
];

pub fn parse(spec: &str) -> Result<Vec<Fault>, String> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (route, rest) = item.split_once(':').ok_or_else(|| {
            format!("fault '{item}' must look like route:kind[xN], e.g. tasks:429x3")
        })?;
        if !ROUTES.contains(&route) {
            return Err(format!(
                "fault route '{route}' is not one of {}",
                ROUTES.join(", ")
            ));
        }
        // `expire` itself contains an x: the count is only a number after the last one.
        let (kind, count) = match rest.rsplit_once('x') {
            Some((k, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => (
                k,
                n.parse::<u32>()
                    .map_err(|_| format!("fault '{item}': count '{n}' is too large"))?,
            ),
            _ => (rest, 1),
        };
        let kind = match kind {
            "expire" => FaultKind::Expire,
            "429date" => FaultKind::ThrottleDate,
            "bom" => FaultKind::Bom,
            "newcol" => FaultKind::NewColumn,
            "dropcol" => FaultKind::DropColumn,
            "badvalue" => FaultKind::BadValue,
            "truncate" => FaultKind::Truncate,
            "badutf8" => FaultKind::BadUtf8,
            k => FaultKind::Status(
                k.parse::<u16>()
                    .ok()
                    .filter(|s| (400..600).contains(s))
                    .ok_or_else(|| {
                        format!("fault kind '{k}' is not an HTTP error status, 429date, expire, bom, newcol, dropcol, badvalue, truncate or badutf8")
                    })?,
            ),
        };
        out.push(Fault {
            route: route.to_string(),
            kind,
            remaining: count,
        });
    }
    Ok(out)
}

/// The faults still to inject.
#[derive(Debug, Default)]
pub struct Faults(Mutex<Vec<Fault>>);

impl Faults {
    pub fn new(list: Vec<Fault>) -> Self {
        Faults(Mutex::new(list))
    }

    /// Takes one fault for `route`, if any is left.
    pub fn take(&self, route: &str) -> Option<FaultKind> {
        let mut list = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let f = list
            .iter_mut()
            .find(|f| f.route == route && f.remaining > 0)?;
        f.remaining -= 1;
        Some(f.kind.clone())
    }

    pub fn add(&self, more: Vec<Fault>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_counts_down() {
        assert_eq!(parse("audio:expirex3").unwrap()[0].remaining, 3);
        let f = Faults::new(parse("tasks:429x2, audio:expire").unwrap());
        assert_eq!(f.take("tasks"), Some(FaultKind::Status(429)));
        assert_eq!(f.take("tasks"), Some(FaultKind::Status(429)));
        assert_eq!(f.take("tasks"), None);
        assert_eq!(f.take("audio"), Some(FaultKind::Expire));
        assert!(parse("nope:500").is_err());
        assert!(parse("tasks:200").is_err());
        assert!(parse("tasks").is_err());
    }
}
