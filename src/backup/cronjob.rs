//! The objects of one backup schedule: a CronJob whose pod runs the
//! generated scripts, the Secret they take their credentials from, and a
//! ServiceAccount with no API access. Only the fields this provider
//! manages are set (drift is judged on them). Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, PersistentVolumeClaimVolumeSource,
    PodAffinity, PodAffinityTerm, PodSecurityContext, PodSpec, PodTemplateSpec, SeccompProfile, Secret,
    SecretKeySelector, SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::script::{Layout, backup_script, dump_script};
use super::spec::{BackupSpec, Destination, SecretEnv, Source};
use crate::kube::agent::{AGENT_LABEL, DEFAULT_UID};
use crate::kube::objects::ownership_labels;

/// The label on every object (and pod) of one backup schedule.
pub const BACKUP_LABEL: &str = "selfhost.dev/backup";
/// The annotation holding the schedule's non-secret configuration (JSON):
/// the one every Kubernetes resource of this provider uses.
pub use crate::kube::LAST_APPLIED as CONFIG_ANNOTATION;
/// Where earlier builds kept it; an import still reads it (an apply
/// removes it: server-side apply drops what the manager no longer sets).
pub const LEGACY_CONFIG_ANNOTATION: &str = "selfhost.dev/backup-config";
/// Default image of the restic container (the official image, pinned).
pub const DEFAULT_IMAGE: &str = "docker.io/restic/restic:0.18.1";
/// Default image of the `dump` container (pg_dump; it must be at least the
/// server's major version).
pub const DEFAULT_PG_DUMP_IMAGE: &str = "docker.io/library/postgres:17.6-alpine";
/// Scratch space: the dump and restic's cache and temporary files.
const WORK_VOLUME: &str = "work";
const SOURCE_VOLUME: &str = "source";
const REPOSITORY_VOLUME: &str = "repository";

/// Everything about the CronJob beyond what the scripts need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSettings {
    /// The cron expression, checked by [`super::cron::check`].
    pub schedule: String,
    /// The IANA time zone the schedule runs in; kube-controller-manager's local zone when `None`.
    pub time_zone: Option<String>,
    /// Pause the schedule: no new runs start.
    pub suspend: bool,
    /// How many finished successful Jobs Kubernetes keeps.
    pub successful_jobs_history_limit: i32,
    /// How many failed Jobs Kubernetes keeps.
    pub failed_jobs_history_limit: i32,
    /// The image of the restic container.
    pub image: String,
    /// The image of the `dump` container, for PostgreSQL sources.
    pub pg_dump_image: String,
    /// How many times a failed run is retried (the Job's backoffLimit).
    pub backoff_limit: i32,
}

/// The objects to apply.
pub struct BackupObjects {
    /// The CronJob running the backup.
    pub cronjob: CronJob,
    /// The Secret holding the repository password and credentials as env variables.
    pub secret: Secret,
    /// The ServiceAccount the job's pods run as.
    pub service_account: ServiceAccount,
}

/// Name of the Secret and of the ServiceAccount of a schedule.
pub fn secret_name(name: &str) -> String {
    format!("{name}-backup")
}

