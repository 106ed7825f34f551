//! The schema of `selfhost_backup_schedule`: the canonical names of
//! DESIGN.md (`schedule`, `time_zone`, `source`, `destination`, `retention`,
//! `encryption_password`) and what users need beyond them.

use std::time::Duration;

use crate::backup::cronjob::{DEFAULT_IMAGE, DEFAULT_PG_DUMP_IMAGE};
use crate::backup::{cron, zone};
use crate::framework::plan_modifier::{RequiresReplace, UseStateForUnknown};
use crate::framework::timeouts::{self, Operation};
use crate::framework::validator::{Check, IntBetween};
use crate::framework::{Attribute, Block, NestedBlock, Nesting, Schema, Type};
use crate::kube::names::{check_label, check_subdomain};

/// Default time limits of the Kubernetes calls.
pub const TIMEOUTS: [(Operation, Duration); 4] = [
    (Operation::Create, Duration::from_secs(5 * 60)),
    (Operation::Read, Duration::from_secs(60)),
    (Operation::Update, Duration::from_secs(5 * 60)),
    (Operation::Delete, Duration::from_secs(5 * 60)),
];
pub const DEFAULT_SUCCESSFUL_HISTORY: i64 = 3;
pub const DEFAULT_FAILED_HISTORY: i64 = 1;
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_PG_PORT: i64 = 5432;

fn check_schedule(s: &str) -> Result<(), String> {
    cron::check(s).map_err(|e| e.to_string())
}

/// A CronJob's name is at most 52 characters: its Jobs add 11.
fn check_cronjob_name(s: &str) -> Result<(), String> {
    check_label(s)?;
    if s.len() > 52 {
        return Err(format!(
            "{s:?} is {} characters long; a CronJob's name is at most 52 (its Jobs' names add 11)",
            s.len()
        ));
    }
    Ok(())
}

fn check_not_empty(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(())
    }
}

fn check_endpoint(s: &str) -> Result<(), String> {
    match s.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() && !rest.contains(['/', '?', '#']) => Ok(()),
        Some(("http" | "https", _)) => Err(format!(
            "{s:?} must be a scheme and a host[:port] only; put the path into `bucket` and `prefix`"
        )),
        _ => Err(format!(
            "{s:?} must start with https:// (or http://), e.g. \"https://s3.eu-west-1.amazonaws.com\""
        )),
    }
}

fn keep(name: &str, what: &str) -> Attribute {
    Attribute::number(name)
        .optional()
        .description(&format!("Keep the newest snapshot of each of the last N {what}."))
        .validator(IntBetween { min: 1, max: 100_000 })
}

fn source_block() -> NestedBlock {
    let postgres = Block::new()
        .description("A PostgreSQL database, dumped with `pg_dump --format=custom` by an init container before restic stores the dump.")
        .attribute(
            Attribute::string("host")
                .required()
                .description("Host name or address of the server, as the job's pod reaches it (e.g. a Service's DNS name).")
                .validator(Check::values("Invalid PostgreSQL host", "must not be empty", check_not_empty)),
        )
        .attribute(
            Attribute::number("port")
                .optional()
                .computed()
                .default_value(DEFAULT_PG_PORT)
                .description("Port of the server.")
                .validator(IntBetween { min: 1, max: 65_535 }),
        )
        .attribute(
            Attribute::string("database")
                .required()
                .description("The database to dump.")
                .validator(Check::values("Invalid database name", "must not be empty", check_not_empty)),
        )
        .attribute(
            Attribute::string("user")
                .required()
                .description("The role pg_dump connects as (it needs read access to everything in the database).")
                .validator(Check::values("Invalid PostgreSQL user", "must not be empty", check_not_empty)),
        )
        .attribute(
            Attribute::string("password")
                .optional()
                .sensitive()
                .description("The role's password. Sensitive: kept in the job's Secret and given to pg_dump as `PGPASSWORD`, never in the script or its arguments. Must be set and non-empty (checked at plan time)."),
        )
        .attribute(
            Attribute::string("image")
                .optional()
                .computed()
                .default_value(DEFAULT_PG_DUMP_IMAGE)
                .description("Image of the dump container; its pg_dump must be at least the server's major version.")
                .validator(Check::values("Invalid image", "must not be empty", check_not_empty)),
        );
    NestedBlock::new(
        "source",
        Nesting::Single,
        Block::new()
            .description("What to back up: exactly one of `agent` (an agent's volume) or a `postgres {}` block.")
            .attribute(
                Attribute::string("agent")
                    .optional()
                    .description("Back up this agent's volume: the job mounts its PersistentVolumeClaim read-only. A ReadWriteOnce volume can be mounted only on the node of the pod that uses it, so the job's pod is scheduled on the node of the agent's pod (pod affinity on the `selfhost.dev/agent` label); a ReadWriteMany volume works from any node.")
                    .validator(Check::values("Invalid agent name", "must be an RFC 1123 label", check_label)),
            )
            .attribute(
                Attribute::string("claim")
                    .optional()
                    .description("Name of the agent's PersistentVolumeClaim; default `<agent>-data`.")
                    .validator(Check::values("Invalid claim name", "must be an RFC 1123 subdomain", check_subdomain)),
            )
            .block(NestedBlock::new("postgres", Nesting::Single, postgres)),
    )
    .min_items(1)
    .max_items(1)
}

