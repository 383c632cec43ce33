//! `micro-node`: runs a Micro Network node and talks to a running one.

#[allow(dead_code)]
mod render;

fn main() {}
