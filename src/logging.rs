//! Logs to stderr in the hclog JSON shape that Terraform and OpenTofu read
//! from a plugin: one JSON object per line with `@level`, `@message`,
//! `@module` and `@timestamp`, plus the event's (and its spans') fields as
//! top-level keys. The CLI (go-plugin's `logStderr`) parses such lines and
//! re-logs them at their level; any other stderr line is logged at DEBUG, and
//! a line whose `@timestamp` does not parse with Go's
//! `2006-01-02T15:04:05.000000Z07:00` layout is treated as plain text.
//!
//! # Level
//! `TF_LOG_PROVIDER`, else `TF_LOG`, as the CLI itself reads them:
//! `TRACE`/`DEBUG`/`INFO`/`WARN`/`ERROR` (any case), `JSON` means `TRACE`,
//! `OFF` or unset means nothing is written, and any other value means `TRACE`
//! (Terraform's own fallback for an invalid level).
//!
//! Why unset means off, while HashiCorp's SDK emits everything and lets the
//! CLI filter: the provider runs as a child of the CLI and inherits its
//! environment, and with neither variable set the CLI discards every provider
//! line (`internal/logging` writes to `io.Discard`). Emitting them anyway
//! would only cost formatting and pipe writes on every RPC. The one setup in
//! which the provider does not inherit the CLI's environment, a provider
//! started by hand for `TF_REATTACH_PROVIDERS`, is one where the person
//! starting it sets `TF_LOG` for it as well.
//!
//! Other crates (tonic, h2, hyper, ...) log at most at INFO even under
//! `TF_LOG=TRACE`, so a trace log shows the provider's own steps rather than
//! every HTTP/2 frame. `SELFHOST_LOG`, when set, replaces this policy with a
//! `tracing_subscriber::EnvFilter` directive string (e.g. `trace` or
//! `h2=trace,terraform_provider_selfhost=debug`) for debugging the wire.
//!
//! Secrets: the formatter writes whatever fields it is given, so values that
//! must not be logged are wrapped in
//! [`Sensitive`](crate::sensitive::Sensitive) or left out of spans
//! (`#[instrument(skip(...))]`).

use std::fmt;

use serde_json::{Map, Value as Json};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// The crate's tracing target prefix, as written in `target:` and module paths.
const CRATE_TARGET: &str = "terraform_provider_selfhost";
/// The `@module` of the crate's own events: `provider.` plus the binary name,
/// as Terraform names a provider's logger.
const CRATE_MODULE: &str = "provider.terraform-provider-selfhost";
/// Go's `2006-01-02T15:04:05.000000Z07:00`, the layout go-plugin parses.
const TIMESTAMP: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Install the stderr subscriber for the level the environment asks for.
/// Call once, before serving; a second call (or a subscriber installed by
/// someone else) leaves the first one in place.
pub fn init() {
    let filter = filter_from_env(|k| std::env::var(k).ok());
    let layer = tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(HclogFormat)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Err only when a global subscriber exists already: keep that one.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The provider's log level from `TF_LOG_PROVIDER`, else `TF_LOG`, read
/// through `get` (so tests need not touch the process environment).
pub fn level_from_env(get: impl Fn(&str) -> Option<String>) -> LevelFilter {
    let raw = ["TF_LOG_PROVIDER", "TF_LOG"]
        .into_iter()
        .filter_map(&get)
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty());
    match raw.map(|v| v.to_ascii_uppercase()).as_deref() {
        None | Some("OFF") => LevelFilter::OFF,
        Some("ERROR") => LevelFilter::ERROR,
        Some("WARN") => LevelFilter::WARN,
        Some("INFO") => LevelFilter::INFO,
        Some("DEBUG") => LevelFilter::DEBUG,
        // TRACE, JSON, and (as Terraform does) anything it does not know.
        Some(_) => LevelFilter::TRACE,
    }
}

/// The filter for the environment read through `get`: `SELFHOST_LOG`
/// directives when given, else the provider's level with other crates capped
/// at INFO.
pub fn filter_from_env(get: impl Fn(&str) -> Option<String>) -> EnvFilter {
    if let Some(directives) = get("SELFHOST_LOG").filter(|d| !d.trim().is_empty()) {
        return EnvFilter::builder().parse_lossy(directives);
    }
    let level = level_from_env(get);
    let others = level.min(LevelFilter::INFO);
    // kube-client logs a whole response body at WARN when it cannot parse
    // it, and the body of a Secret holds its data: only its errors pass.
    let kube_client = level.min(LevelFilter::ERROR);
    EnvFilter::builder().parse_lossy(format!("{others},kube_client={kube_client},{CRATE_TARGET}={level}"))
}