fn destination_block() -> NestedBlock {
    let s3 = Block::new()
        .description("An S3-compatible bucket (AWS S3, MinIO, Garage, versitygw, ...).")
        .attribute(
            Attribute::string("endpoint")
                .required()
                .description("URL of the S3 service: scheme and host[:port], e.g. \"https://s3.example.com\".")
                .validator(Check::values(
                    "Invalid S3 endpoint",
                    "must be an http(s) URL with no path",
                    check_endpoint,
                )),
        )
        .attribute(
            Attribute::string("bucket")
                .required()
                .description("The bucket (created by restic on first run when missing and allowed).")
                .validator(Check::values("Invalid bucket", "must not be empty", check_not_empty)),
        )
        .attribute(
            Attribute::string("prefix")
                .optional()
                .description("Path of the repository inside the bucket; the bucket's root when unset."),
        )
        .attribute(
            Attribute::string("region")
                .optional()
                .computed()
                .default_value(DEFAULT_REGION)
                .description("Region of the bucket."),
        )
        .attribute(
            Attribute::string("access_key_id")
                .optional()
                .sensitive()
                .description("Access key id. Must be set and non-empty (checked at plan time, so a null or empty variable is named here). Sensitive: kept in the job's Secret."),
        )
        .attribute(
            Attribute::string("secret_access_key")
                .optional()
                .sensitive()
                .description("Secret access key. Must be set and non-empty (checked at plan time, so a null or empty variable is named here). Sensitive: kept in the job's Secret."),
        );
    let volume = Block::new()
        .description("A PersistentVolumeClaim (in the same namespace) holding the repository.")
        .attribute(
            Attribute::string("claim")
                .required()
                .description("Name of the PersistentVolumeClaim.")
                .validator(Check::values(
                    "Invalid claim name",
                    "must be an RFC 1123 subdomain",
                    check_subdomain,
                )),
        )
        .attribute(
            Attribute::string("prefix")
                .optional()
                .description("Directory of the repository inside the volume; its root when unset."),
        );
    NestedBlock::new(
        "destination",
        Nesting::Single,
        Block::new()
            .description("Where the restic repository is: exactly one of `s3 {}` or `volume {}`. The repository is initialised on the first run.")
            .block(NestedBlock::new("s3", Nesting::Single, s3))
            .block(NestedBlock::new("volume", Nesting::Single, volume)),
    )
    .min_items(1)
    .max_items(1)
}

fn retention_block() -> NestedBlock {
    NestedBlock::new(
        "retention",
        Nesting::Single,
        Block::new()
            .description("Which snapshots to keep, applied with `restic forget --prune` after each backup (a snapshot kept by any rule stays). Without any rule every snapshot is kept.")
            .attribute(
                Attribute::number("keep_last")
                    .optional()
                    .description("Keep the N newest snapshots.")
                    .validator(IntBetween { min: 1, max: 100_000 }),
            )
            .attribute(keep("keep_hourly", "hours"))
            .attribute(keep("keep_daily", "days"))
            .attribute(keep("keep_weekly", "weeks"))
            .attribute(keep("keep_monthly", "months")),
    )
}

