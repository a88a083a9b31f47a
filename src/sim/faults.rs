//! Fault injection: `--faults "tasks:429x3,captures:503x2,audio:expire,tasks:401,cars:badvalue"`.
//!
//! Each entry names a route (`token`, `tasks`, `captures`, `audio`, `csrs`, `cars`, `xima`
//! for Xima's metadata, `xima_audio`), a fault and how many consecutive requests it hits
//! (default 1). Faults:
//! - an HTTP status; `429date` (a 429 whose Retry-After is an HTTP-date); `429bare` (a 429
//!   without Retry-After, as the spec allows on tasks, captures and search, that opens a
//!   [`THROTTLE_WINDOW`] in which every request on the route gets the same); `expire` (a
//!   pre-signed URL refused as expired); `revoked` (the token route refuses the refresh token);
//! - on the wire, for any route (see `sim::wire`): `reset` (the connection drops half-way
//!   through the body), `hang` (the body stops half-way and nothing more comes), `stall` (no
//!   answer at all for a while), `truncate` (a complete response holding half the body);
//!   on `tasks`: `repeat` (the previous page again, whatever was asked), `huge` (a page past
//!   the connector's size limit), `bigfield` (a 10 MB string in a task attribute);
//!   on `tasks`, `captures` and `xima`: `nofield` (the first item lacks a required field),
//!   `badtype` (that field is an object);
//! - on the legacy CSV routes, awkward bodies: `bom`, `newcol`, `dropcol`, `badvalue`,
//!   `truncate` (cut in the middle of the last row), `badutf8`, `noevent` (CARs without
//!   the `event` column, a name no public sample confirms).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a `429bare` keeps its route throttled: a rate window (a minute on a real org,
/// shortened so tests stay quick; long enough that retrying within it is seen).
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(2);

/// What a fault does to the request it hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this status.
    Status(u16),
    /// 429 with `Retry-After` as an HTTP-date.
    ThrottleDate,
    /// 429 without `Retry-After`, and the route throttled for [`THROTTLE_WINDOW`].
    ThrottleBare,
    /// 403 "Request has expired" on a pre-signed download.
    Expire,
    /// CSV that starts with a UTF-8 byte-order mark.
    Bom,
    /// CSV with a column the connector does not know.
    NewColumn,
    /// CSV without the `teamName` column.
    DropColumn,
    /// CAR CSV without the `event` column (only the CAR id's form confirms the event).
    NoEvent,
    /// CSV with a `cstts` that is not a number.
    BadValue,
    /// CSV cut off in the middle of its last row.
    Truncate,
    /// CSV with a byte that is not UTF-8.
    BadUtf8,
    /// 400 `invalid_grant` from the token route: the refresh token is revoked.
    Revoked,
    /// The connection is dropped half-way through the body.
    Reset,
    /// Half the body, then silence (a read timeout for the client).
    Hang,
    /// No response for a while (a read timeout before the headers).
    Stall,
    /// The previous page of the route again, whatever the request asked.
    Repeat,
    /// A page bigger than any real one (whitespace, then the page).
    Huge,
    /// A 10 MB string in the first task's attributes.
    BigField,
    /// The first item without a field the API always sends (`createdTime`, `taskId`, `callKey`).
    NoField,
    /// That field with the wrong type (an object).
    BadType,
}

impl FaultKind {
    /// Faults applied on the wire to a successful answer (by `sim::wire`), not by the
    /// route's handler; a `truncate` on a CSV route is the handler's CSV quirk instead.
    pub fn is_wire(&self, route: &str) -> bool {
        match self {
            FaultKind::Reset
            | FaultKind::Hang
            | FaultKind::Stall
            | FaultKind::Repeat
            | FaultKind::Huge
            | FaultKind::BigField
            | FaultKind::NoField
            | FaultKind::BadType => true,
            FaultKind::Truncate => !matches!(route, "csrs" | "cars"),
            _ => false,
        }
    }

    /// Faults that change a CSV body rather than the response status.
    pub fn is_csv_quirk(&self) -> bool {
        matches!(
            self,
            FaultKind::Bom
                | FaultKind::NewColumn
                | FaultKind::DropColumn
                | FaultKind::NoEvent
                | FaultKind::BadValue
                | FaultKind::Truncate
                | FaultKind::BadUtf8
        )
    }
}

