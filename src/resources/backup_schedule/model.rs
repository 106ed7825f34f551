//! The resource's typed configuration (what a known plan or state holds),
//! its checks that need more than one attribute, and its conversion into
//! the pure backup layer's [`BackupSpec`], [`JobSettings`] and Secret data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backup::cronjob::JobSettings;
use crate::backup::spec::{BackupSpec, Destination, Retention, SecretEnv, Source};
use crate::framework::{AttributePath, Diagnostics, Value};

/// How many times a failed run is retried before the Job fails.
const BACKOFF_LIMIT: i32 = 1;

/// The configuration. No `Debug`: it holds secrets.
#[derive(Clone, Serialize, Deserialize)]
pub struct Config {
    pub kubeconfig: String,
    pub namespace: String,
    pub name: String,
    pub schedule: String,
    pub time_zone: Option<String>,
    pub suspend: bool,
    pub successful_jobs_history_limit: i64,
    pub failed_jobs_history_limit: i64,
    pub image: String,
    pub encryption_password: String,
    pub source: SourceBlock,
    pub destination: DestinationBlock,
    pub retention: Option<RetentionBlock>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SourceBlock {
    pub agent: Option<String>,
    pub claim: Option<String>,
    pub postgres: Option<PostgresBlock>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct PostgresBlock {
    pub host: String,
    pub port: i64,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
    pub image: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct DestinationBlock {
    pub s3: Option<S3Block>,
    pub volume: Option<VolumeBlock>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct S3Block {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct VolumeBlock {
    pub claim: String,
    pub prefix: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct RetentionBlock {
    pub keep_last: Option<i64>,
    pub keep_hourly: Option<i64>,
    pub keep_daily: Option<i64>,
    pub keep_weekly: Option<i64>,
    pub keep_monthly: Option<i64>,
}

/// What the backup layer needs, all from one configuration.
pub struct Rendered {
    pub spec: BackupSpec,
    pub job: JobSettings,
    /// [`SecretEnv`] names → values: the Secret's data.
    pub secrets: BTreeMap<String, String>,
}

impl Config {
    /// The claim of an agent's volume unless `claim` names another: the
    /// convention of `selfhost_agent`'s `storage {}`.
    pub fn agent_claim(agent: &str) -> String {
        format!("{agent}-data")
    }

    /// Convert for the backup layer. `None` when the configuration lacks a
    /// source, destination or secret (validation reports those first).
    pub fn render(&self) -> Option<Rendered> {
        let source = match (&self.source.agent, &self.source.postgres) {
            (Some(agent), None) => Source::Volume {
                agent: agent.clone(),
                claim: self.source.claim.clone().unwrap_or_else(|| Self::agent_claim(agent)),
            },
            (None, Some(pg)) => Source::Postgres {
                host: pg.host.clone(),
                port: u16::try_from(pg.port).ok()?,
                database: pg.database.clone(),
                user: pg.user.clone(),
            },
            _ => return None,
        };
        let mut secrets = BTreeMap::from([(SecretEnv::RESTIC_PASSWORD.to_owned(), self.encryption_password.clone())]);
        if let Some(pg) = &self.source.postgres {
            secrets.insert(SecretEnv::PGPASSWORD.to_owned(), pg.password.clone()?);
        }
        let destination = match (&self.destination.s3, &self.destination.volume) {
            (Some(s3), None) => {
                secrets.insert(SecretEnv::AWS_ACCESS_KEY_ID.to_owned(), s3.access_key_id.clone()?);
                secrets.insert(
                    SecretEnv::AWS_SECRET_ACCESS_KEY.to_owned(),
                    s3.secret_access_key.clone()?,
                );
                Destination::S3 {
                    endpoint: s3.endpoint.clone(),
                    bucket: s3.bucket.clone(),
                    prefix: s3.prefix.clone().unwrap_or_default(),
                    region: s3.region.clone(),
                }
            }
            (None, Some(v)) => Destination::Volume {
                claim: v.claim.clone(),
                prefix: v.prefix.clone().unwrap_or_default(),
            },
            _ => return None,
        };
        let count = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
        let retention = self
            .retention
            .as_ref()
            .map(|r| Retention {
                keep_last: count(r.keep_last),
                keep_hourly: count(r.keep_hourly),
                keep_daily: count(r.keep_daily),
                keep_weekly: count(r.keep_weekly),
                keep_monthly: count(r.keep_monthly),
            })
            .unwrap_or_default();
        let limit = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Some(Rendered {
            spec: BackupSpec {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                source,
                destination,
                retention,
            },
            job: JobSettings {
                schedule: self.schedule.clone(),
                time_zone: self.time_zone.clone(),
                suspend: self.suspend,
                successful_jobs_history_limit: limit(self.successful_jobs_history_limit),
                failed_jobs_history_limit: limit(self.failed_jobs_history_limit),
                image: self.image.clone(),
                pg_dump_image: self.source.postgres.as_ref().map_or_else(
                    || crate::backup::cronjob::DEFAULT_PG_DUMP_IMAGE.to_owned(),
                    |p| p.image.clone(),
                ),
                backoff_limit: BACKOFF_LIMIT,
            },
            secrets,
        })
    }

    /// The configuration without its secrets (nor the kubeconfig), as JSON:
    /// the CronJob's annotation that `terraform import` rebuilds state from.
    pub fn public_json(&self) -> String {
        let mut c = self.clone();
        c.kubeconfig = String::new();
        c.encryption_password = String::new();
        if let Some(pg) = c.source.postgres.as_mut() {
            pg.password = None;
        }
        if let Some(s3) = c.destination.s3.as_mut() {
            s3.access_key_id = None;
            s3.secret_access_key = None;
        }
        serde_json::to_string(&c).unwrap_or_default()
    }

    /// Put the secrets read from the job's Secret back into a configuration
    /// parsed from [`Config::public_json`].
    pub fn with_secrets(mut self, kubeconfig: String, secrets: &BTreeMap<String, String>) -> Self {
        self.kubeconfig = kubeconfig;
        let get = |k: &str| secrets.get(k).cloned();
        self.encryption_password = get(SecretEnv::RESTIC_PASSWORD).unwrap_or_default();
        if let Some(pg) = self.source.postgres.as_mut() {
            pg.password = get(SecretEnv::PGPASSWORD);
        }
        if let Some(s3) = self.destination.s3.as_mut() {
            s3.access_key_id = get(SecretEnv::AWS_ACCESS_KEY_ID);
            s3.secret_access_key = get(SecretEnv::AWS_SECRET_ACCESS_KEY);
        }
        self
    }
}

/// Checks across attributes, on a configuration that may hold unknowns
/// (only known nulls are errors): exactly one source and one destination,
/// and the credentials each needs.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    let source = config.attr("source");
    if !source.is_null() && !source.is_unknown() {
        let agent = source.attr("agent");
        let pg = source.attr("postgres");
        let path = AttributePath::root("source");
        match (agent.is_null(), pg.is_null()) {
            (true, true) => diags.attribute_error(
                path,
                "Missing backup source",
                "Set `agent` (an agent's volume) or a `postgres {}` block in `source`.",
            ),
            (false, false) => diags.attribute_error(
                path,
                "Conflicting backup sources",
                "Set either `agent` or a `postgres {}` block in `source`, not both.",
            ),
            _ => {}
        }
        if !source.attr("claim").is_null() && agent.is_null() && !pg.is_null() {
            diags.attribute_error(
                path_of(&["source", "claim"]),
                "Claim without an agent",
                "`claim` names the agent's volume; it has no meaning for a `postgres {}` source.",
            );
        }
        if !pg.is_null() && !pg.is_unknown() {
            require_secret(
                pg,
                &["source", "postgres", "password"],
                "Missing PostgreSQL password",
                diags,
            );
        }
    }
    let dest = config.attr("destination");
    if !dest.is_null() && !dest.is_unknown() {
        let s3 = dest.attr("s3");
        let volume = dest.attr("volume");
        let path = AttributePath::root("destination");
        match (s3.is_null(), volume.is_null()) {
            (true, true) => diags.attribute_error(
                path,
                "Missing backup destination",
                "Add an `s3 {}` or a `volume {}` block to `destination`.",
            ),
            (false, false) => diags.attribute_error(
                path,
                "Conflicting backup destinations",
                "Use either an `s3 {}` or a `volume {}` block in `destination`, not both.",
            ),
            _ => {}
        }
        if !s3.is_null() && !s3.is_unknown() {
            for attr in ["access_key_id", "secret_access_key"] {
                require_secret(s3, &["destination", "s3", attr], "Missing S3 credentials", diags);
            }
        }
    }
    let pw = config.attr("encryption_password");
    if matches!(pw, Value::String(s) if s.is_empty()) {
        diags.attribute_error(
            AttributePath::root("encryption_password"),
            "Empty encryption password",
            "restic needs a non-empty repository password.",
        );
    }
}

fn path_of(steps: &[&str]) -> AttributePath {
    let mut p = AttributePath::root(steps[0]);
    for s in &steps[1..] {
        p = p.attr(s);
    }
    p
}

/// The last step of `steps` in `block` must be set (it may be unknown).
fn require_secret(block: &Value, steps: &[&str], summary: &str, diags: &mut Diagnostics) {
    let Some(name) = steps.last() else { return };
    let v = block.attr(name);
    let missing = v.is_null() || matches!(v, Value::String(s) if s.is_empty());
    if missing {
        diags.attribute_error(
            path_of(steps),
            summary,
            format!(
                "`{}` is required: the job reads it from its Secret. Pass it from a variable marked sensitive.",
                steps.join(".")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            kubeconfig: "token: kube-secret".to_owned(),
            namespace: "agents".to_owned(),
            name: "db".to_owned(),
            schedule: "@daily".to_owned(),
            time_zone: None,
            suspend: false,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 1,
            image: "restic".to_owned(),
            encryption_password: "restic-secret".to_owned(),
            source: SourceBlock {
                agent: None,
                claim: None,
                postgres: Some(PostgresBlock {
                    host: "db".to_owned(),
                    port: 5432,
                    database: "app".to_owned(),
                    user: "u".to_owned(),
                    password: Some("pg-secret".to_owned()),
                    image: "postgres".to_owned(),
                }),
            },
            destination: DestinationBlock {
                s3: Some(S3Block {
                    endpoint: "https://s3".to_owned(),
                    bucket: "b".to_owned(),
                    prefix: None,
                    region: "us-east-1".to_owned(),
                    access_key_id: Some("key-secret".to_owned()),
                    secret_access_key: Some("s3-secret".to_owned()),
                }),
                volume: None,
            },
            retention: None,
        }
    }

    #[test]
    fn the_import_annotation_holds_no_secret_and_the_secret_restores_them() {
        let c = config();
        let json = c.public_json();
        for secret in ["kube-secret", "restic-secret", "pg-secret", "key-secret", "s3-secret"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        let Some(r) = c.render() else {
            panic!("a complete configuration renders");
        };
        let back: Config = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let back = back.with_secrets(c.kubeconfig.clone(), &r.secrets);
        assert_eq!(back.public_json(), json);
        assert_eq!(back.render().map(|r| r.secrets), Some(r.secrets));
        assert_eq!(back.encryption_password, "restic-secret");
    }

    #[test]
    fn a_missing_credential_renders_nothing() {
        let mut c = config();
        if let Some(s3) = c.destination.s3.as_mut() {
            s3.secret_access_key = None;
        }
        assert!(c.render().is_none());
    }
}
