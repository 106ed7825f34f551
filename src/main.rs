//! terraform-provider-selfhost: started by Terraform/OpenTofu, it serves the
//! plugin protocol; by hand it answers `version` and `docs`.
//!
//! Nothing but the handshake line may ever reach stdout in plugin mode: the
//! CLI reads stdout as the go-plugin handshake.

use std::process::ExitCode;

use terraform_provider_selfhost::logging::error_chain;
use terraform_provider_selfhost::plugin::{self, PluginEnv, ServeOptions};
use terraform_provider_selfhost::{logging, resources};

const USAGE: &str = "usage: terraform-provider-selfhost [version | docs [--out DIR] [--examples DIR] | --insecure-plaintext]\n\
    Without arguments it serves the plugin protocol to the Terraform/OpenTofu CLI that started it.\n\
    `docs` writes the registry documentation from the live schema (default: docs/ from examples/).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => serve(ServeOptions::default()),
        ["--insecure-plaintext"] => serve(ServeOptions { allow_plaintext: true }),
        ["version" | "--version" | "-v"] => {
            println!("terraform-provider-selfhost {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["docs", rest @ ..] => docs(rest),
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

/// `docs [--out DIR] [--examples DIR]`: write the registry docs from the
/// live schema (defaults `docs` and `examples`, relative to the current
/// directory).
fn docs(args: &[&str]) -> ExitCode {
    let mut out = std::path::PathBuf::from("docs");
    let mut examples = std::path::PathBuf::from("examples");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let target = match *arg {
            "--out" => &mut out,
            "--examples" => &mut examples,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        match it.next() {
            Some(v) => *target = v.into(),
            None => {
                eprintln!("{arg} needs a directory\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let server = terraform_provider_selfhost::framework::server::ProviderServer::new(resources::provider());
    match terraform_provider_selfhost::docs::write(&server, &out, &examples) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("terraform-provider-selfhost docs: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
