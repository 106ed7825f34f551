//! The `ssh_connection {}` block every host resource and data source takes
//! (not `connection`: Terraform and OpenTofu reserve that block name in
//! resources for provisioners and never pass it to the provider), and
//! the provider's `ssh {}` block of defaults they inherit.

use crate::framework::plan_modifier::{RequiresReplace, UseStateForUnknown};
use crate::framework::validator::{Check, IntBetween, IsDuration};
use crate::framework::{Attribute, Block, NestedBlock, Nesting};
use crate::host::validate;

/// The default SSH port.
pub const DEFAULT_PORT: i64 = 22;

/// `host`: an IP address or a DNS name.
fn address() -> Check {
    Check::values("Invalid address", "must be an IP address or a DNS name", |s| {
        crate::network::address(s)
    })
}

/// `user`: an account name, never a shell word.
fn login_user() -> Check {
    Check::values("Invalid user", "must be a user name", validate::login_name)
}

/// `host_key`: one OpenSSH public key line.
fn host_key() -> Check {
    Check::values("Invalid host key", "must be an OpenSSH public key line", |s| {
        validate::public_key(s).map(drop)
    })
}

/// Attributes shared by `ssh_connection {}`, `bastion {}` and the provider's `ssh {}`.
fn auth_attributes(block: Block) -> Block {
    block
        .attribute(
            Attribute::string("user")
                .optional()
                .validator(login_user())
                .description("SSH user; when not `root`, every command runs through `sudo -n` (passwordless sudo is required). Default: the provider's `ssh.user`, else `root`."),
        )
        .attribute(
            Attribute::string("private_key")
                .optional()
                .sensitive()
                .description("Private key in OpenSSH or PEM form (e.g. `file(\"~/.ssh/id_ed25519\")`). Sensitive; stored in state. Prefer the provider's `ssh.private_key` (never stored in state) or `agent`."),
        )
        .attribute(
            Attribute::bool("agent")
                .optional()
                .description("Authenticate with the SSH agent at `SSH_AUTH_SOCK`. Default: the provider's `ssh.agent`, else true when no private key is given."),
        )
}

/// `bastion {}`: a jump host the connection goes through.
fn bastion_block(for_resource: bool) -> NestedBlock {
    let mut b = Block::new()
        .description("A jump host: the connection is tunnelled through it (like `ssh -J`).")
        .attribute(
            Attribute::string("host")
                .required()
                .validator(address())
                .description("Address of the jump host."),
        )
        .attribute(
            Attribute::number("port")
                .optional()
                .computed()
                .default_value(DEFAULT_PORT)
                .validator(IntBetween { min: 1, max: 65535 })
                .description("SSH port of the jump host."),
        );
    b = auth_attributes(b);
    b = if for_resource {
        b.attribute(
            Attribute::string("host_key")
                .validator(host_key())
                .optional()
                .computed()
                .plan_modifier(UseStateForUnknown)
                .description("The jump host's public key (`ssh-ed25519 AAAA...`). When not set, the key seen first is recorded here and any later change is an error."),
        )
    } else {
        b.attribute(
            Attribute::string("host_key")
                .validator(host_key())
                .optional()
                .description("The jump host's public key (`ssh-ed25519 AAAA...`). Without it the jump host's key is trusted on first use within this run only."),
        )
    };
    NestedBlock::new("bastion", Nesting::Single, b)
}

/// `ssh_connection {}` of a managed resource: the host key seen first is
/// recorded in state (`host_key` is optional and computed).
pub fn resource_connection_block() -> NestedBlock {
    connection_block(true)
}

/// `ssh_connection {}` of a data source: nothing is recorded; a pinned
/// `host_key` is checked when given.
pub fn data_source_connection_block() -> NestedBlock {
    connection_block(false)
}

fn connection_block(for_resource: bool) -> NestedBlock {
    let mut b = Block::new()
        .description("How to reach the host over SSH. Unset values come from the provider's `ssh {}` block.")
        .attribute({
            let a = Attribute::string("host")
                .required()
                .validator(address())
                .description("Address (IP or DNS name) of the host.");
            if for_resource {
                a.plan_modifier(RequiresReplace)
            } else {
                a
            }
        })
        .attribute(
            Attribute::number("port")
                .optional()
                .computed()
                .default_value(DEFAULT_PORT)
                .validator(IntBetween { min: 1, max: 65535 })
                .description("SSH port."),
        );
    b = auth_attributes(b);
    if for_resource {
        b = b
            .attribute(
                Attribute::string("private_key_wo")
                    .optional()
                    .write_only()
                    .description("Private key used while applying, never stored (needs Terraform/OpenTofu 1.11+). Refreshes and destroys then authenticate with the provider's `ssh {}` key or the agent."),
            )
            .attribute(
                Attribute::string("host_key")
                .validator(host_key())
                    .optional()
                    .computed()
                    .plan_modifier(UseStateForUnknown)
                    .description("The host's public key (`ssh-ed25519 AAAA...`, as in `known_hosts` without the host name). When not set, the key seen on first contact is recorded here, and any later mismatch is an error naming both fingerprints. There is no way to skip the check."),
            );
    } else {
        b = b.attribute(
            Attribute::string("host_key")
                .validator(host_key())
                .optional()
                .description("The host's public key; when given, a different key is refused."),
        );
    }
    b = b.attribute(
        Attribute::string("connect_timeout")
            .optional()
            .validator(IsDuration)
            .description("How long to keep retrying while the host boots or sshd starts, e.g. \"2m\" (default: the provider's `ssh.connect_timeout`, else 2m; never longer than the operation's timeout)."),
    );
    NestedBlock::new("ssh_connection", Nesting::Single, b.block(bastion_block(for_resource)))
        .min_items(1)
        .max_items(1)
}

/// The provider's `ssh {}` block: defaults for every host.
pub fn provider_ssh_block() -> NestedBlock {
    let mut b = Block::new().description("Defaults for every host's `ssh_connection {}`.");
    b = auth_attributes(b).attribute(
        Attribute::string("connect_timeout")
            .optional()
            .validator(IsDuration)
            .description("How long to keep retrying while a host boots (default 2m)."),
    );
    NestedBlock::new("ssh", Nesting::Single, b.block(bastion_block(false)))
}
