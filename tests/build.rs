//! Compiles `proto/bench_echo.proto` (the `rpc-bench` gRPC baseline) without `protoc`:
//! `protox` parses it into a `FileDescriptorSet`, `tonic-prost-build` generates the
//! messages, the client and the server into `OUT_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/bench_echo.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // `bytes payload` as `bytes::Bytes`: the echo handler and the callers clone it for free.
        .bytes(".micro.bench.v1")
        .compile_fds(fds)?;
    Ok(())
}
