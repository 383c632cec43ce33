//! Compiles the node's wire contract (`proto/*.proto`) with `protox`, a pure-Rust protobuf
//! compiler, so building needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/registry.proto",
        "proto/broker.proto",
        "proto/events.proto",
        "proto/events_sync.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    prost_build::Config::new()
        // Sorted maps: decoding is deterministic and matches the typed records' `BTreeMap`s.
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
