//! `selfhost_host_facts`: what a host is, read over SSH with the same
//! connection settings and the same one-script facts gathering as
//! `selfhost_vps_host`, without changing anything.

use async_trait::async_trait;
use serde::Serialize;

use crate::framework::resource::{Context, DataSource};
use crate::framework::typed::{from_value, to_value_as};
use crate::framework::{Attribute, Block, Diagnostics, Schema, Value};
use crate::host::spec::HostSpec;
use crate::resources::connection::{ConnectionConfig, data_source_connection_block};
use crate::resources::vps_host::{
    FactsModel, HostKeyExpectation, Session, SshObject, fact_attributes, ssh_object_type,
};

/// The data source type.
pub struct HostFacts;

#[derive(serde::Deserialize)]
struct Config {
    #[serde(rename = "ssh_connection")]
    connection: ConnectionConfig,
}

#[derive(Serialize)]
struct FactsState {
    id: String,
    #[serde(rename = "ssh_connection")]
    connection: ConnectionConfig,
    hostname: String,
    timezone: String,
    host_key: String,
    ssh: SshObject,
    os: Option<String>,
    kernel: Option<String>,
    arch: Option<String>,
    cpus: Option<i64>,
    memory_mb: Option<i64>,
    disk_gb: Option<i64>,
    machine_id: Option<String>,
}

fn schema() -> Schema {
    let block = Block::new()
        .description("Facts about a host, read over SSH in one script: OS, kernel, architecture, CPUs, memory, disk, machine id, host name, time zone and its verified host key. Changes nothing on the host.")
        .attribute(Attribute::string("id").computed().description("The host's machine id."))
        .attribute(Attribute::string("hostname").computed().description("The running host name."))
        .attribute(Attribute::string("timezone").computed().description("The IANA time zone of `/etc/localtime`."))
        .attribute(
            Attribute::string("host_key")
                .computed()
                .description("The host's public key as presented (verified against `ssh_connection.host_key` when pinned)."),
        )
        .attribute(
            Attribute::of_type("ssh", ssh_object_type())
                .computed()
                .description("How to reach this host: `host`, `port`, `user`, `host_key`."),
        )
        .block(data_source_connection_block());
    // The facts shared with `selfhost_vps_host`, without its plan modifiers.
    let mut block = fact_attributes(block);
    for a in &mut block.attributes {
        a.plan_modifiers.clear();
    }
    Schema::new(0, block)
}

#[async_trait]
impl DataSource for HostFacts {
    fn type_name(&self) -> &'static str {
        "selfhost_host_facts"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn read(&self, ctx: &Context, config: Value) -> (Value, Diagnostics) {
        let mut d = Diagnostics::new();
        let conn = match from_value::<Config>(&config) {
            Ok(c) => c.connection,
            Err(e) => {
                d.error(
                    "Unreadable configuration",
                    format!("{e}. This is a bug in the provider; please report it."),
                );
                return (Value::Null, d);
            }
        };
        let expect = HostKeyExpectation::pinned_only(&conn);
        let session = match Session::open(ctx, &conn, &expect, false).await {
            Ok(s) => s,
            Err(diag) => {
                d.0.push(diag);
                return (Value::Null, d);
            }
        };
        let observed = match session.observe(ctx, &HostSpec::default(), false).await {
            Ok(o) => o,
            Err(diag) => {
                d.0.push(diag);
                return (Value::Null, d);
            }
        };
        let FactsModel {
            os,
            kernel,
            arch,
            cpus,
            memory_mb,
            disk_gb,
            machine_id,
        } = observed.facts;
        let ssh = session.ssh_object();
        let state = FactsState {
            id: machine_id.clone().unwrap_or_default(),
            connection: conn,
            hostname: observed.hostname,
            timezone: observed.timezone,
            host_key: ssh.host_key.clone(),
            ssh,
            os,
            kernel,
            arch,
            cpus,
            memory_mb,
            disk_gb,
            machine_id,
        };
        match to_value_as(&state, &schema().value_type()) {
            Ok(v) => (v, d),
            Err(e) => {
                d.error(
                    "Unencodable facts",
                    format!("{e}. This is a bug in the provider; please report it."),
                );
                (Value::Null, d)
            }
        }
    }
}
