//! terraform-provider-selfhost: started by Terraform/OpenTofu, it serves the
//! plugin protocol; by hand it answers `version` and `docs`.
//!
//! Nothing but the handshake line may ever reach stdout in plugin mode: the
//! CLI reads stdout as the go-plugin handshake.

use std::process::ExitCode;

use terraform_provider_selfhost::plugin::{self, PluginEnv, ServeOptions};
use terraform_provider_selfhost::{logging, resources};

const USAGE: &str = "usage: terraform-provider-selfhost [version | docs | --insecure-plaintext]\n\
    Without arguments it serves the plugin protocol to the Terraform/OpenTofu CLI that started it.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => serve(ServeOptions::default()),
        ["--insecure-plaintext"] => serve(ServeOptions { allow_plaintext: true }),
        ["version" | "--version" | "-v"] => {
            println!("terraform-provider-selfhost {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["docs", ..] => {
            eprintln!("terraform-provider-selfhost docs: not available yet (the docs generator is being written).");
            ExitCode::FAILURE
        }
        ["help" | "--help" | "-h"] => {
            eprintln!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn serve(opts: ServeOptions) -> ExitCode {
    // hclog-JSON lines on stderr, which the CLI re-logs at their level.
    logging::init();
    match plugin::serve(resources::provider(), PluginEnv::from_process(), &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line each.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}
