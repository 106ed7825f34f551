//! Scheduled backups (`selfhost_backup_schedule`) without I/O: the cron
//! and time zone checks done at plan time, the validated configuration,
//! the scripts the job runs and the Kubernetes objects that run them.

pub mod cron;
pub mod cronjob;
pub mod script;
pub mod spec;
pub mod zone;
