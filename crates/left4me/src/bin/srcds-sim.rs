//! The srcds simulator as a program: copied into a synthetic installation as
//! `srcds_linux`, it behaves like a Left 4 Dead 2 dedicated server.

fn main() -> std::process::ExitCode {
    srcds_sim::main_from_env()
}