/// The hclog name (`@module`) for a tracing target: the crate's own targets
/// map to `provider.terraform-provider-selfhost[.sub.module]`, anything else
/// to `provider.<target>` with `::` turned into `.`.
pub fn module_for_target(target: &str) -> String {
    match target.strip_prefix(CRATE_TARGET) {
        Some("") => CRATE_MODULE.to_owned(),
        Some(rest) if rest.starts_with("::") => format!("{CRATE_MODULE}{}", rest.replace("::", ".")),
        _ => format!("provider.{}", target.replace("::", ".")),
    }
}

/// hclog's lower-case level names.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// A [`FormatEvent`] writing one hclog JSON object per event. Span fields
/// (outermost first) and then event fields become top-level keys; the
/// event's `message` becomes `@message`. Field formatting and span storage
/// are tracing-subscriber's own ([`JsonFields`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct HclogFormat;

impl<S> FormatEvent<S, JsonFields> for HclogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(formatted) = ext.get::<FormattedFields<JsonFields>>() {
                    merge_json_object(&mut fields, &formatted.fields);
                }
            }
        }
        let mut event_fields = String::new();
        ctx.format_fields(Writer::new(&mut event_fields), event)?;
        merge_json_object(&mut fields, &event_fields);

        let message = match fields.remove("message") {
            Some(Json::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let timestamp = time::OffsetDateTime::now_utc()
            .format(TIMESTAMP)
            .map_err(|_| fmt::Error)?;

        let mut line = Map::new();
        line.insert("@level".into(), level_name(meta.level()).into());
        line.insert("@message".into(), message.into());
        line.insert("@module".into(), module_for_target(meta.target()).into());
        line.insert("@timestamp".into(), timestamp.into());
        for (k, v) in fields {
            // The four keys above are hclog's; a field of the same name
            // must not change how the CLI reads the line.
            line.entry(k).or_insert(v);
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Merge the JSON object in `json` (as [`JsonFields`] writes it) into `into`.
fn merge_json_object(into: &mut Map<String, Json>, json: &str) {
    if json.is_empty() {
        return;
    }
    if let Ok(Json::Object(map)) = serde_json::from_str::<Json>(json) {
        into.extend(map);
    }
}

/// An error and its causes on one line (`a: b: c`), for diagnostics and
/// logs: each layer's message says its own part once (kube-rs issue 515).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !text.ends_with(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::sensitive::Sensitive;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    /// Run `f` under the hclog layer with `env` as environment; return the
    /// lines written, each parsed as JSON (failing on any non-JSON line).
    fn capture(env: &[(&str, &str)], f: impl FnOnce()) -> Vec<Map<String, Json>> {
        let out = Capture::default();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let filter = filter_from_env(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()));
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(HclogFormat)
            .with_writer(out.clone())
            .with_filter(filter);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| match serde_json::from_str(l) {
                Ok(Json::Object(m)) => m,
                other => panic!("not a JSON object line: {l:?} ({other:?})"),
            })
            .collect()
    }

    #[test]
    fn writes_hclog_shape_with_fields_and_spans() {
        let lines = capture(&[("TF_LOG", "TRACE")], || {
            let span = tracing::info_span!("rpc", tf_rpc = "ApplyResourceChange", tf_req_id = 7u64);
            let _g = span.enter();
            tracing::debug!(host = "10.0.0.1", attempt = 2, ok = true, "connecting to host");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let l = &lines[0];
        assert_eq!(l["@level"], "debug");
        assert_eq!(l["@message"], "connecting to host");
        assert_eq!(l["@module"], "provider.terraform-provider-selfhost.logging.tests");
        assert_eq!(l["host"], "10.0.0.1");
        assert_eq!(l["attempt"], 2);
        assert_eq!(l["ok"], true);
        assert_eq!(l["tf_rpc"], "ApplyResourceChange");
        assert_eq!(l["tf_req_id"], 7);
        assert!(!l.contains_key("message"));
    }

    #[test]
    fn timestamp_has_go_layout_with_micros() {
        let lines = capture(&[("TF_LOG", "INFO")], || tracing::info!("hello"));
        let ts = lines[0]["@timestamp"].as_str().unwrap().to_owned();
        // 2006-01-02T15:04:05.000000Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert_eq!(&ts[10..11], "T");
        assert_eq!(&ts[19..20], ".");
        assert!(ts[20..26].chars().all(|c| c.is_ascii_digit()), "{ts}");
        assert!(ts.ends_with('Z'));
        let parsed = time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339).unwrap();
        let age = time::OffsetDateTime::now_utc() - parsed;
        assert!(age.whole_seconds().abs() < 60, "{ts}");
    }

    #[test]
    fn level_names_and_filtering() {
        let lines = capture(&[("TF_LOG", "warn")], || {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::info!("i");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let got: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l["@level"].as_str().unwrap(), l["@message"].as_str().unwrap()))
            .collect();
        assert_eq!(got, vec![("warn", "w"), ("error", "e")]);

        let all = capture(&[("TF_LOG", "json")], || {
            tracing::trace!("t");
            tracing::info!("i");
        });
        assert_eq!(all[0]["@level"], "trace");
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn level_from_env_follows_the_cli() {
        let lvl = |pairs: &[(&str, &str)]| {
            level_from_env(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
        };
        assert_eq!(lvl(&[]), LevelFilter::OFF);
        assert_eq!(lvl(&[("TF_LOG", "")]), LevelFilter::OFF);
        assert_eq!(lvl(&[("TF_LOG", "off")]), LevelFilter::OFF);
        assert_eq!(lvl(&[("TF_LOG", "DEBUG")]), LevelFilter::DEBUG);
        assert_eq!(lvl(&[("TF_LOG", "JSON")]), LevelFilter::TRACE);
        assert_eq!(lvl(&[("TF_LOG", "verbose")]), LevelFilter::TRACE);
        assert_eq!(
            lvl(&[("TF_LOG", "TRACE"), ("TF_LOG_PROVIDER", "error")]),
            LevelFilter::ERROR
        );
        assert_eq!(lvl(&[("TF_LOG", "warn"), ("TF_LOG_PROVIDER", "")]), LevelFilter::WARN);
    }

    #[test]
    fn unset_level_writes_nothing() {
        let lines = capture(&[], || tracing::error!("e"));
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn other_crates_are_capped_at_info() {
        let lines = capture(&[("TF_LOG", "TRACE")], || {
            tracing::trace!(target: "h2::codec", "frame");
            tracing::info!(target: "h2::codec", "connection");
            tracing::trace!("ours");
        });
        let msgs: Vec<&str> = lines.iter().map(|l| l["@message"].as_str().unwrap()).collect();
        assert_eq!(msgs, vec!["connection", "ours"]);
        assert_eq!(lines[0]["@module"], "provider.h2.codec");

        let wire = capture(&[("TF_LOG", "TRACE"), ("SELFHOST_LOG", "h2=trace")], || {
            tracing::trace!(target: "h2::codec", "frame");
            tracing::trace!("ours");
        });
        let msgs: Vec<&str> = wire.iter().map(|l| l["@message"].as_str().unwrap()).collect();
        assert_eq!(msgs, vec!["frame"]);
    }

    #[test]
    fn kube_client_warnings_never_pass() {
        // kube-client's WARN on an unparsable response carries the body.
        let lines = capture(&[("TF_LOG", "TRACE")], || {
            tracing::warn!(target: "kube_client::client", "{{\"data\":{{\"token\":\"c2VjcmV0\"}}}}");
            tracing::error!(target: "kube_client::client", "failed");
        });
        let msgs: Vec<&str> = lines.iter().map(|l| l["@message"].as_str().unwrap()).collect();
        assert_eq!(msgs, vec!["failed"]);
    }

    #[test]
    fn reserved_keys_win_over_fields() {
        let lines = capture(&[("TF_LOG", "INFO")], || {
            tracing::info!(module = "m", "@level" = "error", "real");
        });
        assert_eq!(lines[0]["@level"], "info");
        assert_eq!(lines[0]["@message"], "real");
        assert_eq!(lines[0]["module"], "m");
    }

    #[test]
    fn sensitive_values_stay_hidden() {
        let token = Sensitive::new("s3cr3t-t0ken".to_owned());
        let lines = capture(&[("TF_LOG", "TRACE")], || {
            let span = tracing::info_span!("apply", token = ?token);
            let _g = span.enter();
            tracing::info!(secret = %token, "stored {token}");
        });
        let text = serde_json::to_string(&lines).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(lines[0]["secret"], "(sensitive value)");
        assert_eq!(lines[0]["@message"], "stored (sensitive value)");
    }

    #[test]
    fn module_names() {
        assert_eq!(module_for_target("terraform_provider_selfhost"), CRATE_MODULE);
        assert_eq!(
            module_for_target("terraform_provider_selfhost::plugin::server"),
            "provider.terraform-provider-selfhost.plugin.server"
        );
        assert_eq!(
            module_for_target("terraform_provider_selfhostx"),
            "provider.terraform_provider_selfhostx"
        );
        assert_eq!(module_for_target("tonic::transport"), "provider.tonic.transport");
    }
}
