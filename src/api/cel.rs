//! CEL rules too intricate to write inline: the order of the two ends of an address range.
//!
//! The Kubernetes IP library (checked in k8s.io/apiserver v0.36.3 `pkg/cel/library/ip.go`)
//! gives `ip()`, `isIP()`, `.family()`, equality and `string()`, but no ordering: there is no
//! `<` on IPs and no `isLessThan`. The CIDR library does give `cidr().containsIP()` and
//! `.masked()`, which is enough: the common prefix length `p` of `a` and `b` is the longest
//! prefix of `a` that contains `b` (found by binary search, 7 steps for 128 bits), and `a < b`
//! exactly when bit `p` of `a` is 0, i.e. `a` masked to `p + 1` bits equals `a` masked to `p`.
//!
//! Two limits of the API server's static cost estimate shape the expression (each member's
//! rule is multiplied by `maxItems` 2000 and must stay under the per-rule budget):
//! - values are bound with `[x].all(v, …)` (CEL in Kubernetes 1.36 has no `cel.bind`) so each
//!   end is cut out of `self` once; binding a *list* loses its size estimate, so only strings
//!   and ints are bound;
//! - `string(int)` has no size estimate, so prefix lengths are spelled by indexing a literal
//!   list `['0', …, '128']`.
//!
//! Estimated cost measured on kube-apiserver v1.36.3: about 1 840 per member with
//! `maxLength: 79`, i.e. 3.7 M for 2000 members (budget 10 M per rule).

/// The start of a range `a-b` (everything before the first `-`).
const START: &str = "self.substring(0, self.indexOf('-'))";
/// The end of a range `a-b` (everything after the first `-`).
const END: &str = "self.substring(self.indexOf('-') + 1)";

/// CEL rule: a member address is an IP address, a CIDR, or two IP addresses joined by `-`.
pub fn member_form_rule() -> String {
    format!("isIP(self) || isCIDR(self) || (self.contains('-') && isIP({START}) && isIP({END}))")
}

/// CEL rule: a CIDR member has no host bits set.
pub const MEMBER_NO_HOST_BITS_RULE: &str = "!isCIDR(self) || cidr(self) == cidr(self).masked()";

/// CEL rule: both ends of a range are of one IP family.
pub fn member_range_family_rule() -> String {
    format!(
        "!(self.contains('-') && isIP({START}) && isIP({END})) || ip({START}).family() == ip({END}).family()"
    )
}

/// CEL rule: a range does not end before it starts (equal ends are one address).
pub fn member_range_order_rule() -> String {
    let prefix_text = |index: &str| format!("{}[{index}]", prefix_lengths());
    // Innermost first: once p7 is the common prefix length, compare bit p7.
    let mut body = format!(
        "ip(a) == ip(b) || cidr(a + '/' + {}).masked().ip() == cidr(a + '/' + {}).masked().ip()",
        prefix_text("p7 + 1"),
        prefix_text("p7")
    );
    // Binary search: p<k> is the longest prefix of a containing b found with steps 64..=1.
    let steps = [64, 32, 16, 8, 4, 2, 1];
    for (i, step) in steps.iter().enumerate().rev() {
        let before = if i == 0 {
            "0".to_string()
        } else {
            format!("p{i}")
        };
        let longer = format!("{before} + {step}");
        let value = format!(
            "{longer} <= w && cidr(a + '/' + {}).containsIP(b) ? {longer} : {before}",
            prefix_text(&longer)
        );
        body = bind(&format!("p{}", i + 1), &value, &body);
    }
    let body = bind("w", "ip(a).family() == 4 ? 32 : 128", &body);
    let same_family = "isIP(a) && isIP(b) && ip(a).family() == ip(b).family()";
    let compared = bind(
        "a",
        START,
        &bind("b", END, &format!("!({same_family}) || {body}")),
    );
    format!("!self.contains('-') || {compared}")
}

/// `[value].all(name, body)`: `body` with `name` bound to `value`, evaluated once.
fn bind(name: &str, value: &str, body: &str) -> String {
    format!("[{value}].all({name}, {body})")
}

/// The literal list `['0', '1', …, '128']`: prefix lengths as text with a known size.
fn prefix_lengths() -> String {
    let items: Vec<String> = (0..=128).map(|n| format!("'{n}'")).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_rule_binds_each_name_once_and_balances_its_brackets() {
        let rule = member_range_order_rule();
        for name in ["a", "b", "w", "p1", "p2", "p3", "p4", "p5", "p6", "p7"] {
            assert_eq!(
                rule.matches(&format!(".all({name}, ")).count(),
                1,
                "{name} in {rule}"
            );
        }
        let opened = rule.matches(['(', '[']).count();
        let closed = rule.matches([')', ']']).count();
        assert_eq!(opened, closed);
        assert!(
            !rule.replace("substring(", "").contains("string("),
            "string(int) has no cost estimate"
        );
    }
}
