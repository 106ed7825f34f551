//! What one backup schedule is, as validated configuration: the input of
//! the generated scripts ([`super::script`]) and of the rendered objects
//! ([`super::cronjob`]). Secrets are not here: they reach the job only as
//! environment variables from its Secret ([`SecretEnv`]). Pure.

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An agent's volume, mounted read-only from its PersistentVolumeClaim.
    Volume { agent: String, claim: String },
    /// A PostgreSQL database, dumped with `pg_dump --format=custom`.
    Postgres {
        host: String,
        port: u16,
        database: String,
        user: String,
    },
}

/// Where the restic repository lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An S3-compatible bucket; `endpoint` is a URL with its scheme.
    S3 {
        endpoint: String,
        bucket: String,
        prefix: String,
        region: String,
    },
    /// A PersistentVolumeClaim mounted read-write; the repository is the
    /// directory `prefix` inside it (its root when empty).
    Volume { claim: String, prefix: String },
}

/// How many snapshots `restic forget --prune` keeps; `None` for a policy
/// not set. With none set, nothing is forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

impl Retention {
    /// `restic forget` flags, in a fixed order.
    pub fn flags(&self) -> Vec<(&'static str, u32)> {
        [
            ("--keep-last", self.keep_last),
            ("--keep-hourly", self.keep_hourly),
            ("--keep-daily", self.keep_daily),
            ("--keep-weekly", self.keep_weekly),
            ("--keep-monthly", self.keep_monthly),
        ]
        .into_iter()
        .filter_map(|(flag, n)| n.map(|n| (flag, n)))
        .collect()
    }
}

/// One backup schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSpec {
    pub namespace: String,
    pub name: String,
    pub source: Source,
    pub destination: Destination,
    pub retention: Retention,
}

impl BackupSpec {
    /// The restic `--host` of every snapshot: the schedule's identity,
    /// since the job's pod name changes with every run.
    pub fn restic_host(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
}

/// The environment variables the job's Secret provides, by source and
/// destination; these names are also the Secret's keys.
pub struct SecretEnv;

impl SecretEnv {
    /// The restic repository password.
    pub const RESTIC_PASSWORD: &'static str = "RESTIC_PASSWORD";
    pub const AWS_ACCESS_KEY_ID: &'static str = "AWS_ACCESS_KEY_ID";
    pub const AWS_SECRET_ACCESS_KEY: &'static str = "AWS_SECRET_ACCESS_KEY";
    /// libpq reads the password from here (never from argv).
    pub const PGPASSWORD: &'static str = "PGPASSWORD";

    /// What the restic container needs.
    pub fn restic(dest: &Destination) -> Vec<&'static str> {
        match dest {
            Destination::S3 { .. } => vec![
                Self::RESTIC_PASSWORD,
                Self::AWS_ACCESS_KEY_ID,
                Self::AWS_SECRET_ACCESS_KEY,
            ],
            Destination::Volume { .. } => vec![Self::RESTIC_PASSWORD],
        }
    }

    /// What the dump container needs.
    pub fn dump(source: &Source) -> Vec<&'static str> {
        match source {
            Source::Postgres { .. } => vec![Self::PGPASSWORD],
            Source::Volume { .. } => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_flags_only_for_set_policies() {
        let r = Retention {
            keep_last: Some(3),
            keep_weekly: Some(0),
            ..Retention::default()
        };
        assert_eq!(r.flags(), vec![("--keep-last", 3), ("--keep-weekly", 0)]);
        assert!(Retention::default().flags().is_empty());
    }
}