/// The schema.
pub fn schema() -> Schema {
    let block = Block::new()
        .description("A scheduled backup with restic: a Kubernetes CronJob (with its Secret and a ServiceAccount without API access) that backs up an agent's volume or a PostgreSQL database to an S3-compatible bucket or a volume, then applies the retention. The script it runs is generated from this configuration.")
        .attribute(
            Attribute::string("id")
                .computed()
                .description("\"namespace/name\" (the import id).")
                .plan_modifier(UseStateForUnknown),
        )
        .attribute(
            Attribute::string("kubeconfig")
                .required()
                .sensitive()
                .description("The text of a kubeconfig (e.g. `selfhost_k8s_cluster.main.kubeconfig`); its current context is used. Sensitive. May be unknown until apply."),
        )
        .attribute(
            Attribute::string("namespace")
                .required()
                .description("Namespace of the CronJob (must exist). Changing it creates new objects.")
                .validator(Check::values("Invalid namespace", "must be an RFC 1123 label", check_label))
                .plan_modifier(RequiresReplace),
        )
        .attribute(
            Attribute::string("name")
                .required()
                .description("Name of the CronJob (at most 52 characters); its Secret and ServiceAccount are `<name>-backup`. Changing it creates new objects.")
                .validator(Check::values("Invalid CronJob name", "must be an RFC 1123 label of at most 52 characters", check_cronjob_name))
                .plan_modifier(RequiresReplace),
        )
        .attribute(
            Attribute::string("schedule")
                .required()
                .description("Cron schedule: five fields (minute hour day-of-month month day-of-week) with ranges, steps, lists and month/day names, or a macro such as \"@daily\". Checked at plan time.")
                .validator(Check::values("Invalid schedule", "must be a cron schedule such as \"0 3 * * *\" or \"@daily\"", check_schedule)),
        )
        .attribute(
            Attribute::string("time_zone")
                .optional()
                .description("IANA time zone of the schedule, e.g. \"Europe/Paris\"; checked at plan time against the zone list built into the provider. Unset: the controller manager's zone (usually UTC).")
                .validator(Check::values("Invalid time zone", "must be an IANA time zone name such as \"Europe/Paris\"", zone::check)),
        )
        .attribute(
            Attribute::bool("suspend")
                .optional()
                .computed()
                .default_value(false)
                .description("Stop scheduling new runs (a running one finishes)."),
        )
        .attribute(
            Attribute::number("successful_jobs_history_limit")
                .optional()
                .computed()
                .default_value(DEFAULT_SUCCESSFUL_HISTORY)
                .description("How many finished Jobs to keep.")
                .validator(IntBetween { min: 0, max: 100 }),
        )
        .attribute(
            Attribute::number("failed_jobs_history_limit")
                .optional()
                .computed()
                .default_value(DEFAULT_FAILED_HISTORY)
                .description("How many failed Jobs to keep.")
                .validator(IntBetween { min: 0, max: 100 }),
        )
        .attribute(
            Attribute::string("image")
                .optional()
                .computed()
                .default_value(DEFAULT_IMAGE)
                .description("Image of the restic container (it must have /bin/sh and restic).")
                .validator(Check::values("Invalid image", "must not be empty", check_not_empty)),
        )
        .attribute(
            Attribute::string("encryption_password")
                .required()
                .sensitive()
                .description("Password of the restic repository (it encrypts every snapshot; losing it loses the backups). Sensitive: kept in the job's Secret, never in the script. Changing it does not re-key an existing repository: add the new password with `restic key add` first."),
        )
        .attribute(
            Attribute::string("last_schedule_time")
                .computed()
                .description("When the CronJob last started a Job (RFC 3339), as last read; null before the first run. Refreshing it never makes a plan.")
                .plan_modifier(UseStateForUnknown),
        )
        .attribute(
            Attribute::string("last_successful_time")
                .computed()
                .description("When a Job of the CronJob last succeeded (RFC 3339), as last read; null before the first success. Refreshing it never makes a plan.")
                .plan_modifier(UseStateForUnknown),
        )
        .attribute(
            Attribute::string("restore_command")
                .computed()
                .description("Shell commands that restore the latest snapshot (the volume's files into `./restore-<name>`, or the database with `pg_restore --clean`); they read the secrets from the Secret with kubectl."),
        )
        .attribute(
            Attribute::of_type("drift", Type::list(Type::String))
                .computed()
                .description("What a refresh found changed out of band in the managed fields of the CronJob, Secret and ServiceAccount (e.g. \"CronJob spec.suspend\"); the plan sets it back to empty and apply repairs it.")
        )
        .block(source_block())
        .block(destination_block())
        .block(retention_block())
        .block(timeouts::block(&TIMEOUTS));
    Schema::new(0, block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_well_formed() {
        assert_eq!(schema().check(), Vec::<String>::new());
    }

    #[test]
    fn endpoints_and_names() {
        assert!(check_endpoint("https://s3.example.com").is_ok());
        assert!(check_endpoint("http://127.0.0.1:7070").is_ok());
        assert!(check_endpoint("s3.example.com").is_err());
        assert!(check_endpoint("https://s3.example.com/bucket").is_err());
        assert!(check_cronjob_name(&"a".repeat(52)).is_ok());
        assert!(check_cronjob_name(&"a".repeat(53)).is_err());
    }
}