fn meta(spec: &BackupSpec, name: String) -> ObjectMeta {
    let mut labels = ownership_labels("backup_schedule");
    labels.insert(BACKUP_LABEL.to_owned(), spec.name.clone());
    ObjectMeta {
        name: Some(name),
        namespace: Some(spec.namespace.clone()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// Render the objects; `secrets` maps [`SecretEnv`] names to their values
/// (they go into the Secret only), `config_json` is the annotation.
pub fn render(
    spec: &BackupSpec,
    job: &JobSettings,
    secrets: &BTreeMap<String, String>,
    config_json: &str,
) -> BackupObjects {
    let sa_name = secret_name(&spec.name);
    let service_account = ServiceAccount {
        metadata: meta(spec, sa_name.clone()),
        // The job never talks to the API server.
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    };
    let secret = Secret {
        metadata: meta(spec, secret_name(&spec.name)),
        type_: Some("Opaque".to_owned()),
        data: Some(
            secrets
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Secret::default()
    };
    let mut cj_meta = meta(spec, spec.name.clone());
    cj_meta.annotations = Some(BTreeMap::from([(CONFIG_ANNOTATION.to_owned(), config_json.to_owned())]));
    let mut pod_meta = meta(spec, String::new());
    pod_meta.name = None;
    pod_meta.namespace = None;
    let cronjob = CronJob {
        metadata: cj_meta,
        spec: CronJobSpec {
            schedule: job.schedule.clone(),
            time_zone: job.time_zone.clone(),
            suspend: Some(job.suspend),
            concurrency_policy: Some("Forbid".to_owned()),
            successful_jobs_history_limit: Some(job.successful_jobs_history_limit),
            failed_jobs_history_limit: Some(job.failed_jobs_history_limit),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(JobSpec {
                    backoff_limit: Some(job.backoff_limit),
                    template: PodTemplateSpec {
                        metadata: Some(pod_meta),
                        spec: Some(pod_spec(spec, job, &sa_name)),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        },
        status: None,
    };
    BackupObjects {
        cronjob,
        secret,
        service_account,
    }
}

fn pod_spec(spec: &BackupSpec, job: &JobSettings, sa_name: &str) -> PodSpec {
    let layout = Layout::in_pod();
    let secret = secret_name(&spec.name);
    let mut volumes = vec![Volume {
        name: WORK_VOLUME.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }];
    let work_mount = VolumeMount {
        name: WORK_VOLUME.to_owned(),
        mount_path: layout.work.clone(),
        ..VolumeMount::default()
    };
    let mut backup_mounts = vec![work_mount.clone()];
    let mut affinity = None;
    if let Source::Volume { agent, claim } = &spec.source {
        volumes.push(claim_volume(SOURCE_VOLUME, claim, true));
        backup_mounts.push(VolumeMount {
            name: SOURCE_VOLUME.to_owned(),
            mount_path: layout.source.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        // A ReadWriteOnce volume can be mounted only on the node where the
        // agent's pod has it: run there.
        affinity = Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(BTreeMap::from([(AGENT_LABEL.to_owned(), agent.clone())])),
                        ..LabelSelector::default()
                    }),
                    topology_key: "kubernetes.io/hostname".to_owned(),
                    ..PodAffinityTerm::default()
                }]),
                ..PodAffinity::default()
            }),
            ..Affinity::default()
        });
    }
    if let Destination::Volume { claim, .. } = &spec.destination {
        volumes.push(claim_volume(REPOSITORY_VOLUME, claim, false));
        backup_mounts.push(VolumeMount {
            name: REPOSITORY_VOLUME.to_owned(),
            mount_path: layout.repository.clone(),
            ..VolumeMount::default()
        });
    }
    let mut backup_env = secret_env(&secret, &SecretEnv::restic(&spec.destination));
    // restic writes temporary pack files and its cache; the root file
    // system is read-only.
    backup_env.push(plain_env("TMPDIR", &layout.work));
    backup_env.push(plain_env("HOME", &layout.work));
    let init_containers = dump_script(spec, &layout).map(|script| {
        vec![container(
            "dump",
            &job.pg_dump_image,
            script,
            secret_env(&secret, &SecretEnv::dump(&spec.source)),
            vec![work_mount.clone()],
        )]
    });
    PodSpec {
        service_account_name: Some(sa_name.to_owned()),
        automount_service_account_token: Some(false),
        restart_policy: Some("Never".to_owned()),
        affinity,
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(DEFAULT_UID),
            run_as_group: Some(DEFAULT_UID),
            fs_group: Some(DEFAULT_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        init_containers,
        containers: vec![container(
            "backup",
            &job.image,
            backup_script(spec, &layout),
            backup_env,
            backup_mounts,
        )],
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

fn claim_volume(name: &str, claim: &str, read_only: bool) -> Volume {
    Volume {
        name: name.to_owned(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_owned(),
            read_only: Some(read_only),
        }),
        ..Volume::default()
    }
}

fn container(name: &str, image: &str, script: String, env: Vec<EnvVar>, mounts: Vec<VolumeMount>) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script]),
        env: Some(env),
        volume_mounts: Some(mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

/// Each name as an environment variable from the same key of the Secret.
fn secret_env(secret: &str, names: &[&str]) -> Vec<EnvVar> {
    names
        .iter()
        .map(|n| EnvVar {
            name: (*n).to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.to_owned(),
                    key: (*n).to_owned(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        })
        .collect()
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::spec::Retention;

    fn spec(source: Source) -> BackupSpec {
        BackupSpec {
            namespace: "agents".to_owned(),
            name: "research-data".to_owned(),
            source,
            destination: Destination::S3 {
                endpoint: "https://s3.example.com".to_owned(),
                bucket: "b".to_owned(),
                prefix: String::new(),
                region: String::new(),
            },
            retention: Retention::default(),
        }
    }

    fn job() -> JobSettings {
        JobSettings {
            schedule: "0 3 * * *".to_owned(),
            time_zone: Some("Europe/Paris".to_owned()),
            suspend: false,
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 1,
            image: DEFAULT_IMAGE.to_owned(),
            pg_dump_image: DEFAULT_PG_DUMP_IMAGE.to_owned(),
            backoff_limit: 1,
        }
    }

    fn secrets() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("RESTIC_PASSWORD".to_owned(), "hunter2-restic".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "AKIA-key".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "s3-secret-value".to_owned()),
        ])
    }

    #[test]
    fn volume_source_mounts_the_agents_claim_read_only_on_its_node() {
        let objs = render(
            &spec(Source::Volume {
                agent: "research".to_owned(),
                claim: "research-data".to_owned(),
            }),
            &job(),
            &secrets(),
            "{}",
        );
        let cj = serde_json::to_value(&objs.cronjob).unwrap_or_default();
        let s = &cj["spec"];
        assert_eq!(s["schedule"], "0 3 * * *");
        assert_eq!(s["timeZone"], "Europe/Paris");
        assert_eq!(s["concurrencyPolicy"], "Forbid");
        let pod = &s["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["serviceAccountName"], "research-data-backup");
        assert_eq!(pod["volumes"][1]["persistentVolumeClaim"]["claimName"], "research-data");
        assert_eq!(pod["volumes"][1]["persistentVolumeClaim"]["readOnly"], true);
        assert_eq!(pod["containers"][0]["volumeMounts"][1]["readOnly"], true);
        let term = &pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
        assert_eq!(term["labelSelector"]["matchLabels"][AGENT_LABEL], "research");
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert!(pod.get("initContainers").is_none());
        let sa = serde_json::to_value(&objs.service_account).unwrap_or_default();
        assert_eq!(sa["automountServiceAccountToken"], false);
    }

    #[test]
    fn secrets_only_in_the_secret() {
        let objs = render(
            &spec(Source::Postgres {
                host: "db".to_owned(),
                port: 5432,
                database: "app".to_owned(),
                user: "backup".to_owned(),
            }),
            &job(),
            &secrets(),
            "{}",
        );
        let cj = serde_json::to_string(&objs.cronjob).unwrap_or_default();
        for v in secrets().values() {
            assert!(!cj.contains(v.as_str()), "{v} leaked into the CronJob");
        }
        let cj = serde_json::to_value(&objs.cronjob).unwrap_or_default();
        let pod = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["initContainers"][0]["name"], "dump");
        assert_eq!(pod["initContainers"][0]["image"], DEFAULT_PG_DUMP_IMAGE);
        assert_eq!(
            pod["initContainers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["key"],
            "PGPASSWORD"
        );
        assert!(pod.get("affinity").is_none());
        let secret = serde_json::to_value(&objs.secret).unwrap_or_default();
        assert_eq!(secret["data"]["RESTIC_PASSWORD"], "aHVudGVyMi1yZXN0aWM=");
    }
}
