//! The simulated steamcmd (see the library's docs).

fn main() {
    steamcmd_sim::main()
}
