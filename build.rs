//! Compiles `proto/` with protox (pure Rust) so a machine without `protoc`
//! builds the crate, then generates the prost messages and tonic services.

use std::io;

const PROTOS: [&str; 2] = ["proto/tfplugin6.proto", "proto/plugin.proto"];

fn main() -> io::Result<()> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    // Only our files go to code generation; the well-known imports
    // (Timestamp, Empty) map to `prost_types`.
    let fds = protox::Compiler::new(["proto"])
        .and_then(|mut c| {
            c.include_imports(false).include_source_info(true).open_files(PROTOS)?;
            Ok(c.file_descriptor_set())
        })
        .map_err(|e| io::Error::other(format!("proto compilation failed: {e}")))?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)
}
