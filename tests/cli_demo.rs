//! The README's first command: `fortisync demo` runs to the end against the built-in
//! simulator and shows each step, every kind it knows, and the live failure with one failed
//! login only.

use std::process::Command;

#[test]
fn the_demo_converges_every_example_kind_and_the_regenerated_key_costs_one_failed_login() {
    let out = Command::new(env!("CARGO_BIN_EXE_fortisync"))
        .args(["demo", "--color", "never"])
        .output()
        .expect("run fortisync demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "\n1. The simulator plays a FortiGate\n",
        "  + group blocked-scanners [fs_192.0.2.128_25, fs_198.51.100.20-198.51.100.29]\n",
        "\n5. Converged: planning again finds nothing to do",
        "   device requests for this check: 6 (all reads)\n",
        "\n6. An IP list (examples/externalconnectors.yaml)",
        "   4 entries on the device after 2 write call(s) in ",
        "   an admin removes 192.0.2.10 on the device by hand; the next pass puts it back:\n",
        "\n7. A trusted-host slot (examples/trustedhosts.yaml)",
        "     ~ slot 10: unused / unused -> 192.0.2.10/32 / unused\n",
        "   the same grant for 0.0.0.0/0 never reaches the device: admission refuses it:\n",
        "\n8. A failure, live:",
        "     failed logins the device saw: 1 (its lockout threshold is 3)",
        "     locked out: no",
        "\ndemo finished in ",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}
