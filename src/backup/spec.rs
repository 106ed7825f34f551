//! What one backup schedule is, as validated configuration: the input of
//! the generated scripts ([`super::script`]) and of the rendered objects
//! ([`super::cronjob`]). Secrets are not here: they reach the job only as
//! environment variables from its Secret ([`SecretEnv`]). Pure.

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An agent's volume, mounted read-only from its PersistentVolumeClaim.
    Volume {
        /// The agent whose data it is.
        agent: String,
        /// The PersistentVolumeClaim holding the agent's volume.
        claim: String,
    },
    /// A PostgreSQL database, dumped with `pg_dump --format=custom`.
    Postgres {
        /// The server's host name or address, as the job's pod resolves it.
        host: String,
        /// The server's TCP port.
        port: u16,
        /// The database to dump.
        database: String,
        /// The role `pg_dump` connects as; its password comes from the Secret.
        user: String,
    },
}

/// Where the restic repository lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// An S3-compatible bucket; `endpoint` is a URL with its scheme.
    S3 {
        /// The S3 API's URL, e.g. `https://s3.eu-central-1.amazonaws.com`.
        endpoint: String,
        /// The bucket holding the repository.
        bucket: String,
        /// The key prefix the repository lives under (the bucket's root when empty).
        prefix: String,
        /// The bucket's region, exported as `AWS_DEFAULT_REGION` when not empty.
        region: String,
    },
    /// A PersistentVolumeClaim mounted read-write; the repository is the
    /// directory `prefix` inside it (its root when empty).
    Volume {
        /// The PersistentVolumeClaim holding the repository.
        claim: String,
        /// The repository's directory inside the volume.
        prefix: String,
    },
}

/// How many snapshots `restic forget --prune` keeps; `None` for a policy
/// not set. With none set, nothing is forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest this many snapshots.
    pub keep_last: Option<u32>,
    /// Keep the last snapshot of each of this many hours.
    pub keep_hourly: Option<u32>,
    /// Keep the last snapshot of each of this many days.
    pub keep_daily: Option<u32>,
    /// Keep the last snapshot of each of this many weeks.
    pub keep_weekly: Option<u32>,
    /// Keep the last snapshot of each of this many months.
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
    /// The namespace of the CronJob, its Secret and the agent backed up.
    pub namespace: String,
    /// The schedule's name, shared by its CronJob and Secret.
    pub name: String,
    /// What is backed up.
    pub source: Source,
    /// Where the restic repository lives.
    pub destination: Destination,
    /// Which snapshots are kept after each backup.
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
    /// The S3 access key id (S3 destinations only).
    pub const AWS_ACCESS_KEY_ID: &'static str = "AWS_ACCESS_KEY_ID";
    /// The S3 secret access key (S3 destinations only).
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