/// A fault on a route, for its next `remaining` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The route (one of [`ROUTES`]).
    pub route: String,
    /// What happens.
    pub kind: FaultKind,
    /// Requests it still hits.
    pub remaining: u32,
}

/// The routes faults can name.
pub const ROUTES: [&str; 11] = [
    "token",
    "tasks",
    "captures",
    "search",
    "subscriptions",
    "audio",
    "transcripts",
    "csrs",
    "cars",
    "xima",
    "xima_audio",
];

/// Parses `--faults` (`route:kind[xN],…`).
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
            "429bare" => FaultKind::ThrottleBare,
            "bom" => FaultKind::Bom,
            "newcol" => FaultKind::NewColumn,
            "dropcol" => FaultKind::DropColumn,
            "noevent" => FaultKind::NoEvent,
            "badvalue" => FaultKind::BadValue,
            "truncate" => FaultKind::Truncate,
            "badutf8" => FaultKind::BadUtf8,
            "revoked" => FaultKind::Revoked,
            "reset" => FaultKind::Reset,
            "hang" => FaultKind::Hang,
            "stall" => FaultKind::Stall,
            "repeat" => FaultKind::Repeat,
            "huge" => FaultKind::Huge,
            "bigfield" => FaultKind::BigField,
            "nofield" => FaultKind::NoField,
            "badtype" => FaultKind::BadType,
            k => FaultKind::Status(
                k.parse::<u16>()
                    .ok()
                    .filter(|s| (400..600).contains(s))
                    .ok_or_else(|| {
                        format!("fault kind '{k}' is not an HTTP error status, 429date, 429bare, expire, revoked, reset, hang, stall, truncate, repeat, huge, bigfield, nofield, badtype, bom, newcol, dropcol, noevent, badvalue or badutf8")
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

/// The faults still to inject, and the routes a `429bare` throttles until when.
#[derive(Debug, Default)]
pub struct Faults {
    pending: Mutex<Vec<Fault>>,
    /// Route → until when a `429bare` throttles it.
    throttled_until: Mutex<HashMap<String, Instant>>,
}

impl Faults {
    /// The faults to inject.
    pub fn new(list: Vec<Fault>) -> Self {
        Faults {
            pending: Mutex::new(list),
            throttled_until: Mutex::default(),
        }
    }

    /// Whether `route` is inside a throttle window a `429bare` opened.
    pub fn throttled(&self, route: &str) -> bool {
        let windows = self
            .throttled_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        windows
            .get(route)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Throttles `route` for [`THROTTLE_WINDOW`] from now.
    pub fn throttle(&self, route: &str) {
        let mut windows = self
            .throttled_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.insert(route.to_string(), Instant::now() + THROTTLE_WINDOW);
    }

    /// Takes one fault for `route`'s handler, if any is left.
    pub fn take(&self, route: &str) -> Option<FaultKind> {
        self.take_where(route, |k| !k.is_wire(route))
    }

    /// Takes one wire fault for `route` that `pick` accepts, if any is left.
    pub fn take_wire(&self, route: &str, pick: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        self.take_where(route, |k| k.is_wire(route) && pick(k))
    }

    /// Whether any wire fault is still to come for `route`.
    pub fn pending_wire(&self, route: &str) -> bool {
        let list = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.iter()
            .any(|f| f.route == route && f.remaining > 0 && f.kind.is_wire(route))
    }

    fn take_where(&self, route: &str, pick: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        let mut list = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let f = list
            .iter_mut()
            .find(|f| f.route == route && f.remaining > 0 && pick(&f.kind))?;
        f.remaining -= 1;
        Some(f.kind.clone())
    }

    /// More faults, after the ones pending.
    pub fn add(&self, more: Vec<Fault>) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        // Wire faults and handler faults are taken by different hands.
        let f = Faults::new(parse("tasks:reset,tasks:500,csrs:truncate").unwrap());
        assert_eq!(f.take("tasks"), Some(FaultKind::Status(500)));
        assert!(f.pending_wire("tasks") && !f.pending_wire("csrs"));
        assert_eq!(f.take_wire("tasks", |_| true), Some(FaultKind::Reset));
        assert_eq!(f.take_wire("csrs", |_| true), None);
        assert_eq!(f.take("csrs"), Some(FaultKind::Truncate));
    }
}
